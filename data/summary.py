"""A small JSON-able summary of a dataset (and optionally its split)."""
from __future__ import annotations

import statistics
from collections import Counter, defaultdict

import numpy as np

from .sources import Dataset
from .split import Split
from .table import PairTable, table_of

MAX_EXAMPLES = 10


def _length_stats(lengths: list[int]) -> dict:
    if not lengths:
        return {"min": 0, "max": 0, "mean": 0.0, "median": 0.0, "p95": 0}
    lengths = sorted(lengths)
    p95 = lengths[max(0, -(-95 * len(lengths) // 100) - 1)]  # nearest rank
    return {
        "min": lengths[0],
        "max": lengths[-1],
        "mean": round(statistics.fmean(lengths), 2),
        "median": statistics.median(lengths),
        "p95": p95,
    }


def _length_stats_np(lengths: np.ndarray) -> dict:
    """_length_stats of an array of lengths, with the same numbers and types."""
    n = len(lengths)
    if not n:
        return _length_stats([])
    lengths = np.sort(lengths)
    at = lambda i: int(lengths[i])
    return {
        "min": at(0),
        "max": at(-1),
        "mean": round(int(lengths.sum()) / n, 2),            # statistics.fmean of ints: exact sum / n
        "median": at(n // 2) if n % 2 else (at(n // 2 - 1) + at(n // 2)) / 2,   # as statistics.median
        "p95": at(max(0, -(-95 * n // 100) - 1)),
    }


def summarise(ds: Dataset, split: Split | None = None) -> dict:
    """Counts, lengths, cross-label duplicates ([name, [labels]] examples,
    most-shared first), the cleaning report, the labels left out whole (if
    any: "dropped_labels"; those with no name left: "nameless_labels") and, if given, the split."""
    table = table_of(ds.pairs)
    out = _from_table(ds, table) if table is not None else _from_pairs(ds)
    if ds.dropped_labels:          # which labels were left out whole, why, and their names (counted in "cleaning")
        out["dropped_labels"] = {"why": ds.dropped_labels["why"], "labels": dict(ds.dropped_labels["labels"])}
    if ds.nameless_labels:         # the labels left out because no name of theirs was left (any source)
        out["nameless_labels"] = list(ds.nameless_labels)
    if split is not None:
        out["split"] = split.to_dict()
    return out


def _from_table(ds: Dataset, t: PairTable) -> dict:
    """The same summary from the compact table: array work, no per-pair Python."""
    first = np.flatnonzero(np.r_[True, t.name_idx[1:] != t.name_idx[:-1]]) if len(t) else np.zeros(0, int)
    n_labels_of = np.diff(np.append(first, len(t)))                  # labels per distinct name
    shared = np.flatnonzero(n_labels_of > 1)
    shared = shared[np.lexsort((t.name_idx[first[shared]], -n_labels_of[shared]))][:MAX_EXAMPLES]
    examples = [[t.names[t.name_idx[first[i]]], [t.labels[j] for j in t.label_idx[first[i]:first[i] + n_labels_of[i]]]]
                for i in shared.tolist()]
    per_label = np.bincount(t.label_idx, minlength=len(t.labels))
    return {
        "source": ds.source,
        "task_hint": ds.task_hint,
        "n_pairs": len(ds.pairs),
        "n_names": len(first),
        "n_labels": len(ds.labels),
        "per_label": {lab: int(n) for lab, n in zip(t.labels, per_label.tolist()) if n},
        "length": _length_stats_np(np.fromiter(map(len, t.names), dtype=np.int64, count=len(t.names))[t.name_idx[first]]),
        "cross_label_duplicates": {
            "count": int(np.count_nonzero(n_labels_of > 1)),
            "examples": examples,
        },
        "cleaning": dict(ds.report),
    }


def _from_pairs(ds: Dataset) -> dict:
    labels_of: dict[str, set[str]] = defaultdict(set)
    for name, label in ds.pairs:
        labels_of[name].add(label)
    shared = sorted(
        ((name, sorted(labs)) for name, labs in labels_of.items() if len(labs) > 1),
        key=lambda item: (-len(item[1]), item[0]),
    )
    out = {
        "source": ds.source,
        "task_hint": ds.task_hint,
        "n_pairs": len(ds.pairs),
        "n_names": len(labels_of),
        "n_labels": len(ds.labels),
        "per_label": dict(sorted(Counter(label for _, label in ds.pairs).items())),
        "length": _length_stats([len(name) for name in labels_of]),
        "cross_label_duplicates": {
            "count": len(shared),
            "examples": [[n, labs] for n, labs in shared[:MAX_EXAMPLES]],
        },
        "cleaning": dict(ds.report),
    }
    return out
