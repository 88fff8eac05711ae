"""Leak-free train/val/test split by unique name string, stratified by label."""
from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Iterable

Pair = tuple[str, str]


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
            "names": {k: len({n for n, _ in v}) for k, v in parts.items()},
        }


def primary_labels(pairs: Iterable[Pair]) -> dict[str, str]:
    """name -> its most frequent label (ties: alphabetically first)."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for name, label in pairs:
        counts[name][label] += 1
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
    pairs = list(pairs)
    primary = primary_labels(pairs)
    by_label: dict[str, list[str]] = defaultdict(list)
    for name in sorted(primary):
        by_label[primary[name]].append(name)
    rng = random.Random(seed)
    part_of: dict[str, str] = {}
    for label in sorted(by_label):
        names = by_label[label]
        rng.shuffle(names)
        n_val, n_test = _cut(len(names), val, test)
        for i, name in enumerate(names):
            part_of[name] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    _ensure_labels_in_train(pairs, part_of)
    parts: dict[str, list[Pair]] = {"train": [], "val": [], "test": []}
    for pair in sorted(set(pairs)):
        parts[part_of[pair[0]]].append(pair)
    return Split(parts["train"], parts["val"], parts["test"], seed, val, test)


def _ensure_labels_in_train(pairs: list[Pair], part_of: dict[str, str]) -> None:
    """A label whose names all went to val/test gets one of them moved to train."""
    in_train = {label for name, label in pairs if part_of[name] == "train"}
    for name, label in sorted(set(pairs), key=lambda p: (p[1], p[0])):
        if label not in in_train:
            part_of[name] = "train"
            in_train.update(lab for n, lab in pairs if n == name)
