"""Loading the names table (titles, spelling variants per region) from name_variants.toml files.

The built-in file sits next to this module; a business's own file (the same format,
`<instance>/name_variants.toml`) adds honorifics and replaces a region of the same
name. Raises VariantsError naming the file and the problem. Files are read again
only when they change (mtime or size), so editing one takes effect without a restart.
"""
from __future__ import annotations

import tomllib
from pathlib import Path

from unidecode import unidecode

from webapp.domain.matching.names import NameRules

BUILTIN = Path(__file__).with_name("name_variants.toml")
MAX_BYTES = 1_000_000
_cache: dict[tuple, NameRules] = {}


class VariantsError(ValueError):
    """A names table that cannot be used; the message names the file and the problem."""


def _word(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip() or " " in value.strip():
        raise VariantsError(f"{where}: {value!r} is not a single word")
    return unidecode(value.strip()).lower()


def _read(path: Path) -> tuple[list[str], dict[str, list[list[str]]]]:
    try:
        if path.stat().st_size > MAX_BYTES:
            raise VariantsError(f"{path}: larger than {MAX_BYTES} bytes")
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeError, tomllib.TOMLDecodeError) as exc:
        raise VariantsError(f"{path}: {exc}") from None
    unknown = set(data) - {"honorifics", "region"}
    if unknown:
        raise VariantsError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}")
    honorifics = data.get("honorifics", [])
    if not isinstance(honorifics, list):
        raise VariantsError(f"{path}: honorifics must be a list of words")
    titles = [_word(h, f"{path}: honorifics") for h in honorifics]
    regions: dict[str, list[list[str]]] = {}
    for i, region in enumerate(data.get("region", [])):
        where = f"{path}: region {i + 1}"
        if not isinstance(region, dict) or set(region) - {"name", "variants"}:
            raise VariantsError(f"{where}: a region has only `name` and `variants`")
        name, groups = region.get("name"), region.get("variants", [])
        if not isinstance(name, str) or not name.strip():
            raise VariantsError(f"{where}: `name` is required")
        if not isinstance(groups, list) or not all(isinstance(g, list) and len(g) >= 2 for g in groups):
            raise VariantsError(f"{where} ({name}): variants must be lists of two or more spellings")
        regions[name.strip()] = [[_word(w, f"{where} ({name})") for w in group] for group in groups]
    return titles, regions


def build(files: list[Path]) -> NameRules:
    """The rules from `files` in order (later files add titles and replace regions)."""
    titles: set[str] = set()
    regions: dict[str, list[list[str]]] = {}
    for path in files:
        more, found = _read(path)
        titles.update(more)
        regions.update(found)
    variants: dict[str, str] = {}
    for region, groups in regions.items():
        for group in groups:
            canon = group[0]
            # A spelling already folded elsewhere folds this whole group the same way.
            canon = next((variants[w] for w in group if w in variants), canon)
            for word in group:
                if variants.get(word, canon) != canon:
                    raise VariantsError(f"region {region}: {word!r} is a spelling of both "
                                        f"{variants[word]!r} and {canon!r}")
                variants[word] = canon
    return NameRules(frozenset(titles), variants)


def load(own: Path | None = None) -> NameRules:
    """The built-in table plus `own` (a business's file) when it exists."""
    files = [BUILTIN] + ([own] if own is not None and own.is_file() else [])
    stamp = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    if stamp not in _cache:
        _cache.clear()
        _cache[stamp] = build(files)
    return _cache[stamp]
