"""Lesson 07's pretext and generative methods: jigsaw puzzles, auto-encoders, masked
auto-encoders (MAE) and a small variational auto-encoder (VAE).

Each network exposes ``features(images)``, what :func:`course_utils.ssl_protocol.evaluate_frozen`
judges, and each ``run_*`` function is the body of a recipe of :mod:`course_utils.pretrained`:
pretrain on the protocol's unlabelled glyphs, record the loss of every step, a k-NN curve and the
final frozen-feature scores.
"""

import torch
import torch.nn.functional as F
from torch import nn

from course_utils import config, self_supervised, ssl_protocol
from course_utils.pretrained import Outputs
from course_utils.transformer import EncoderLayer
from course_utils.vit import patchify, unpatchify

# ---- jigsaw puzzles [Noroozi & Favaro, 2016] --------------------------------------------------

JIGSAW_CELL = 9   # the image (27 x 27) is cut into 3 x 3 cells of 9 x 9 pixels...
JIGSAW_TILE = 7   # ...and each tile is a random 7 x 7 crop of its cell, so edges do not line up


def jigsaw_images(per_class: int = ssl_protocol.PRETRAIN_PER_CLASS, *,
                  seed: int = ssl_protocol.PRETRAIN_SEED) -> torch.Tensor:
    """The pretraining glyphs rendered at 27 x 27 for 3 x 3 cells, RGB in [0, 1], (N, 3, 27, 27)
    on the CPU. (The same letters, fonts and backgrounds as the 16 x 16 set of that seed.)"""
    from course_utils.glyphs import LETTERS, generate_glyphs

    pictures, _ = generate_glyphs(per_class * len(LETTERS), seed=seed, image_size=3 * JIGSAW_CELL)
    return torch.from_numpy(pictures).permute(0, 3, 1, 2).float() / 255


def standardise(images: torch.Tensor) -> torch.Tensor:
    """Each image (or tile) minus its own mean, over its own standard deviation: a tile's
    brightness must not tell where it came from."""
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    return (images - mean) / images.std(dim=(1, 2, 3), keepdim=True).clamp(min=1e-3)


