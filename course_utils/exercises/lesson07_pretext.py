"""Lesson 07 exercises on pretext tasks: a jigsaw puzzle's shuffled tiles (exercise 1) and MAE's
random masking of patch tokens (exercise 2).

The references are the package's own (course_utils.self_supervised), which the lesson trains
with. A wrong answer is diagnosed by the exercise's slips, each the reference with one common
mistake (see course_utils.checks.Slip), or by a property of the answer (the input changed in
place, noise drawn from torch's global random numbers instead of the generator given).
"""

from dataclasses import dataclass, replace
from functools import partial

import torch

from course_utils import self_supervised
from course_utils.checks import Case, Slip, compare, report, run_check

# ---- reference solutions ---------------------------------------------------------------------

shuffle_tiles = self_supervised.shuffle_tiles
random_masking = self_supervised.random_masking


# ---- exercise 1: shuffling the tiles of a jigsaw puzzle --------------------------------------

def _distinct_tiles(n, count, c, h, w):
    """Tiles (N, T, C, h, w) whose values are all different, so that any misplaced tile shows."""
    return torch.linspace(0.01, 1.0, n * count * c * h * w).reshape(n, count, c, h, w)


def _shuffle_cases():
    return [Case("4 puzzles of 2 x 2 RGB tiles (as many puzzles as tiles)",
                 (_distinct_tiles(4, 4, 3, 2, 2), [1, 3, 0, 2]),
                 hint="position 0 gets tile 1, position 1 tile 3, position 2 tile 0 and position 3 "
                      "tile 2, in every puzzle: the answer is tiles[:, permutation]."),
            Case("2 puzzles of 3 x 3 RGB tiles, the permutation as a tensor",
                 (_distinct_tiles(2, 9, 3, 2, 2), torch.tensor([4, 0, 7, 2, 8, 1, 5, 3, 6])),
                 hint="the permutation may come as a tensor as well as a list: tiles[:, "
                      "permutation] takes either (torch.as_tensor(permutation) makes a tensor of "
                      "both)."),
            Case("one grey puzzle of 3 x 3 tiles", (_distinct_tiles(1, 9, 1, 3, 3),
                                                    [8, 6, 7, 2, 0, 1, 5, 3, 4]),
                 hint="one puzzle: the answer is still (1, 9, 1, 3, 3), the batch axis kept "
                      "(avoid squeeze()).")]


SHUFFLE_PASSED = (" The network sees the shuffled tiles and must name the permutation: it can only "
                  "do so by recognising what each tile shows.")
TILES_IN_PLACE = ("your answer is right, but you moved the tiles inside the tensor you were given, "
                  "so the caller's tiles changed too: the next puzzle cut from them would start "
                  "from a shuffled image. Index into a new tensor, tiles[:, permutation], and "
                  "leave the input as it was.")


def check_shuffle_tiles(student):
    """Exercise 1: ``shuffle_tiles(tiles, permutation)`` -> the tiles (N, T, C, h, w) of N puzzles
    with position i of every puzzle holding tile ``permutation[i]``: ``tiles[:, permutation]``.
    ``permutation`` is a list or a 1-D tensor of the T tile numbers; the input is left as it
    was. Returns the function the notebook should use next."""
    result = run_check(student, shuffle_tiles, _shuffle_cases(),
                       exercise="Exercise 1 (shuffling the tiles)", diagnose=_diagnose_shuffle,
                       slips=SHUFFLE_SLIPS)
    if result.passed:
        result.message += SHUFFLE_PASSED
    report(result)
    return student if result.passed else shuffle_tiles


OTHER_PERMUTATION = ("every position holds one of the puzzle's tiles, each tile once, but not in "
                     "the order of the permutation you were given: {found} instead of {given}. "
                     "The permutation is the network's label, so the tiles must follow it "
                     "(no torch.randperm of your own): position i gets tile permutation[i].")


