"""Lesson 07 exercises on generative pretext tasks: MAE's loss on the removed patches only
(exercise 3 of part 1) and the KL term of a variational auto-encoder (exercise 4 of part 1).

The references are the package's own (course_utils.pretext), which the lesson trains with. A
wrong answer is diagnosed by the exercise's slips, each the reference with one common mistake.
"""

from functools import partial

import torch

from course_utils import pretext
from course_utils.checks import Case, Slip, report, run_check

masked_mse = pretext.masked_mse
gaussian_kl = pretext.gaussian_kl


# ---- exercise 3: the loss on the removed patches ---------------------------------------------

def _patches(seed, n, length, dim):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, length, dim, generator=generator)


def _mask(rows):
    return torch.tensor(rows, dtype=torch.float32)


def _masked_mse_cases():
    return [Case("2 images of 4 patches of 3 values, half of them removed",
                 (_patches(0, 2, 4, 3), _patches(1, 2, 4, 3), _mask([[1, 0, 1, 0], [0, 1, 1, 0]])),
                 hint="square the errors, average each patch's 3 values (N, L), multiply by the "
                      "mask and divide by the number of removed patches, mask.sum()."),
            Case("3 images of 6 patches, a different number removed in each",
                 (_patches(2, 3, 6, 5), _patches(3, 3, 6, 5),
                  _mask([[1, 1, 1, 1, 1, 0], [1, 0, 0, 0, 0, 0], [0, 1, 1, 0, 1, 1]])),
                 hint="divide by all the removed patches of the batch (mask.sum() = 10 here), not "
                      "per image: each removed patch counts once."),
            Case("one image of 8 patches, 6 removed (MAE's 75%)",
                 (_patches(4, 1, 8, 12), _patches(5, 1, 8, 12), _mask([[1, 1, 0, 1, 1, 1, 0, 1]])),
                 hint="one number: a scalar tensor, the mean squared error over the 6 removed "
                      "patches.")]


def _masked_mse_variant(prediction, target, mask, *, where="removed", per_patch="mean",
                        norm="patches", error="squared"):
    """masked_mse with one thing changed (the defaults give the reference)."""
    errors = (prediction - target).square() if error == "squared" else (prediction - target).abs()
    per = errors.mean(dim=-1) if per_patch == "mean" else errors.sum(dim=-1)
    weights = {"removed": mask, "visible": 1 - mask, "all": torch.ones_like(mask)}[where]
    if norm == "patches":
        return (per * weights).sum() / weights.sum()
    if norm == "all positions":
        return (per * weights).mean()
    return ((per * weights).sum(dim=1) / weights.sum(dim=1)).mean()      # per image, then mean


MASKED_MSE_SLIPS = [
    Slip("every patch",
         "you averaged the error over every patch, the visible ones too: those were given to the "
         "encoder, so predicting them teaches little (MAE leaves them out of the loss). Multiply "
         "each patch's error by the mask, which is 1 on the removed patches only.",
         partial(_masked_mse_variant, where="all")),
    Slip("visible patches",
         "you scored the visible patches and left the removed ones out: the mask is 1 where a "
         "patch was removed, so (per_patch * mask) keeps the removed ones, the ones to predict.",
         partial(_masked_mse_variant, where="visible")),
    Slip("divided by all positions",
         "you multiplied by the mask, then took .mean() over every position: the visible patches "
         "add zeros to the sum but still count in the division, so the loss shrinks as the mask "
         "ratio falls. Divide by the number of removed patches, mask.sum().",
         partial(_masked_mse_variant, norm="all positions")),
    Slip("summed over a patch's values",
         "you summed the squared errors of a patch's values: the instructions average them "
         "(.mean(dim=-1)), so that the loss does not grow with the patch's size.",
         partial(_masked_mse_variant, per_patch="sum")),
    Slip("averaged per image",
         "you averaged over each image's removed patches, then over the images: an image with "
         "few removed patches then weighs as much as one with many. Divide the sum over the "
         "whole batch by mask.sum(), every removed patch counting once.",
         partial(_masked_mse_variant, norm="per image")),
    Slip("absolute error",
         "you averaged the absolute errors, |prediction - target|: MAE's loss is the mean "
         "squared error, (prediction - target).square(), which punishes large misses more.",
         partial(_masked_mse_variant, error="absolute")),
]

MASKED_MSE_PASSED = (" The encoder never saw these patches: to predict them, it has to know what "
                     "the rest of the letter implies.")


def check_masked_mse(student):
    """Exercise 3: ``masked_mse(prediction, target, mask)`` -> the mean over the removed patches
    (``mask`` (N, L) 1.0 there) of each patch's mean squared error over its D values."""
    result = run_check(student, masked_mse, _masked_mse_cases(),
                       exercise="Exercise 3 (the loss on the removed patches)",
                       slips=MASKED_MSE_SLIPS)
    if result.passed:
        result.message += MASKED_MSE_PASSED
    report(result)
    return student if result.passed else masked_mse


