"""The compact form of a cleaned dataset: unique names and labels once, pairs as two integer arrays.

A million (name, label) pairs as Python tuples cost ~150 MB and seconds of per-pair Python; the same
pairs as a :class:`PairTable` are a list of unique name strings, a list of labels and two int32 arrays.
The split, the summary and the cache work on the table; the ``pairs`` lists the rest of the code reads
are :class:`Pairs`: ordinary lists of tuples that also carry their table (dropped at the first change).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Pair = tuple[str, str]


@dataclass
class PairTable:
    """Sorted unique pairs: ``(names[name_idx[i]], labels[label_idx[i]])``, ordered by (name, label).

    ``names`` and ``labels`` are sorted (Python string order) and hold no duplicates, so the order of the
    integer pairs is the order of the string pairs.
    """
    names: list[str]
    labels: list[str]
    name_idx: np.ndarray    # int32, one per pair
    label_idx: np.ndarray   # int32, one per pair

    def __len__(self) -> int:
        return len(self.name_idx)

    @classmethod
    def from_sorted_unique(cls, pairs: list[Pair]) -> "PairTable":
        """From pairs that are already sorted and unique (as cleaning returns them)."""
        names = list(dict.fromkeys(n for n, _ in pairs))          # sorted pairs: names come in order
        labels = sorted({lab for _, lab in pairs})
        n_of = {n: i for i, n in enumerate(names)}
        l_of = {lab: i for i, lab in enumerate(labels)}
        name_idx = np.fromiter((n_of[n] for n, _ in pairs), dtype=np.int32, count=len(pairs))
        label_idx = np.fromiter((l_of[lab] for _, lab in pairs), dtype=np.int32, count=len(pairs))
        return cls(names, labels, name_idx, label_idx)

    @classmethod
    def from_counts(cls, counts) -> "PairTable":
        """From the distinct pairs of a {pair: count} mapping or any collection of pairs (any order)."""
        names: dict[str, int] = {}
        labels: dict[str, int] = {}
        nid = np.fromiter((names.setdefault(n, len(names)) for n, _ in counts), dtype=np.int64, count=len(counts))
        lid = np.fromiter((labels.setdefault(lab, len(labels)) for _, lab in counts), dtype=np.int64, count=len(counts))
        return cls.from_ids(list(names), list(labels), nid, lid)

    @classmethod
    def from_ids(cls, names: list[str], labels: list[str], nid: np.ndarray, lid: np.ndarray) -> "PairTable":
        """From distinct names and labels in any order and distinct (name id, label id) pairs."""
        name_order, label_order = _order(names), _order(labels)
        n_labels = max(1, len(labels))
        combined = np.sort(_rank(name_order)[nid] * n_labels + _rank(label_order)[lid])
        return cls([names[i] for i in name_order.tolist()], [labels[i] for i in label_order.tolist()],
                   (combined // n_labels).astype(np.int32), (combined % n_labels).astype(np.int32))

    def pairs(self, rows: np.ndarray | None = None) -> "Pairs":
        """The pairs (or those at ``rows``) as a list of tuples that keeps this table."""
        n_idx = self.name_idx if rows is None else self.name_idx[rows]
        l_idx = self.label_idx if rows is None else self.label_idx[rows]
        names, labels = self.names, self.labels
        out = Pairs(zip([names[i] for i in n_idx.tolist()], [labels[i] for i in l_idx.tolist()]))
        out.table = self if rows is None else self.subset(rows)
        return out

    def subset(self, rows: np.ndarray) -> "PairTable":
        """The pairs at ``rows`` (increasing), sharing the name and label lists."""
        return PairTable(self.names, self.labels, self.name_idx[rows], self.label_idx[rows])

    def n_names(self) -> int:
        """Distinct names among the pairs."""
        if not len(self.name_idx):
            return 0
        return int(np.count_nonzero(np.diff(self.name_idx)) + 1)    # sorted by name


MAX_SORT_BYTES = 256 * 1024 * 1024    # beyond this a fixed-width NumPy copy of the strings costs too much memory


def _order(strings: list[str]) -> np.ndarray:
    """The indices that sort distinct strings in Python's (code point) order."""
    n = len(strings)
    width = max(1, max(map(len, strings), default=0))
    if n * width * 4 <= MAX_SORT_BYTES:      # NumPy compares fixed-width strings by code point, as Python does
        return np.argsort(np.array(strings, dtype=f"<U{width}"))
    return np.array(sorted(range(n), key=strings.__getitem__), dtype=np.int64)


def _rank(order: np.ndarray) -> np.ndarray:
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank


class Pairs(list):
    """A list of (name, label) tuples that may carry the :class:`PairTable` it was made from.

    It is a plain list to every reader (``==``, slicing, JSON). Any change in place drops the table, so a
    table is only ever used while it describes the list exactly. ``cache_key`` names the cleaned dataset
    in the cache (see cache.py), so a split of these pairs can be cached too.
    """
    table: PairTable | None = None
    cache_key: str | None = None

    def _changed(self):
        self.table = None
        self.cache_key = None

    def valid_table(self) -> PairTable | None:
        t = self.table
        return t if t is not None and len(t) == len(self) else None


def _dropping_table(method):
    def changed(self, *args, **kwargs):
        self._changed()
        return method(self, *args, **kwargs)
    changed.__name__ = method.__name__
    return changed


for _name in ("__setitem__", "__delitem__", "__iadd__", "__imul__", "append", "extend", "insert", "pop", "remove",
              "clear", "sort", "reverse"):
    setattr(Pairs, _name, _dropping_table(getattr(list, _name)))
del _name


def table_of(pairs) -> PairTable | None:
    """The table a pairs list carries, if it still describes it."""
    return pairs.valid_table() if isinstance(pairs, Pairs) else None