def _diagnose_shuffle(case, expected, got):
    """A right answer fails only when the input was changed: say so. Tiles shuffled by another
    permutation than the one given: say which."""
    if isinstance(got, Exception):
        return None
    if compare(expected, got) is None:
        return TILES_IN_PLACE
    tiles, permutation = case.args
    if not isinstance(got, torch.Tensor) or got.shape != tiles.shape:
        return None
    found = []
    for position in range(tiles.shape[1]):
        matches = [tile for tile in range(tiles.shape[1]) if torch.equal(got[:, position], tiles[:, tile])]
        if len(matches) != 1:
            return None
        found.append(matches[0])
    given = torch.as_tensor(permutation)
    if sorted(found) == list(range(tiles.shape[1])) and found != given.argsort().tolist():
        return OTHER_PERMUTATION.format(found=found, given=given.tolist())
    return None


def _shuffle_variant(tiles, permutation, *, order="as given", axis=1, in_place=False,
                     answer="tensor"):
    """shuffle_tiles with one thing changed (the defaults give the reference)."""
    permutation = torch.as_tensor(permutation)
    if order == "inverse":
        permutation = permutation.argsort()        # position permutation[i] gets tile i
    if in_place:  # each position overwritten while a later one may still need its tile
        for position, tile in enumerate(permutation.tolist()):
            tiles[:, position] = tiles[:, tile]
        return tiles
    if answer == "list":
        return [tiles[:, tile] for tile in permutation.tolist()]
    if answer == "stacked on axis 0":
        return torch.stack([tiles[:, tile] for tile in permutation.tolist()])
    if answer == "first puzzle":
        return tiles[0, permutation]
    return tiles[permutation] if axis == 0 else tiles[:, permutation]


SHUFFLE_SLIPS = [
    Slip("inverse permutation",
         "you placed tile i at position permutation[i]: that is the inverse permutation "
         "(permutation.argsort()). The instructions read the other way: position i gets tile "
         "permutation[i], so that the answer is tiles[:, permutation].",
         partial(_shuffle_variant, order="inverse")),
    Slip("batch axis permuted",
         "you shuffled the puzzles, not the tiles: tiles[permutation] indexes the first axis, the "
         "batch (it only ran because there are as many puzzles as tiles here). The tiles are "
         "axis 1: tiles[:, permutation].", partial(_shuffle_variant, axis=0)),
    Slip("permuted in place",
         "tiles[:, i] = tiles[:, permutation[i]] in a loop writes into the tensor you were given: "
         "a tile is overwritten before a later position reads it, so some tiles appear twice and "
         "others not at all (and the caller's tiles change too). Index once into a new tensor: "
         "tiles[:, permutation].", partial(_shuffle_variant, in_place=True)),
    Slip("a list of tiles",
         "the right tiles, but in a Python list, one tensor per position: return one tensor "
         "(N, T, C, h, w), tiles[:, permutation] (or torch.stack(your_list, dim=1)).",
         partial(_shuffle_variant, answer="list")),
    Slip("stacked on the wrong axis",
         "the right tiles, stacked along a new first axis: torch.stack(tiles_list) gives (T, N, C, "
         "h, w), positions first. Stack along axis 1, torch.stack(tiles_list, dim=1), or index "
         "once: tiles[:, permutation] is (N, T, C, h, w).",
         partial(_shuffle_variant, answer="stacked on axis 0")),
    Slip("first puzzle only",
         "you shuffled the tiles of the first puzzle only (tiles[0, permutation], shape (T, C, h, "
         "w)): the batch holds N puzzles, and every one of them gets the same permutation. Keep "
         "the batch axis: tiles[:, permutation].", partial(_shuffle_variant, answer="first puzzle")),
]


# ---- exercise 2: MAE's random masking --------------------------------------------------------

@dataclass(frozen=True)
class _FreshGenerator:
    """A case's generator, made afresh for each call, so that the reference and the learner's
    function draw the same numbers."""

    seed: int

    def build(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed)

    def __repr__(self) -> str:
        return f"torch.Generator().manual_seed({self.seed})"