def jitter_tiles(cells: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """A random ``size`` x ``size`` crop of every cell: (N, T, C, h, w) -> (N, T, C, size, size)."""
    n, count, c, h, w = cells.shape
    top = torch.randint(0, h - size + 1, (n, count), generator=generator)
    left = torch.randint(0, w - size + 1, (n, count), generator=generator)
    rows = (top[..., None] + torch.arange(size)).to(cells.device, non_blocking=True)  # (N, T, size)
    columns = (left[..., None] + torch.arange(size)).to(cells.device, non_blocking=True)
    picked = cells.gather(3, rows[:, :, None, :, None].expand(n, count, c, size, w))
    return picked.gather(4, columns[:, :, None, None, :].expand(n, count, c, size, size))


def make_puzzles(images: torch.Tensor, permutations: torch.Tensor, generator: torch.Generator):
    """Puzzles of a batch of 27 x 27 images: each image's tiles shuffled by one of
    ``permutations`` (P, 9), drawn at random. Returns ``(tiles (N, 9, C, 7, 7), labels (N,))``,
    the label being the permutation's number, what the network must find."""
    labels = torch.randint(0, len(permutations), (len(images),), generator=generator)
    tiles = jitter_tiles(self_supervised.cut_tiles(images, 3), JIGSAW_TILE, generator)
    order = permutations[labels].to(images.device, non_blocking=True)   # (N, 9)
    shuffled = tiles[torch.arange(len(images), device=images.device)[:, None], order]
    return shuffled, labels.to(images.device, non_blocking=True)


class JigsawNetwork(nn.Module):
    """The context-free network: one CNN (lesson 06's ResNet) sees each tile alone, its nine
    feature vectors are concatenated in puzzle order, and a small MLP names the permutation."""

    def __init__(self, num_permutations: int, tiles: int = 9):
        super().__init__()
        self.encoder = ssl_protocol.build_cnn()
        self.encoder.head = nn.Identity()
        self.classifier = nn.Sequential(nn.Linear(tiles * 80, 256), nn.ReLU(),
                                        nn.Linear(256, num_permutations))

    def forward(self, tiles: torch.Tensor) -> torch.Tensor:
        n, count = tiles.shape[:2]
        features = self.encoder.features(standardise(tiles.flatten(0, 1)))   # (N * 9, 80)
        return self.classifier(features.reshape(n, -1))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder.features(standardise(images))


def jigsaw_accuracy(model: JigsawNetwork, images: torch.Tensor, permutations: torch.Tensor, *,
                    seed: int = 0) -> float:
    """The share of puzzles of ``images`` whose permutation ``model`` names (eval mode)."""
    generator = torch.Generator().manual_seed(seed)
    model.eval()
    right = 0
    with torch.no_grad():
        for chunk in images.split(512):
            tiles, labels = make_puzzles(chunk, permutations, generator)
            right += (model(tiles).argmax(dim=1) == labels).sum().item()
    return right / len(images)


# ---- auto-encoders -------------------------------------------------------------------------

class AutoEncoder(nn.Module):
    """Lesson 06's ResNet squeezes an image into its 80 pooled features (the bottleneck); a
    decoder of transposed convolutions paints the 16 x 16 image back from them alone."""

    def __init__(self):
        super().__init__()
        self.encoder = ssl_protocol.build_cnn()
        self.encoder.head = nn.Identity()
        self.decoder = nn.Sequential(
            nn.Linear(80, 80 * 4 * 4), nn.Unflatten(1, (80, 4, 4)), nn.ReLU(),
            nn.ConvTranspose2d(80, 40, 4, stride=2, padding=1), nn.BatchNorm2d(40), nn.ReLU(),
            nn.ConvTranspose2d(40, 20, 4, stride=2, padding=1), nn.BatchNorm2d(20), nn.ReLU(),
            nn.Conv2d(20, 3, 3, padding=1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder.features(images))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder.features(images)


# ---- masked auto-encoders [He et al., 2022] --------------------------------------------------

def masked_mse(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MAE's loss: the mean squared error per patch (N, L, D) -> (N, L), averaged over the
    removed patches only (``mask`` 1 there): the visible ones are given, nothing to learn."""
    per_patch = (prediction - target).square().mean(dim=-1)
    return (per_patch * mask).sum() / mask.sum().clamp(min=1)


class MaskedAutoEncoder(nn.Module):
    """The lesson's ViT as MAE's encoder, which only sees the visible patches; a light decoder
    (width 32, two layers) gets them back in place with a shared *mask token* at every removed
    position, and predicts every patch's pixels."""

    def __init__(self, decoder_dim: int = 32, decoder_depth: int = 2):
        super().__init__()
        self.encoder = ssl_protocol.build_vit()
        self.encoder.head = nn.Identity()
        self.patch_size = ssl_protocol.VIT["patch_size"]
        length, dim = self.encoder.num_patches, ssl_protocol.VIT["dim"]
        self.decoder_embed = nn.Linear(dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.decoder_position = nn.Parameter(torch.empty(1, 1 + length, decoder_dim))
        nn.init.trunc_normal_(self.decoder_position, std=0.02, a=-0.04, b=0.04)
        nn.init.trunc_normal_(self.mask_token, std=0.02, a=-0.04, b=0.04)
        self.decoder = nn.ModuleList([
            EncoderLayer(decoder_dim, 4, mlp_ratio=2.0, activation=nn.GELU, norm_first=True,
                         fused=True) for _ in range(decoder_depth)])
        self.decoder_norm = nn.LayerNorm(decoder_dim)
        self.predict = nn.Linear(decoder_dim, 3 * self.patch_size ** 2)

    def encode(self, images: torch.Tensor, mask_ratio: float, generator=None):
        """The visible patches through the encoder: ``(encoded (N, 1 + keep, dim), mask,
        restore)``, the class token first."""
        vit = self.encoder
        tokens = vit.patch_embedding(images) + vit.position_embedding[:, 1:]
        visible, mask, restore = self_supervised.random_masking(tokens, mask_ratio,
                                                                generator=generator)
        class_token = (vit.class_token + vit.position_embedding[:, :1]).expand(len(images), -1, -1)
        x = torch.cat([class_token, visible], dim=1)
        for layer in vit.layers:
            x = layer(x)
        return vit.norm(x), mask, restore

    def forward(self, images: torch.Tensor, mask_ratio: float, generator=None):
        """-> ``(prediction (N, L, 3 p p), mask (N, L))``: every patch's predicted pixels."""
        encoded, mask, restore = self.encode(images, mask_ratio, generator)
        x = self.decoder_embed(encoded)
        n, length = mask.shape
        fillers = self.mask_token.expand(n, length - (x.shape[1] - 1), -1)
        patches = torch.cat([x[:, 1:], fillers], dim=1)                   # shuffled order
        patches = patches.gather(1, restore[:, :, None].expand(-1, -1, x.shape[2]))
        x = torch.cat([x[:, :1], patches], dim=1) + self.decoder_position
        for layer in self.decoder:
            x = layer(x)
        return self.predict(self.decoder_norm(x))[:, 1:], mask

    def loss(self, images: torch.Tensor, mask_ratio: float, generator=None) -> torch.Tensor:
        prediction, mask = self(images, mask_ratio, generator)
        return masked_mse(prediction, patchify(images, self.patch_size), mask)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The class token with every patch visible, as MAE is evaluated."""
        return self.encoder.features(images)


@torch.no_grad()
def mae_pictures(model: MaskedAutoEncoder, images: torch.Tensor, mask_ratio: float, *,
                 seed: int = 0):
    """What the notes' figure shows, in the normalised pixel space of ``images``: ``(masked,
    reconstruction, original)``, the masked input with removed patches set to 0 (the mean
    colour), and the prediction with the visible patches pasted back as they were."""
    model.eval()
    prediction, mask = model(images, mask_ratio, torch.Generator().manual_seed(seed))
    target = patchify(images, model.patch_size)
    removed = mask[:, :, None]
    masked = unpatchify(target * (1 - removed), model.patch_size)
    pasted = unpatchify(prediction * removed + target * (1 - removed), model.patch_size)
    return masked, pasted, images


# ---- a variational auto-encoder [Kingma & Welling, 2014] ------------------------------------

def gaussian_kl(mean: torch.Tensor, log_variance: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(log_variance)) || N(0, 1)) summed over the code's dimensions, averaged over
    the batch: the term a VAE adds to the reconstruction error."""
    per_code = 0.5 * (mean.square() + log_variance.exp() - 1 - log_variance).sum(dim=1)
    return per_code.mean()


class SmallVAE(nn.Module):
    """A two-layer MLP encoder to a ``code``-dimensional Gaussian and back. With
    ``variational=False`` it is a plain auto-encoder of the same shape (the mean is the code)."""

    def __init__(self, pixels: int, code: int = 8, hidden: int = 256, variational: bool = True):
        super().__init__()
        self.variational = variational
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(pixels, hidden), nn.ReLU(),
                                     nn.Linear(hidden, 2 * code))
        self.decoder = nn.Sequential(nn.Linear(code, hidden), nn.ReLU(), nn.Linear(hidden, pixels))

    def forward(self, images: torch.Tensor):
        """-> ``(reconstruction (N, pixels), mean, log_variance)``; a VAE decodes a sample."""
        mean, log_variance = self.encoder(images).chunk(2, dim=1)
        code = mean
        if self.variational:
            code = mean + (0.5 * log_variance).exp() * torch.randn_like(mean)
        return self.decoder(code), mean, log_variance

    def loss(self, images: torch.Tensor) -> torch.Tensor:
        reconstruction, mean, log_variance = self(images)
        error = (reconstruction - images.flatten(1)).square().sum(dim=1).mean()
        return error + gaussian_kl(mean, log_variance) if self.variational else error


# ---- the recipes' runs -----------------------------------------------------------------------

def run_supervised(settings: dict, build, max_steps: int | None = None) -> Outputs:
    """The baseline: the encoder trained *with* the labels of the unlabelled set."""
    unlabelled, data = ssl_protocol.setting_up(settings["seed"])
    model = build(len(ssl_protocol.LETTERS)).to(config.current().device)
    images, labels = unlabelled["images"], unlabelled["labels"]
    record, curve = ssl_protocol.knn_recorder(data)

    def loss_of_batch(indices):
        indices = indices.to(images.device)
        return F.cross_entropy(model(images[indices]), labels[indices])

    history = ssl_protocol.pretrain_recipe(model, loss_of_batch, len(images), settings,
                                           max_steps=max_steps, on_step=record)
    return ssl_protocol.recipe_outputs(model, data, history, evaluate=max_steps is None,
                                       knn_curve=curve)


def run_jigsaw(settings: dict, max_steps: int | None = None) -> Outputs:
    unlabelled, data = ssl_protocol.setting_up(settings["seed"])
    device = config.current().device
    images = jigsaw_images().to(device)
    permutations = torch.from_numpy(self_supervised.jigsaw_permutations(
        settings["permutations"], seed=settings["seed"]))
    model = JigsawNetwork(len(permutations)).to(device)
    generator = torch.Generator().manual_seed(settings["seed"] + 1)
    record, curve = ssl_protocol.knn_recorder(data)
    held_out = jigsaw_images(20, seed=ssl_protocol.EVAL_SEED).to(device)

    def loss_of_batch(indices):
        tiles, labels = make_puzzles(images[indices.to(device)], permutations, generator)
        return F.cross_entropy(model(tiles), labels)

    def record_both(step, model):
        record(step, model)
        curve[-1]["puzzles_solved"] = jigsaw_accuracy(model, held_out, permutations)

    history = ssl_protocol.pretrain_recipe(model, loss_of_batch, len(images), settings,
                                           max_steps=max_steps, on_step=record_both)
    return ssl_protocol.recipe_outputs(
        model, data, history, evaluate=max_steps is None, knn_curve=curve,
        permutations=permutations.tolist(),
        min_hamming=self_supervised.min_hamming_distance(permutations.numpy()))


def run_autoencoder(settings: dict, max_steps: int | None = None) -> Outputs:
    unlabelled, data = ssl_protocol.setting_up(settings["seed"])
    images = unlabelled["images"]
    model = AutoEncoder().to(images.device)
    record, curve = ssl_protocol.knn_recorder(data)

    def loss_of_batch(indices):
        batch = images[indices.to(images.device)]
        return F.mse_loss(model(batch), batch)

    history = ssl_protocol.pretrain_recipe(model, loss_of_batch, len(images), settings,
                                           max_steps=max_steps, on_step=record)
    return ssl_protocol.recipe_outputs(model, data, history, evaluate=max_steps is None,
                                       knn_curve=curve)


def train_mae(settings: dict, mask_ratio: float, unlabelled: dict, data: dict, *,
              max_steps: int | None = None):
    """One MAE pretraining at ``mask_ratio``: ``(model, history, knn curve)``."""
    images = unlabelled["images"]
    model = MaskedAutoEncoder().to(images.device)
    generator = torch.Generator().manual_seed(settings["seed"] + 1)
    record, curve = ssl_protocol.knn_recorder(data)

    def loss_of_batch(indices):
        return model.loss(images[indices.to(images.device)], mask_ratio, generator)

    history = ssl_protocol.pretrain_recipe(model, loss_of_batch, len(images), settings,
                                           max_steps=max_steps, on_step=record)
    return model, history, curve


def held_out_mae_loss(model: MaskedAutoEncoder, images: torch.Tensor, mask_ratio: float) -> float:
    """The loss on the removed patches of ``images`` (a fixed draw of masks), in eval mode."""
    model.eval()
    with torch.no_grad():
        return model.loss(images, mask_ratio, torch.Generator().manual_seed(0)).item()


def run_mae(settings: dict, max_steps: int | None = None) -> Outputs:
    unlabelled, data = ssl_protocol.setting_up(settings["seed"])
    model, history, curve = train_mae(settings, settings["mask_ratio"], unlabelled, data,
                                      max_steps=max_steps)
    if max_steps:
        return ssl_protocol.recipe_outputs(model, data, history, evaluate=False, knn_curve=curve)
    return ssl_protocol.recipe_outputs(
        model, data, history, evaluate=True, knn_curve=curve,
        held_out_loss={str(r): held_out_mae_loss(model, data["test"][0], r)
                       for r in settings["shown_ratios"]},
        fine_tuned=_fine_tuned(model.encoder, data, settings))


def _fine_tuned(encoder: nn.Module, data: dict, settings: dict) -> dict:
    """Test accuracy after fine-tuning ``encoder``, and a random ViT alike, at each budget."""
    config.seed_everything(settings["seed"])  # the random state a recipe starts from, as before
    width = ssl_protocol.VIT["dim"]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings["seed"])
        random_vit = ssl_protocol.build_vit().to(data["train"][0].device)
    random_vit.head = nn.Identity()
    return {start: {str(k): ssl_protocol.fine_tune_accuracy(network, width, data, k,
                                                             steps=settings["fine_tune_steps"])
                    for k in ssl_protocol.BUDGETS}
            for start, network in (("MAE", encoder), ("random", random_vit))}


def run_mae_ratios(settings: dict, max_steps: int | None = None) -> Outputs:
    """MAE pretrained at each of ``settings["ratios"]``: scores and held-out loss for each."""
    unlabelled, data = ssl_protocol.setting_up(settings["seed"])
    runs = []
    for ratio in settings["ratios"]:
        model, history, curve = train_mae(settings, ratio, unlabelled, data, max_steps=max_steps)
        runs.append({"mask_ratio": ratio, "step_loss": history["step_loss"],
                     "seconds": history["seconds"], "knn_curve": curve,
                     "held_out_loss": held_out_mae_loss(model, data["test"][0], ratio),
                     "scores": None if max_steps else ssl_protocol.evaluate_frozen(model, data)})
        if max_steps:
            break
    return Outputs(model=None, results={"runs": runs, "step_loss": runs[0]["step_loss"]})
