import numpy as np
import pytest
import torch

from course_utils.numberwords import (CharVocabulary, english, french, split_numbers,
                                      vocabularies)

KNOWN = {
    1: ("un", "one"),
    7: ("sept", "seven"),
    11: ("onze", "eleven"),
    16: ("seize", "sixteen"),
    17: ("dix-sept", "seventeen"),
    20: ("vingt", "twenty"),
    21: ("vingt et un", "twenty-one"),
    22: ("vingt-deux", "twenty-two"),
    31: ("trente et un", "thirty-one"),
    60: ("soixante", "sixty"),
    61: ("soixante et un", "sixty-one"),
    70: ("soixante-dix", "seventy"),
    71: ("soixante et onze", "seventy-one"),
    72: ("soixante-douze", "seventy-two"),
    77: ("soixante-dix-sept", "seventy-seven"),
    80: ("quatre-vingts", "eighty"),
    81: ("quatre-vingt-un", "eighty-one"),
    90: ("quatre-vingt-dix", "ninety"),
    91: ("quatre-vingt-onze", "ninety-one"),
    97: ("quatre-vingt-dix-sept", "ninety-seven"),
    100: ("cent", "one hundred"),
    101: ("cent un", "one hundred one"),
    180: ("cent quatre-vingts", "one hundred eighty"),
    200: ("deux cents", "two hundred"),
    201: ("deux cent un", "two hundred one"),
    999: ("neuf cent quatre-vingt-dix-neuf", "nine hundred ninety-nine"),
    1000: ("mille", "one thousand"),
    1001: ("mille un", "one thousand one"),
    2000: ("deux mille", "two thousand"),
    21_000: ("vingt et un mille", "twenty-one thousand"),
    80_000: ("quatre-vingt mille", "eighty thousand"),
    80_080: ("quatre-vingt mille quatre-vingts", "eighty thousand eighty"),
    200_000: ("deux cent mille", "two hundred thousand"),
    300_200: ("trois cent mille deux cents", "three hundred thousand two hundred"),
    999_999: ("neuf cent quatre-vingt-dix-neuf mille neuf cent quatre-vingt-dix-neuf",
              "nine hundred ninety-nine thousand nine hundred ninety-nine"),
}


@pytest.mark.parametrize("number", sorted(KNOWN))
def test_known_numbers(number):
    assert (french(number), english(number)) == KNOWN[number]


def test_every_number_has_a_distinct_well_formed_spelling():
    numbers = range(1, 100_000, 7)
    for spell in (french, english):
        words = [spell(n) for n in numbers]
        assert len(set(words)) == len(words)
        assert all(w == w.strip() and "  " not in w and "--" not in w for w in words)
    assert french(0) == "zéro" and english(0) == "zero"


def test_bad_numbers_are_refused():
    for bad in (-1, 1_000_000):
        with pytest.raises(ValueError, match="between 0 and"):
            french(bad)
    with pytest.raises(TypeError, match="integer"):
        english(3.0)
    with pytest.raises(TypeError, match="integer"):
        english(True)


def test_split_is_disjoint_complete_and_seeded():
    splits = split_numbers(1000, val_fraction=0.1, test_fraction=0.2, seed=3)
    together = np.concatenate([splits["train"], splits["val"], splits["test"]])
    assert sorted(together.tolist()) == list(range(1, 1001))
    assert (len(splits["train"]), len(splits["val"]), len(splits["test"])) == (700, 100, 200)
    again = split_numbers(1000, val_fraction=0.1, test_fraction=0.2, seed=3)
    assert all(np.array_equal(splits[k], again[k]) for k in splits)
    other = split_numbers(1000, val_fraction=0.1, test_fraction=0.2, seed=4)
    assert not np.array_equal(splits["test"], other["test"])
    with pytest.raises(ValueError, match="sum below 1"):
        split_numbers(1000, val_fraction=0.5, test_fraction=0.5)


def test_vocabulary_round_trip_and_padding():
    french_vocab, english_vocab = vocabularies(999)
    assert "é" not in french_vocab.characters  # only "zéro" has an accent, and 0 is not used
    assert set(english_vocab.characters) == set("defghilnorstuvwxy- ")  # no a, b or c below 1000
    text = french(97)
    ids = french_vocab.encode(text, bos=True, eos=True)
    assert ids[0] == CharVocabulary.BOS and ids[-1] == CharVocabulary.EOS
    assert french_vocab.decode(ids) == text
    assert french_vocab.decode(ids + [CharVocabulary.PAD, 5]) == text  # stops at the end token
    batch = english_vocab.encode_batch(["one", "twenty-one"], eos=True)
    assert batch.shape == (2, 11) and batch.dtype == torch.long
    assert batch[0, 4:].eq(CharVocabulary.PAD).all()
    assert english_vocab.decode(batch[1]) == "twenty-one"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        english_vocab.encode("onze")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        english_vocab.decode([len(english_vocab)])
