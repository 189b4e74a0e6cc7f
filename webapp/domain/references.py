"""Request references: generating them and finding them in what payers type.

A reference is `<PREFIX>-<BODY>` ("PW-7KQ2M9"). The body uses ALPHABET, which has
no 0/O, no 1/I/L: the characters people confuse never occur, so a reference read
aloud or copied by hand has one spelling.

Look-alikes are deliberately NOT rewritten. Since neither "0" nor "O" (nor "1",
"I", "L") exists in a body, a payer who types one of them made a mistake we
cannot undo with certainty ("0" could be a misread "D" or "Q"); such a text is
not an exact quote, and near_references() reports it as one character off,
which matching treats as strong but not decisive evidence.

Payers write references as "PW-7KQ2M9", "pw 7kq2m9", "PW7KQ2M9", "ref: PW 7KQ 2M9".
Matching therefore compares *keys*: upper-case ASCII letters and digits only,
joined across the separators between consecutive words of the text.
"""
from __future__ import annotations

import re
import secrets
import unicodedata
from typing import Iterable, Protocol, Sequence

from rapidfuzz.distance import Levenshtein

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
DEFAULT_PREFIX = "PW"
DEFAULT_LENGTH = 6

_ALPHABET_SET = frozenset(ALPHABET)
_WORD = re.compile(r"[A-Z0-9]+")
_NOT_KEY = re.compile(r"[^A-Z0-9]+")
# Longest run of consecutive words tried as one reference, and its longest key.
_MAX_PARTS = 8
_MAX_KEY = 24
# A body shorter than this is not looked for without its prefix, nor near-matched.
_MIN_BARE = 6


class _Chooser(Protocol):
    def choice(self, seq: Sequence[str], /) -> str: ...


def new_reference(prefix: str = DEFAULT_PREFIX, length: int = DEFAULT_LENGTH,
                  rng: _Chooser = secrets) -> str:  # type: ignore[assignment]
    """Return a fresh random reference, "PW-7KQ2M9". Uniqueness is the caller's
    job (a unique column and a retry); `rng` is anything with `choice` (tests
    pass random.Random(seed))."""
    if length < 4:
        raise ValueError(f"reference length must be at least 4, got {length}")
    prefix = normalize(prefix)
    body = "".join(rng.choice(ALPHABET) for _ in range(length))
    return f"{prefix}-{body}" if prefix else body


def normalize(text: str | None) -> str:
    """The comparison key of a reference: "pw 7kq2-m9" -> "PW7KQ2M9".

    NFKC-folds (full-width characters), upper-cases and keeps ASCII letters and
    digits only. No look-alike rewriting (see the module docstring).
    """
    return _NOT_KEY.sub("", unicodedata.normalize("NFKC", text or "").upper())


def body(reference: str) -> str | None:
    """The generated part of a reference in our format ("PW-7KQ2M9" -> "7KQ2M9"),
    or None when the reference is free-form (an integrator's own "INV-2024-001")."""
    head, sep, tail = (reference or "").strip().upper().rpartition("-")
    if not sep or not head.isalnum() or len(tail) < _MIN_BARE:
        return None
    return tail if set(tail) <= _ALPHABET_SET else None


class Quoted:
    """What a text can be quoting: every run of up to 8 consecutive words, joined
    without separators. Build it once per payment note; each lookup is then a set
    probe (exact) or a few Levenshtein calls on same-length runs (near)."""

    __slots__ = ("runs", "_by_length")

    def __init__(self, text: str | None) -> None:
        words = _WORD.findall(unicodedata.normalize("NFKC", text or "").upper())
        runs: set[str] = set()
        for start in range(len(words)):
            joined = ""
            for word in words[start:start + _MAX_PARTS]:
                joined += word
                if len(joined) > _MAX_KEY:
                    break
                runs.add(joined)
        self.runs = frozenset(runs)
        by_length: dict[int, list[str]] = {}
        for run in runs:
            by_length.setdefault(len(run), []).append(run)
        self._by_length = {n: tuple(sorted(r)) for n, r in by_length.items()}

    def quotes(self, reference: str) -> bool:
        """True when the text contains `reference` exactly (case, spaces and dashes
        ignored), with its prefix or - for our own format - its body alone."""
        return self.find(reference)[0]

    def near(self, reference: str, max_distance: int = 1) -> str | None:
        """The run of the text that is 1..max_distance edits away from
        `reference` (or from its body), or None. Exact quotes are not "near"."""
        return self.find(reference, max_distance)[1]

    def find(self, reference: str, max_distance: int = 1) -> tuple[bool, str | None]:
        """(quoted exactly, the near run or None) in one pass over the reference."""
        if not self.runs:
            return False, None
        key, bare = normalize(reference), body(reference)
        if key in self.runs or (bare is not None and bare in self.runs):
            return True, None
        for target in (key, bare):
            if not target or len(target) < _MIN_BARE:
                continue
            for size in range(len(target) - max_distance, len(target) + max_distance + 1):
                for run in self._by_length.get(size, ()):
                    if Levenshtein.distance(target, run, score_cutoff=max_distance) <= max_distance:
                        return False, run
        return False, None


def find_references(text: str | None, prefix: str = DEFAULT_PREFIX,
                    length: int = DEFAULT_LENGTH) -> list[str]:
    """Every well-formed `<prefix>-<body>` reference in `text`, canonical form,
    in order of first appearance: "paid pw 7kq2m9" -> ["PW-7KQ2M9"].

    Only prefixed forms are found (a bare six-letter word such as "THANKS" is a
    valid body); the ledger looks these up to pass quoted requests to matching.
    """
    key_prefix = normalize(prefix)
    size = len(key_prefix) + length
    words = _WORD.findall(unicodedata.normalize("NFKC", text or "").upper())
    found: list[str] = []
    for start, word in enumerate(words):
        if not word.startswith(key_prefix):
            continue
        joined = ""
        for part in words[start:start + _MAX_PARTS]:
            joined += part
            if len(joined) >= size:
                break
        tail = joined[len(key_prefix):]
        if len(joined) == size and set(tail) <= _ALPHABET_SET:
            reference = f"{key_prefix}-{tail}" if key_prefix else tail
            if reference not in found:
                found.append(reference)
    return found


def near_references(text: str | None, known: Iterable[str],
                    max_distance: int = 1) -> list[str]:
    """The references of `known` that `text` quotes with 1..max_distance typing
    mistakes (but not exactly), in the order given."""
    quoted = Quoted(text)
    return [ref for ref in known if quoted.near(ref, max_distance) is not None]
