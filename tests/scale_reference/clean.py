"""Cleaning of raw name lines, with a count for every change or drop.

The rules, in order, for one raw line:

1. Unicode NFC.                                   -> "nfc_changed"
2. Typographic apostrophes (’ ‘ ʼ ´ `) become "'". -> "apostrophe_normalised"
3. Whitespace runs (incl. NBSP) collapse to one space, ends stripped.
                                                  -> "whitespace_stripped"
4. Nothing left                                   -> dropped, "dropped_empty"
5. Junk: a known non-name phrase (e.g. "To The First Page" in the PyTorch
   Russian.txt) or more than MAX_WORDS words      -> dropped, "dropped_junk"
6. Optional ASCII folding with anyascii           -> "ascii_folded"
7. Stray digits and punctuation are removed; letters (accented ones too),
   inner apostrophes, inner hyphens and single inner spaces are kept.
   "A/B" alternatives keep the first one.         -> "stripped_digits_punct"
   No letter left                                 -> dropped, "dropped_junk"

A row the reader could not parse (a CSV line with broken quoting) arrives
with no name                                      -> dropped, "dropped_malformed"
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import Iterable

from anyascii import anyascii

MAX_WORDS = 3
JUNK_PHRASES = frozenset({"to the first page"})
APOSTROPHES = str.maketrans({c: "'" for c in "\u2019\u2018\u02bc\u00b4`"})
SEPARATORS = "'- "

REPORT_KEYS = (
    "lines_read", "nfc_changed", "apostrophe_normalised", "whitespace_stripped",
    "dropped_empty", "dropped_junk", "stripped_digits_punct", "ascii_folded",
    "duplicates_removed", "kept",
)

_SEP_RUN = re.compile(r"[' -]*[' -]")


def _collapse_separators(match: re.Match) -> str:
    run = match.group(0)
    if "-" in run:
        return "-"
    if "'" in run:
        return "'"
    return " "


def _strip_digits_punct(name: str) -> str:
    name = name.split("/", 1)[0]
    kept = "".join(
        c for c in name if unicodedata.category(c)[0] in "LM" or c in SEPARATORS
    )
    kept = _SEP_RUN.sub(_collapse_separators, kept)
    return kept.strip(SEPARATORS)


def clean_name(raw: str, ascii_fold: bool = False) -> tuple[str | None, list[str]]:
    """Clean one raw line. Returns (name or None if dropped, reasons)."""
    reasons: list[str] = []
    name = unicodedata.normalize("NFC", raw)
    if name != raw:
        reasons.append("nfc_changed")
    step = name.translate(APOSTROPHES)
    if step != name:
        reasons.append("apostrophe_normalised")
    name = step
    step = " ".join(name.split())
    if step != name:
        reasons.append("whitespace_stripped")
    name = step
    if not name:
        return None, reasons + ["dropped_empty"]
    if name.casefold() in JUNK_PHRASES or len(name.split()) > MAX_WORDS:
        return None, reasons + ["dropped_junk"]
    if ascii_fold:
        step = anyascii(name)
        if step != name:
            reasons.append("ascii_folded")
        name = step
    step = _strip_digits_punct(name)
    if not any(c.isalpha() for c in step):
        return None, reasons + ["dropped_junk"]
    if step != name:
        reasons.append("stripped_digits_punct")
    return step, reasons


def clean_rows(
    rows: Iterable[tuple[str | None, str]], ascii_fold: bool = False
) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """Clean (raw name, label) rows: sorted unique pairs and the report.

    A row whose raw name is None is one the reader could not parse (e.g. a
    CSV line with an unclosed quote): it is counted as "dropped_malformed"
    (a key present only when such rows can occur: see sources.load_dataset).
    """
    report = Counter({key: 0 for key in REPORT_KEYS})
    pairs: set[tuple[str, str]] = set()
    for raw, label in rows:
        report["lines_read"] += 1
        if raw is None:
            report["dropped_malformed"] += 1
            continue
        label = " ".join(unicodedata.normalize("NFC", label).split())
        name, reasons = clean_name(raw, ascii_fold)
        report.update(reasons)
        if name is None:
            continue
        if not label:
            report["dropped_empty"] += 1
            continue
        if (name, label) in pairs:
            report["duplicates_removed"] += 1
        else:
            pairs.add((name, label))
    report["kept"] = len(pairs)
    return sorted(pairs), dict(report)
