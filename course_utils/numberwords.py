"""Number words: French to English, a real translation task generated offline (lessons 03-04).

Each number from 1 to 999,999 has one French and one English spelling, produced by the
grammar of each language:

* French, traditional spelling: hyphens inside the tens (dix-sept, quatre-vingt-dix-sept),
  "et" for 21, 31, ..., 61 and 71 (vingt et un, soixante et onze) but not 81 or 91
  (quatre-vingt-un), plural "quatre-vingts" and "deux cents" only at the very end of the
  number (quatre-vingt mille, deux cent mille), "mille" without "un" and never plural;
* English, American style: twenty-one, one hundred one (no "and"), twenty-one thousand.

Translation is not letter by letter: word orders and lengths differ (soixante-dix-sept is
"sixty + ten + seven" but seventy-seven), which is what attention has to learn to align.
"""

import numpy as np
import torch

MAX_NUMBER = 999_999

_FRENCH_UNITS = ["zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf",
                 "dix", "onze", "douze", "treize", "quatorze", "quinze", "seize"]
_FRENCH_TENS = {2: "vingt", 3: "trente", 4: "quarante", 5: "cinquante", 6: "soixante"}
_ENGLISH_UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                  "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
                  "seventeen", "eighteen", "nineteen"]
_ENGLISH_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty",
                 "ninety"]


def _check_number(number: int) -> int:
    if isinstance(number, bool) or not isinstance(number, (int, np.integer)):
        raise TypeError(f"number must be an integer, got {type(number).__name__}")
    if not 0 <= number <= MAX_NUMBER:
        raise ValueError(f"number must be between 0 and {MAX_NUMBER:,}, got {number:,}")
    return int(number)


def _french_below_100(n: int, final: bool) -> str:
    if n < 17:
        return _FRENCH_UNITS[n]
    if n < 20:
        return "dix-" + _FRENCH_UNITS[n - 10]
    if n < 70:
        tens, units = divmod(n, 10)
        if units == 0:
            return _FRENCH_TENS[tens]
        joiner = " et " if units == 1 else "-"
        return _FRENCH_TENS[tens] + joiner + _FRENCH_UNITS[units]
    if n < 80:  # 70-79: sixty + (10..19)
        return "soixante et onze" if n == 71 else "soixante-" + _french_below_100(n - 60, final)
    if n == 80:  # 80-99: four twenties (+ 1..19); the s only when nothing follows
        return "quatre-vingts" if final else "quatre-vingt"
    return "quatre-vingt-" + _french_below_100(n - 80, final)


def _french_below_1000(n: int, final: bool) -> str:
    hundreds, rest = divmod(n, 100)
    if hundreds == 0:
        return _french_below_100(rest, final)
    if hundreds == 1:
        head = "cent"
    else:
        head = _FRENCH_UNITS[hundreds] + (" cents" if rest == 0 and final else " cent")
    return head if rest == 0 else head + " " + _french_below_100(rest, final)


def french(number: int) -> str:
    """The French words for ``number`` (0 to 999,999), e.g. 97 -> "quatre-vingt-dix-sept"."""
    number = _check_number(number)
    thousands, rest = divmod(number, 1000)
    if thousands == 0:
        return _french_below_1000(rest, final=True)
    head = "mille" if thousands == 1 else _french_below_1000(thousands, final=False) + " mille"
    return head if rest == 0 else head + " " + _french_below_1000(rest, final=True)


def _english_below_1000(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    if rest < 20:
        words = _ENGLISH_UNITS[rest] if rest or not hundreds else ""
    else:
        tens, units = divmod(rest, 10)
        words = _ENGLISH_TENS[tens] + ("-" + _ENGLISH_UNITS[units] if units else "")
    if hundreds == 0:
        return words
    head = _ENGLISH_UNITS[hundreds] + " hundred"
    return head + (" " + words if words else "")


def english(number: int) -> str:
    """The English words for ``number`` (0 to 999,999), e.g. 97 -> "ninety-seven"."""
    number = _check_number(number)
    thousands, rest = divmod(number, 1000)
    if thousands == 0:
        return _english_below_1000(rest)
    head = _english_below_1000(thousands) + " thousand"
    return head if rest == 0 else head + " " + _english_below_1000(rest)


def split_numbers(max_number: int, *, val_fraction: float = 0.1, test_fraction: float = 0.2,
                  seed: int = 0) -> dict[str, np.ndarray]:
    """Shuffle 1..max_number and cut it into train/val/test: held-out numbers, never seen in
    training. Returns sorted integer arrays under "train", "val" and "test"."""
    _check_number(max_number)
    if max_number < 10:
        raise ValueError(f"max_number must be at least 10, got {max_number}")
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError("val_fraction and test_fraction must be in (0, 1) with a sum below 1")
    numbers = np.random.default_rng(seed).permutation(np.arange(1, max_number + 1))
    num_test = max(1, round(test_fraction * max_number))
    num_val = max(1, round(val_fraction * max_number))
    return {"test": np.sort(numbers[:num_test]),
            "val": np.sort(numbers[num_test:num_test + num_val]),
            "train": np.sort(numbers[num_test + num_val:])}


class CharVocabulary:
    """Characters <-> integer ids, with three special tokens: padding (0), begin (1), end (2)."""

    PAD, BOS, EOS = 0, 1, 2
    SPECIALS = ("<pad>", "<bos>", "<eos>")

    def __init__(self, characters):
        self.characters = sorted(set(characters))
        self.index = {char: i + len(self.SPECIALS) for i, char in enumerate(self.characters)}

    @classmethod
    def from_texts(cls, texts) -> "CharVocabulary":
        return cls("".join(texts))

    def __len__(self) -> int:
        return len(self.SPECIALS) + len(self.characters)

    def encode(self, text: str, *, bos: bool = False, eos: bool = False) -> list[int]:
        unknown = sorted(set(text) - set(self.index))
        if unknown:
            raise ValueError(f"characters not in the vocabulary: {unknown!r}")
        ids = [self.index[char] for char in text]
        return [self.BOS] * bos + ids + [self.EOS] * eos

    def decode(self, ids) -> str:
        """Characters up to the first end token; padding and begin tokens are skipped."""
        chars = []
        for token in (int(i) for i in ids):
            if token == self.EOS:
                break
            if token >= len(self.SPECIALS):
                if token >= len(self):
                    raise ValueError(f"token id {token} is outside the vocabulary of {len(self)}")
                chars.append(self.characters[token - len(self.SPECIALS)])
        return "".join(chars)

    def encode_batch(self, texts, *, bos: bool = False, eos: bool = False) -> torch.Tensor:
        """(N, longest) LongTensor, padded on the right with :attr:`PAD`."""
        encoded = [self.encode(text, bos=bos, eos=eos) for text in texts]
        batch = torch.full((len(encoded), max(map(len, encoded))), self.PAD, dtype=torch.long)
        for row, ids in enumerate(encoded):
            batch[row, :len(ids)] = torch.tensor(ids, dtype=torch.long)
        return batch


def vocabularies(max_number: int = MAX_NUMBER) -> tuple[CharVocabulary, CharVocabulary]:
    """The French and English character vocabularies of all numbers up to ``max_number``."""
    _check_number(max_number)
    numbers = range(1, max_number + 1)
    return (CharVocabulary.from_texts(french(n) for n in numbers),
            CharVocabulary.from_texts(english(n) for n in numbers))
