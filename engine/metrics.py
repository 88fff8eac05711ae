"""Classification metrics from a confusion matrix; perplexity for generators."""
from __future__ import annotations

import math

import torch


def confusion_matrix(y_true: torch.Tensor, y_pred: torch.Tensor, n: int) -> torch.Tensor:
    """Counts: rows are true labels, columns are predicted labels."""
    idx = y_true.long().cpu() * n + y_pred.long().cpu()
    return torch.bincount(idx, minlength=n * n).view(n, n)


def classification_report(cm: torch.Tensor, labels: list[str]) -> dict:
    """Accuracy, balanced accuracy, macro-F1 and per-class precision/recall/F1.

    Balanced accuracy averages recall over the labels that occur in the evaluated data; macro-F1 averages F1 over
    the labels that occur or are predicted (scikit-learn's convention): a label predicted for names of other
    labels has F1 0 and counts. Over the occurring labels alone, a source of one language read macro-F1 0.92
    at accuracy 0.85, the 15% given to other labels nowhere in the figure.
    """
    cm = cm.double()
    tp = cm.diag()
    support = cm.sum(1)
    predicted = cm.sum(0)
    precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), torch.zeros_like(tp))
    recall = torch.where(support > 0, tp / support.clamp(min=1), torch.zeros_like(tp))
    denom = precision + recall
    f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp(min=1e-12), torch.zeros_like(tp))
    present = support > 0
    seen = present | (predicted > 0)
    total = cm.sum().item()
    row_norm = cm / support.clamp(min=1)[:, None]
    return {
        "accuracy": tp.sum().item() / total if total else 0.0,
        "balanced_accuracy": recall[present].mean().item() if present.any() else 0.0,
        "macro_f1": f1[seen].mean().item() if seen.any() else 0.0,
        "n": int(total),
        "per_class": {
            lab: {"precision": round(precision[i].item(), 4), "recall": round(recall[i].item(), 4),
                  "f1": round(f1[i].item(), 4), "support": int(support[i].item())}
            for i, lab in enumerate(labels)
        },
        "confusion": cm.long().tolist(),
        "confusion_normalized": [[round(v, 4) for v in row] for row in row_norm.tolist()],
    }


def perplexity(nll: float) -> float:
    return math.exp(min(nll, 50.0))