def _with_fresh_generator(masking):
    """``masking`` called with a new generator seeded as the case says; torch's global random
    numbers go on as they were, whatever it draws."""
    def run(tokens, mask_ratio, *, generator):
        with torch.random.fork_rng():
            return masking(tokens, mask_ratio, generator=generator.build())
    return run


def _distinct_tokens(n, length, dim):
    return torch.linspace(-1.0, 1.0, n * length * dim).reshape(n, length, dim)


def _masking_cases():
    return [Case("2 sequences of 8 tokens, mask ratio 0.75",
                 (_distinct_tokens(2, 8, 4), 0.75), {"generator": _FreshGenerator(0)},
                 hint="draw noise = torch.rand(N, L, generator=generator) before anything else; "
                      "shuffle = noise.argsort(dim=1) puts the lowest noise first, and the first "
                      "keep = int(8 * 0.25) = 2 positions of each row are kept."),
            Case("3 sequences of 7 tokens, mask ratio 0.75",
                 (_distinct_tokens(3, 7, 2), 0.75), {"generator": _FreshGenerator(1)},
                 hint="7 * 0.25 = 1.75 tokens: keep = int(1.75) = 1 token per sequence, the other "
                      "6 are masked."),
            Case("one sequence of 10 tokens, mask ratio 0.5",
                 (_distinct_tokens(1, 10, 3), 0.5), {"generator": _FreshGenerator(2)},
                 hint="one sequence: visible is (1, 5, 3), mask and restore (1, 10), the batch "
                      "axis kept."),
            Case("2 sequences of 5 tokens, mask ratio 0 (nothing masked)",
                 (_distinct_tokens(2, 5, 2), 0.0), {"generator": _FreshGenerator(3)},
                 hint="mask ratio 0 keeps every token: visible holds all 5, in the shuffled "
                      "order, and the mask is all 0.")]


MASKING_PASSED = (" With most patches removed (MAE removes 75%), the missing ones cannot be filled "
                  "in by copying a neighbour, and the encoder only processes the visible few.")
GLOBAL_NOISE = ("your noise came from torch's global random numbers (torch.rand without "
                "generator=), so it is not the one the instructions ask for, and every cell after "
                "this one gets other random numbers than it would have. Draw it from the "
                "generator you are given: torch.rand(N, L, generator=generator).")


def check_random_masking(student):
    """Exercise 2: ``random_masking(tokens, mask_ratio, *, generator)`` -> ``(visible, mask,
    restore)`` for tokens (N, L, D), as course_utils.self_supervised.random_masking: keep =
    int(L * (1 - mask_ratio)); noise = torch.rand(N, L, generator=generator), drawn first;
    shuffle = noise.argsort(dim=1), the lowest noise first; restore = shuffle.argsort(dim=1);
    visible (N, keep, D) the tokens at shuffle[:, :keep], in that order; mask (N, L) float, 1
    where a token was removed, in the original order. Returns the function the notebook should
    use next."""
    exercise = "Exercise 2 (random masking)"
    names = ("visible", "mask", "restore")
    if student is random_masking or not callable(student):
        result = run_check(student, random_masking, _masking_cases(), exercise=exercise)
    else:
        slips = [replace(slip, fn=_with_fresh_generator(slip.fn)) for slip in MASKING_SLIPS]
        result = run_check(_with_fresh_generator(student), _with_fresh_generator(random_masking),
                           _masking_cases(), exercise=exercise,
                           diagnose=partial(_diagnose_masking, student), slips=slips,
                           output_names=names)
        if result.passed:
            result.message += MASKING_PASSED
    report(result)
    return student if result.passed else random_masking


def _diagnose_masking(student, case, expected, got):
    """Noise drawn from torch's global random numbers: the call moves them."""
    if isinstance(got, Exception):
        return None
    tokens, mask_ratio = case.args
    with torch.random.fork_rng():
        before = torch.get_rng_state()
        student(tokens.clone(), mask_ratio, generator=case.kwargs["generator"].build())
        moved = not torch.equal(before, torch.get_rng_state())
    return GLOBAL_NOISE if moved else None