# ---- exercise 4: the KL term of a VAE --------------------------------------------------------

def _kl_cases():
    generator = torch.Generator().manual_seed(7)
    return [Case("a code that is already N(0, 1): mean 0, log-variance 0",
                 (torch.zeros(3, 4), torch.zeros(3, 4)),
                 hint="the KL divergence of a distribution from itself is 0."),
            Case("4 codes of 3 dimensions, random means and log-variances",
                 (torch.randn(4, 3, generator=generator), torch.randn(4, 3, generator=generator)),
                 hint="per dimension 0.5 * (mean**2 + exp(log_variance) - 1 - log_variance); sum "
                      "over the code's dimensions (dim=1), then average over the batch."),
            Case("2 codes of 8 dimensions, confident (small variances)",
                 (torch.randn(2, 8, generator=generator), torch.full((2, 8), -3.0)),
                 hint="exp(log_variance) is the variance: with log-variance -3 the variance is "
                      "0.05, and - log_variance adds 3 per dimension.")]


def _kl_variant(mean, log_variance, *, variance="exp", half=True, sign=1.0, log_sign=-1.0,
                reduce="sum then mean"):
    """gaussian_kl with one thing changed (the defaults give the reference)."""
    spread = {"exp": log_variance.exp(), "raw": log_variance,
              "standard deviation": (0.5 * log_variance).exp()}[variance]
    log_spread = log_variance if variance != "raw" else log_variance.clamp(min=1e-6).log()
    terms = (mean.square() + spread - 1 + log_sign * log_spread) * (0.5 if half else 1.0) * sign
    if reduce == "batch summed, code averaged":
        return terms.sum(dim=0).mean()
    if reduce == "mean":
        return terms.mean()
    if reduce == "sum":
        return terms.sum()
    return terms.sum(dim=1).mean()


KL_SLIPS = [
    Slip("log-variance taken as the variance",
         "you used log_variance as if it were the variance: the encoder outputs the logarithm "
         "(so that any real number is a valid output), so the variance is log_variance.exp(), "
         "and its logarithm is log_variance itself.", partial(_kl_variant, variance="raw")),
    Slip("without the half",
         "twice the KL divergence: the formula has a factor 0.5 in front, 0.5 * (mean**2 + "
         "variance - 1 - log_variance).", partial(_kl_variant, half=False)),
    Slip("sign flipped",
         "the opposite sign: the KL divergence is never negative, and the VAE adds it to the "
         "reconstruction error, 0.5 * (mean**2 + exp(log_variance) - 1 - log_variance).",
         partial(_kl_variant, sign=-1.0)),
    Slip("mean over the code too",
         "you averaged over the code's dimensions as well: the divergence of a code is the sum "
         "over its dimensions (they are independent), then the mean over the batch: "
         ".sum(dim=1).mean().", partial(_kl_variant, reduce="mean")),
    Slip("summed over the batch, averaged over the code",
         "you summed over the batch (dim=0) and averaged over the code's dimensions: the other "
         "way round. A code's divergence is the sum over its own dimensions, .sum(dim=1), then "
         "the mean over the images, .mean().",
         partial(_kl_variant, reduce="batch summed, code averaged")),
    Slip("log-variance added",
         "you added log_variance where the formula subtracts it: 0.5 * (mean**2 + variance - 1 "
         "- log_variance). With the minus sign each dimension's term is never negative and is 0 "
         "exactly at mean 0, variance 1.", partial(_kl_variant, log_sign=1.0)),
    Slip("the standard deviation as the variance",
         "you used exp(log_variance / 2), the standard deviation, where the formula has the "
         "variance, exp(log_variance): the log of a variance halves into the log of a deviation, "
         "but the term itself is the variance.",
         partial(_kl_variant, variance="standard deviation")),
    Slip("summed over the batch",
         "you summed over the batch too: the reconstruction error it is added to is a mean over "
         "the images, so average this one over them as well: .sum(dim=1).mean().",
         partial(_kl_variant, reduce="sum")),
]

KL_PASSED = (" This term pulls every image's code distribution towards N(0, 1), so that codes "
             "drawn from N(0, 1) later decode into something like the training images.")


def check_gaussian_kl(student):
    """Exercise 4: ``gaussian_kl(mean, log_variance)`` -> KL(N(mean, exp(log_variance)) ||
    N(0, 1)), summed over the code's dimensions and averaged over the batch."""
    result = run_check(student, gaussian_kl, _kl_cases(), exercise="Exercise 4 (the KL term)",
                       slips=KL_SLIPS)
    if result.passed:
        result.message += KL_PASSED
    report(result)
    return student if result.passed else gaussian_kl
