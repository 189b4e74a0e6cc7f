"""Comparing names as people write them: titles dropped, initials, any order, spelling variants.

Pure: text and a NameRules table in, a NameMatch (the rules that made two names one)
or None out. Each name is cut to MAX_WORDS words of at most MAX_WORD letters, so a
comparison has bounded cost whatever a source sends.

Titles (honorifics) are dropped where they lead the name. Two names are the same
person's when every word of the shorter one (two words or more, or as many as the
longer) pairs with its own word of the longer one, and at least one pair is a
whole word (an initial alone proves nothing). A pair is:
- the same word after transliteration to ASCII (unidecode) and the region
  variants table (Mohd → Muhammad, Yousuf → Yusuf): "exact";
- a word of 5+ letters that sounds the same (jellyfish metaphone) and is one
  letter added or dropped away (Yousuf / Yusuf; not Patel / Patil): "sounds like";
- a single letter and a word it starts ("J" → John): "initial".
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Mapping

import jellyfish
from rapidfuzz.distance import Indel
from unidecode import unidecode

MAX_WORDS = 8
MAX_WORD = 40
MAX_TEXT = 400
_WORD = re.compile(r"[a-z0-9]+")
_APOSTROPHE = re.compile(r"['’`´]")


@dataclass(frozen=True)
class NameRules:
    """Titles to drop and spelling variants to fold (word → its canonical spelling), lower-case ASCII."""
    honorifics: frozenset[str] = frozenset()
    variants: Mapping[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Word:
    shown: str  # as the name wrote it (upper-cased for the payer, as-is for the customer)
    folded: str  # ASCII lower-case
    canon: str  # after the variants table

    @property
    def initial(self) -> bool:
        return len(self.folded) == 1 and self.folded.isalpha()


@dataclass(frozen=True)
class Name:
    words: tuple[Word, ...]
    titles: tuple[str, ...]  # honorifics dropped


@dataclass(frozen=True)
class NameMatch:
    """Why two names are one person's: the rules used, in words for the evidence card."""
    rules: tuple[str, ...]

    def explain(self) -> str:
        return "; ".join(self.rules) if self.rules else "same name"


@functools.lru_cache(maxsize=8192)
def parse(text: str | None, rules: NameRules) -> Name:
    """The words of a name, titles dropped (unless the name is nothing but titles).

    Cached: matching parses each candidate's name once per payment, the same few thousand
    open requests' names over and over (a Name is immutable; the rules hash by their titles
    and compare by identity first)."""
    raw = _APOSTROPHE.sub("", (text or "")[:MAX_TEXT])
    words: list[Word] = []
    for token in raw.split():
        ascii_ = unidecode(token).lower()
        pieces = _WORD.findall(ascii_)
        if len(pieces) > 1 and all(len(p) == 1 for p in pieces):  # "M.W." is two initials
            shown = [p.upper() for p in pieces]
        else:
            pieces, shown = ["".join(pieces)] if pieces else [], [token.strip(".,;:")]
        for piece, show in zip(pieces, shown):
            piece = piece[:MAX_WORD]
            words.append(Word(show, piece, rules.variants.get(piece, piece)))
    # Titles lead a name ("Alhaji Musa Kato"); the same word after a name is a surname ("A R Sheikh").
    lead = next((i for i, w in enumerate(words) if w.folded not in rules.honorifics), len(words))
    if lead == len(words):
        return Name(tuple(words[:MAX_WORDS]), ())
    return Name(tuple(words[lead:lead + MAX_WORDS]), tuple(w.shown for w in words[:lead]))


def key(text: str | None, rules: NameRules) -> str:
    """A name's identity for remembering it: canonical words, sorted, titles dropped."""
    return " ".join(sorted(w.canon for w in parse(text, rules).words))


def _sounds_alike(a: Word, b: Word) -> bool:
    # One letter added or dropped only (Yousuf / Yusuf, Okelo / Okello): a changed letter
    # is another name as often as not (Patel / Patil, Hassan / Husain) and needs the table.
    return (min(len(a.canon), len(b.canon)) >= 5 and a.canon[0] == b.canon[0]
            and Indel.distance(a.canon, b.canon, score_cutoff=1) <= 1
            and jellyfish.metaphone(a.canon) == jellyfish.metaphone(b.canon))


def _pair(payer: list[Word], customer: list[Word], payer_shorter: bool) -> list[tuple[str, Word, Word]] | None:
    """Pair every word of the shorter side with its own word of the longer side, or None.

    Exact pairs first, then sound-alikes, then initials, so an initial never takes a word
    that a whole word needs."""
    short, long_ = (payer, customer) if payer_shorter else (customer, payer)
    left, free = list(short), list(long_)
    pairs: list[tuple[str, Word, Word]] = []

    def take(kind: str, fits) -> None:
        for word in list(left):
            other = next((o for o in free if fits(word, o)), None)
            if other is not None:
                left.remove(word)
                free.remove(other)
                pairs.append((kind, word, other) if payer_shorter else (kind, other, word))

    take("exact", lambda a, b: a.canon == b.canon)
    take("sounds", lambda a, b: not a.initial and not b.initial and _sounds_alike(a, b))
    take("initial", lambda a, b: a.initial != b.initial and (a.canon[:1] == b.canon[:1]))
    if left:
        return None
    return pairs


def compare(payer_text: str | None, customer_text: str | None, rules: NameRules) -> NameMatch | None:
    """How the payer's name is the customer's, or None when it is not (see the module doc)."""
    payer, customer = parse(payer_text, rules), parse(customer_text, rules)
    a, b = list(payer.words), list(customer.words)
    if not a or not b:
        return None
    shorter = min(len(a), len(b))
    if shorter < 2 and len(a) != len(b):
        return None
    # Every kind of pair starts both words with the same letter: a word of the shorter side
    # whose first letter starts no word of the other side pairs with nothing (the usual case
    # among a payment's candidates, so _pair is skipped).
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    firsts = {w.canon[:1] for w in long_}
    if any(w.canon[:1] not in firsts for w in short):
        return None
    pairs = _pair(a, b, payer_shorter=len(a) <= len(b))
    if pairs is None or all(kind == "initial" for kind, _, _ in pairs):
        return None
    rules_used: list[str] = []
    if payer.titles:
        rules_used.append(f"title {' '.join(payer.titles)} dropped")
    if customer.titles:
        rules_used.append(f"customer's title {' '.join(customer.titles)} dropped")
    initials = [(p, c) for kind, p, c in pairs if kind == "initial"]
    if initials:
        initials.sort(key=lambda pc: a.index(pc[0]))
        rules_used.append(f"initials {' '.join(p.shown for p, _ in initials)} → "
                          f"{' '.join(c.shown for _, c in initials)}")
    for kind, p, c in pairs:
        if kind == "exact" and p.folded != c.folded:
            rules_used.append(f"{p.shown} → {c.shown} (spelling variant)")
        elif kind == "sounds":
            rules_used.append(f"{p.shown} sounds like {c.shown}")
    if shorter < max(len(a), len(b)):
        rules_used.append(f"{max(len(a), len(b)) - shorter} more word(s) on one side")
    order_a = [p.canon for _, p, _ in sorted(pairs, key=lambda t: a.index(t[1]))]
    order_b = [p.canon for _, p, _ in sorted(pairs, key=lambda t: b.index(t[2]))]
    if order_a != order_b:
        rules_used.append("word order ignored")
    return NameMatch(tuple(rules_used))