def _masking_variant(tokens, mask_ratio, *, generator, rounding="down", noise="per sequence",
                     kept="lowest", restore="argsort", mask="restored", visible_order="shuffled"):
    """random_masking with one thing changed (the defaults give the reference)."""
    n, length, dim = tokens.shape
    kept_share = length * (1 - mask_ratio)
    keep = int(kept_share) if rounding == "down" else round(kept_share)
    if noise == "per sequence":
        draws = torch.rand(n, length, generator=generator)                       # (N, L)
    else:  # one draw for the whole batch
        draws = torch.rand(1, length, generator=generator).expand(n, length)    # (N, L)
    shuffle = draws.argsort(dim=1, descending=kept == "highest")               # (N, L)
    back = shuffle.argsort(dim=1) if restore == "argsort" else shuffle
    kept_positions = shuffle[:, :keep]                                         # (N, keep)
    if visible_order == "original":
        kept_positions = kept_positions.sort(dim=1).values
    visible = torch.gather(tokens, 1, kept_positions[:, :, None].expand(n, keep, dim))
    removed = torch.ones(n, length)
    removed[:, :keep] = 0                      # in the shuffled order
    if mask != "shuffled order":
        removed = torch.gather(removed, 1, back)                                # original order
    if mask == "inverted":
        removed = 1 - removed
    elif mask == "bool":
        removed = removed.bool()
    return visible, removed, back


MASKING_SLIPS = [
    Slip("keep rounded",
         "you kept one token too many: L * (1 - mask_ratio) is often not whole (7 * 0.25 = 1.75 "
         "here), and round() or math.ceil() rounds it up. The instructions round down, keep = "
         "int(L * (1 - mask_ratio)), so that at least mask_ratio of the tokens are masked.",
         partial(_masking_variant, rounding="nearest")),
    Slip("mask inverted",
         "your mask is 1 on the kept tokens and 0 on the removed ones: MAE's mask is 1 where a "
         "token was removed (the loss is computed there, (loss * mask).sum() / mask.sum()) and 0 "
         "where it is visible.", partial(_masking_variant, mask="inverted")),
    Slip("mask in the shuffled order",
         "your mask is keep zeros then ones in every row: that is the mask in the shuffled order. "
         "Put it back in the tokens' own order, torch.gather(mask, 1, restore), so that mask[n, "
         "j] says whether token j of sequence n was removed.",
         partial(_masking_variant, mask="shuffled order")),
    Slip("highest noise kept",
         "you kept the tokens with the highest noise: the instructions keep the lowest, "
         "shuffle = noise.argsort(dim=1) (ascending) and the first keep positions of it. Either "
         "choice is random, but only one draws the same tokens as the reference.",
         partial(_masking_variant, kept="highest")),
    Slip("restore is the shuffle",
         "restore is the shuffle itself: shuffle says which token goes to each shuffled place, "
         "and putting them back needs the inverse permutation, restore = shuffle.argsort(dim=1) "
         "(gather(gather(x, shuffle), restore) is x again).",
         partial(_masking_variant, restore="shuffle")),
    Slip("one noise for the whole batch",
         "every sequence is masked at the same places: you drew one row of noise, torch.rand(1, "
         "L), for the whole batch. Draw one number per token of every sequence, torch.rand(N, L, "
         "generator=generator), so that each image loses other patches.",
         partial(_masking_variant, noise="shared")),
    Slip("boolean mask",
         "the right mask, but of booleans: the instructions ask for floats, 1.0 where a token "
         "was removed and 0.0 elsewhere, which the reconstruction loss multiplies by "
         "(torch.ones(N, L) with the first keep columns set to 0, then gathered with restore).",
         partial(_masking_variant, mask="bool")),
    Slip("visible tokens in their original order",
         "the right tokens are visible, but you sorted them back into the order they had in the "
         "sequence: the instructions keep them in the shuffled order, tokens at shuffle[:, :keep] "
         "as they come (no sort). Either order could work in a model, but restore undoes the "
         "shuffle only if visible follows it.",
         partial(_masking_variant, visible_order="original")),
]
