"""Leak-free train/val/test split by unique name string, stratified by label.

The rules: every distinct name has a primary label (its most frequent one; ties: alphabetically first).
For each primary label in alphabetical order, its names in alphabetical order are shuffled by one
``random.Random(seed)`` (the same generator goes on from label to label); the first ``round(n * test)``
go to test, the next ``round(n * val)`` to val, the rest to train (see ``_cut`` for small labels). A label
left with no training pair gets its alphabetically first name moved to train. Every pair of a name goes
where the name goes; each part is a sorted list of unique pairs.

The work is done on the compact PairTable (integer arrays; only the shuffles are Python, one list of ints
per label), and the split of a cached dataset is cached too (cache.py).
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from . import cache
from .table import PairTable, Pairs, table_of

Pair = tuple[str, str]
TRAIN, VAL, TEST = 0, 1, 2


@dataclass
class Split:
    train: list[Pair]
    val: list[Pair]
    test: list[Pair]
    seed: int
    val_frac: float = 0.1
    test_frac: float = 0.1

    def to_dict(self) -> dict:
        parts = {"train": self.train, "val": self.val, "test": self.test}
        return {
            "seed": self.seed,
            "val": self.val_frac,
            "test": self.test_frac,
            "counts": {k: len(v) for k, v in parts.items()},
            "names": {k: _n_names(v) for k, v in parts.items()},
        }


def _n_names(pairs) -> int:
    table = table_of(pairs)
    return table.n_names() if table is not None else len({n for n, _ in pairs})


def primary_labels(pairs: Iterable[Pair]) -> dict[str, str]:
    """name -> its most frequent label (ties: alphabetically first)."""
    counts: dict[str, Counter] = {}
    for name, label in pairs:
        counts.setdefault(name, Counter())[label] += 1
    return {
        name: min(c, key=lambda label: (-c[label], label)) for name, c in counts.items()
    }


def _cut(n: int, val: float, test: float) -> tuple[int, int]:
    """How many of n names go to val and test."""
    n_val, n_test = round(n * val), round(n * test)
    if n >= 3:
        n_val = max(n_val, 1) if val > 0 else 0
        n_test = max(n_test, 1) if test > 0 else 0
        while n_val + n_test >= n:
            if n_val >= n_test:
                n_val -= 1
            else:
                n_test -= 1
    else:
        n_val = n_test = 0
    return n_val, n_test


def split_by_name(pairs, seed: int = 0, val: float = 0.1, test: float = 0.1) -> Split:
    """Split so that each name string lands in exactly one of train/val/test."""
    if val < 0 or test < 0 or val + test >= 1:
        raise ValueError(f"need val >= 0, test >= 0 and val + test < 1 (got {val}, {test})")
    table, mult = table_of(pairs), None
    key = getattr(pairs, "cache_key", None) if table is not None else None
    if table is None:                    # any list of pairs: duplicates count towards the primary label
        counts = Counter(pairs if isinstance(pairs, list) else list(pairs))
        table = PairTable.from_counts(counts)
        pairs = table.pairs()
        if any(c > 1 for c in counts.values()):
            mult = np.fromiter((counts[p] for p in pairs), dtype=np.int64, count=len(pairs))
    first = _first_rows(table)
    part = None
    if key is not None:
        skey = cache.key_of(dataset=key, seed=seed, val=val, test=test)
        part = cache.load_split(skey, len(first))
    if part is None:
        part = _assign(table, first, mult, seed, val, test)
        if key is not None:
            cache.save_split(skey, part)
    row_part = np.repeat(part, np.diff(np.append(first, len(table))))    # the part of every pair
    out = []
    for which in (TRAIN, VAL, TEST):
        rows = np.flatnonzero(row_part == which)
        sub = Pairs([pairs[i] for i in rows.tolist()])
        sub.table = table.subset(rows)
        out.append(sub)
    return Split(*out, seed, val, test)


def _first_rows(table: PairTable) -> np.ndarray:
    """The first row of each distinct name (rows are sorted by name)."""
    if not len(table):
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, table.name_idx[1:] != table.name_idx[:-1]])


def _assign(table: PairTable, first: np.ndarray, mult: np.ndarray | None, seed: int, val: float,
            test: float) -> np.ndarray:
    """The part of each distinct name (in name order), by the rules in the module doc."""
    n_names = len(first)
    if mult is None:               # distinct pairs: the primary label is the first (alphabetical) one
        primary = table.label_idx[first]
    else:                          # most frequent, then alphabetical
        order = np.lexsort((table.label_idx, -mult, table.name_idx))
        best = order[np.r_[True, table.name_idx[order][1:] != table.name_idx[order][:-1]]]
        primary = table.label_idx[best]
    by_label = np.argsort(primary, kind="stable")          # grouped by label, names in order within
    bounds = np.flatnonzero(np.diff(primary[by_label])) + 1
    part = np.zeros(n_names, dtype=np.int8)
    rng = random.Random(seed)
    for group in np.split(by_label, bounds) if n_names else []:
        names = group.tolist()
        rng.shuffle(names)
        n_val, n_test = _cut(len(names), val, test)
        part[names[:n_test]] = TEST
        part[names[n_test:n_test + n_val]] = VAL
    _ensure_labels_in_train(table, first, part)
    return part


def _ensure_labels_in_train(table: PairTable, first: np.ndarray, part: np.ndarray) -> None:
    """A label whose names all went to val/test gets one of them moved to train: going through the pairs
    by (label, name), each pair whose label has no training pair yet moves its name to train."""
    name_of_row = np.repeat(np.arange(len(first)), np.diff(np.append(first, len(table))))
    in_train = set(np.unique(table.label_idx[part[name_of_row] == TRAIN]).tolist())
    missing = [lab for lab in range(len(table.labels)) if lab not in in_train]
    if not missing:
        return
    rows = np.flatnonzero(np.isin(table.label_idx, missing))
    rows = rows[np.lexsort((table.name_idx[rows], table.label_idx[rows]))]
    ends = np.append(first[1:], len(table))
    for r in rows.tolist():
        if int(table.label_idx[r]) not in in_train:
            name = int(name_of_row[r])
            part[name] = TRAIN
            in_train.update(table.label_idx[first[name]:ends[name]].tolist())
