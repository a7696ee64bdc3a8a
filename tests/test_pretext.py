"""Lesson 07's pretext networks and protocol (course_utils.pretext, course_utils.ssl_protocol)."""

import torch

from course_utils import pretext, self_supervised, ssl_protocol


def test_random_batches_visit_every_item_once_per_pass():
    batches = list(ssl_protocol.random_batches(10, 4, 5, seed=0))
    assert [len(batch) for batch in batches] == [4] * 5
    first_pass = torch.cat(batches)[:10]
    assert sorted(first_pass.tolist()) == list(range(10))
    assert all(torch.equal(a, b) for a, b in zip(batches, ssl_protocol.random_batches(10, 4, 5, seed=0)))


def test_puzzles_are_the_tiles_in_the_permutations_order():
    images = torch.rand(6, 3, 27, 27)
    permutations = torch.from_numpy(self_supervised.jigsaw_permutations(8))
    tiles, labels = pretext.make_puzzles(images, permutations, torch.Generator().manual_seed(0))
    assert tiles.shape == (6, 9, 3, 7, 7) and labels.shape == (6,)
    cells = self_supervised.cut_tiles(images, 3)                      # (6, 9, 3, 9, 9)
    for n in range(6):
        for position, cell in enumerate(permutations[labels[n]].tolist()):
            tile = tiles[n, position]
            # the tile is some 7 x 7 window of the cell the permutation put there
            windows = cells[n, cell].unfold(1, 7, 1).unfold(2, 7, 1)  # (3, 3, 3, 7, 7)
            assert any(torch.equal(tile, windows[:, i, j]) for i in range(3) for j in range(3))


def test_standardise_removes_each_images_brightness():
    images = torch.rand(4, 3, 7, 7)
    brighter = pretext.standardise(images * 0.5 + 0.3)
    assert torch.allclose(brighter, pretext.standardise(images), atol=1e-5)


def test_jigsaw_network_shapes():
    model = pretext.JigsawNetwork(num_permutations=8)
    assert model(torch.rand(2, 9, 3, 7, 7)).shape == (2, 8)
    assert model.features(torch.rand(5, 3, 16, 16)).shape == (5, 80)


def test_autoencoder_reconstructs_the_input_shape():
    model = pretext.AutoEncoder()
    images = torch.rand(3, 3, 16, 16)
    assert model(images).shape == images.shape
    assert model.features(images).shape == (3, 80)


def test_mae_encoder_never_sees_a_removed_patch():
    torch.manual_seed(0)
    model = pretext.MaskedAutoEncoder().eval()
    images = torch.rand(2, 3, 16, 16)
    encoded, mask, _ = model.encode(images, 0.75, torch.Generator().manual_seed(1))
    assert encoded.shape == (2, 1 + 16, 64) and mask.sum().item() == 2 * 48
    # change every removed patch: the encoder's output stays the same
    removed = mask[:, :, None].bool().expand(-1, -1, 12)
    from course_utils.vit import patchify, unpatchify
    patches = patchify(images, 2)
    changed = unpatchify(torch.where(removed, torch.rand_like(patches), patches), 2)
    again, _, _ = model.encode(changed, 0.75, torch.Generator().manual_seed(1))
    assert torch.allclose(encoded, again, atol=1e-5)


def test_mae_predicts_every_patch_and_scores_only_the_removed():
    model = pretext.MaskedAutoEncoder()
    images = torch.rand(2, 3, 16, 16)
    prediction, mask = model(images, 0.75, torch.Generator().manual_seed(0))
    assert prediction.shape == (2, 64, 12) and mask.shape == (2, 64)
    from course_utils.vit import patchify
    target = patchify(images, 2)
    moved_visible = prediction + (1 - mask[:, :, None]) * 5.0
    assert torch.isclose(pretext.masked_mse(prediction, target, mask),
                         pretext.masked_mse(moved_visible, target, mask))


def test_mae_pictures_keep_the_visible_patches():
    model = pretext.MaskedAutoEncoder()
    images = torch.rand(2, 3, 16, 16)
    masked, pasted, original = pretext.mae_pictures(model, images, 0.75)
    visible = masked != 0
    assert torch.equal(pasted[visible], images[visible]) and original is images


def test_gaussian_kl_is_zero_for_the_prior_and_positive_otherwise():
    assert pretext.gaussian_kl(torch.zeros(4, 3), torch.zeros(4, 3)).item() == 0
    assert pretext.gaussian_kl(torch.randn(4, 3), torch.randn(4, 3)).item() > 0


def test_small_vae_and_its_plain_twin():
    images = torch.rand(5, 3, 16, 16)
    for variational in (True, False):
        model = pretext.SmallVAE(3 * 16 * 16, code=4, variational=variational)
        reconstruction, mean, log_variance = model(images)
        assert reconstruction.shape == (5, 768) and mean.shape == log_variance.shape == (5, 4)
        assert model.loss(images).ndim == 0


def test_evaluate_frozen_on_features_that_are_the_labels():
    class OneHot(torch.nn.Module):
        def features(self, images):
            return images[:, :, 0, 0]
    labels = torch.arange(26).repeat(100 + 50)
    images = torch.nn.functional.one_hot(labels, 26).float()[:, :, None, None] + 0.01
    data = {"train": (images[:2600], labels[:2600]), "test": (images[2600:], labels[2600:])}
    scores = ssl_protocol.evaluate_frozen(OneHot(), data)
    assert scores == {"knn": {10: 1.0, 100: 1.0}, "linear": {10: 1.0, 100: 1.0}}
