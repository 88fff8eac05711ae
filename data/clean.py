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

Speed: rows are counted first and each distinct (raw name, label) row is cleaned once, with its count;
a name that is already clean -- ASCII letters with single inner separators and at most MAX_WORDS
words, which every rule above leaves as it is -- is recognised by one regular expression.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import Iterable

import numpy as np
from anyascii import anyascii

from .table import PairTable

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
_WORD = r"[A-Za-z]+(?:['-][A-Za-z]+)*"
# Names no rule changes (see the module doc): ASCII letters, single inner separators, <= MAX_WORDS words.
_ALREADY_CLEAN = re.compile(rf"{_WORD}(?: {_WORD}){{0,{MAX_WORDS - 1}}}")
# Junk phrases short enough to look clean; they must still go through clean_name.
_SHORT_JUNK = frozenset(p for p in JUNK_PHRASES if len(p.split()) <= MAX_WORDS)


def _collapse_separators(match: re.Match) -> str:
    run = match.group(0)
    if "-" in run:
        return "-"
    if "'" in run:
        return "'"
    return " "


def strip_digits_punct(name: str) -> str:
    """A name without stray digits and punctuation (rule 7 above): what training reads of it. "" when no letter
    is left."""
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
    step = strip_digits_punct(name)
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
    The pairs are a table.Pairs list (it carries its compact PairTable).
    """
    rows = rows if isinstance(rows, (list, tuple)) else list(rows)
    try:
        counted = Counter(rows)
    except TypeError:                       # rows given as lists
        counted = Counter(tuple(row) for row in rows)
    table, report, _ = clean_counted(counted.items(), ascii_fold)
    return table.pairs(), report


_SHIFT = 1 << 32      # a pair's key: name id * _SHIFT + label id


def _label_id(label: str, label_ids: dict[str, int], clean_labels: dict[str, int]) -> int:
    """The id of label's cleaned form (NFC, single spaces), registered on first sight; -1 when it is empty."""
    lab = " ".join(unicodedata.normalize("NFC", label).split())
    lid = label_ids[label] = clean_labels.setdefault(lab, len(clean_labels)) if lab else -1
    return lid


def clean_counted(
    items: Iterable[tuple[tuple[str | None, str], int]], ascii_fold: bool = False, declared: Iterable[str] = (),
) -> tuple[PairTable, dict[str, int], list[str]]:
    """Clean ((raw name, label), count) items -- each distinct row once, with how often it occurs.

    declared: the labels the source declares whatever their rows (a folder's <Label>.txt files), so that one
    with no line at all (an empty file) is a label too, dropped with the others that keep no name.

    Returns the distinct cleaned pairs as a PairTable, the report (the same counts as cleaning every row one
    by one) and the labels dropped because no name of theirs is left, sorted (as many as "labels_dropped").
    """
    report = dict.fromkeys(REPORT_KEYS, 0)
    lines = malformed = kept_rows = 0
    name_ids: dict[str, int] = {}
    label_ids: dict[str, int] = {}        # raw label -> id of its cleaned form, -1 when empty
    clean_labels: dict[str, int] = {}     # cleaned label -> id
    for label in declared:                # once per label: no per-row work
        if label not in label_ids:
            _label_id(label, label_ids, clean_labels)
    keys: set[int] = set()
    add = keys.add
    already_clean = _ALREADY_CLEAN.fullmatch
    for (raw, label), count in items:
        lines += count
        if raw is None:
            malformed += count
            continue
        lid = label_ids.get(label)
        if lid is None:
            lid = _label_id(label, label_ids, clean_labels)
        if already_clean(raw) and not (_SHORT_JUNK and raw.casefold() in _SHORT_JUNK):
            name = raw
        else:
            name, reasons = clean_name(raw, ascii_fold)
            for reason in reasons:
                report[reason] += count
            if name is None:
                continue
        if lid < 0:
            report["dropped_empty"] += count
            continue
        nid = name_ids.get(name)
        if nid is None:
            nid = name_ids[name] = len(name_ids)
        add(nid * _SHIFT + lid)
        kept_rows += count
    report["lines_read"] = lines
    report["duplicates_removed"] = kept_rows - len(keys)
    report["kept"] = len(keys)
    if malformed:
        report["dropped_malformed"] = malformed
    key = np.fromiter(keys, dtype=np.int64, count=len(keys))
    labels, lid = list(clean_labels), key % _SHIFT
    used = np.unique(lid)
    dropped: list[str] = []
    if len(used) < len(labels):     # a label all of whose names were dropped is no class: a model would learn it
        report["labels_dropped"] = len(labels) - len(used)
        dropped = sorted(set(labels) - {labels[i] for i in used.tolist()})
        labels, lid = [labels[i] for i in used.tolist()], np.searchsorted(used, lid)
    table = PairTable.from_ids(list(name_ids), labels, key // _SHIFT, lid)
    return table, report, dropped
