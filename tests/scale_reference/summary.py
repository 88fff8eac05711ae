"""A small JSON-able summary of a dataset (and optionally its split)."""
from __future__ import annotations

import statistics
from collections import Counter, defaultdict

from .sources import Dataset
from .split import Split

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


def summarise(ds: Dataset, split: Split | None = None) -> dict:
    """Counts, lengths, cross-label duplicates ([name, [labels]] examples,
    most-shared first), the cleaning report and, if given, the split."""
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
    if split is not None:
        out["split"] = split.to_dict()
    return out
