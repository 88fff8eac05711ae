"""Calibrated probabilities and evaluation on any labelled source.

Temperature scaling (Guo et al., 2017): one scalar T divides a classifier's logits so that the
probabilities match how often the model is right. T is fitted on the validation split after
training (``calibrate_run``) and stored in the run as ``calibration.json``; inference divides by it.
Dividing by T > 0 never changes the predicted class, so accuracy and F1 stay as they were.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from namestudio.data.errors import NamestudioError

from . import runfolder as rf
from .batches import MAX_LEN, pad
from .metrics import classification_report, confusion_matrix

CALIBRATION = rf.CALIBRATION
BINS = 15


def _nll(logits: torch.Tensor, targets: torch.Tensor, beta: float) -> float:
    return F.cross_entropy(logits * beta, targets).item()


def fit_temperature(logits: torch.Tensor, targets: torch.Tensor, lo: float = 0.05, hi: float = 20.0) -> float:
    """The temperature T in [lo, hi] that minimises the NLL of softmax(logits / T) on ``targets``.

    The NLL is convex in the inverse temperature beta = 1/T (log-sum-exp is convex, the rest is linear),
    so a golden-section search over beta finds the minimum; 60 rounds narrow it to ~1e-12 of the range.
    """
    logits, targets = logits.detach().double(), targets.long()
    if len(targets) == 0:
        return 1.0
    a, b = 1.0 / hi, 1.0 / lo
    g = (math.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = _nll(logits, targets, c), _nll(logits, targets, d)
    for _ in range(60):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = _nll(logits, targets, c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = _nll(logits, targets, d)
    return 1.0 / ((a + b) / 2)


def reliability(probs: torch.Tensor, targets: torch.Tensor, bins: int = BINS) -> list[dict]:
    """Data for a reliability diagram: per equal-width confidence bin (lo, hi], the mean confidence of the
    top prediction, its accuracy and the count (confidence and accuracy are None in an empty bin)."""
    conf, pred = probs.double().max(dim=-1)
    right = (pred == targets.to(pred.device)).double()
    # bin i holds confidences in (i/bins, (i+1)/bins]; a confidence of exactly 0 cannot occur for a max prob
    which = (conf * bins).ceil().long().clamp(1, bins) - 1
    rows = []
    for i in range(bins):
        m = which == i
        n = int(m.sum())
        rows.append({"lo": round(i / bins, 6), "hi": round((i + 1) / bins, 6), "count": n,
                     "confidence": conf[m].mean().item() if n else None,
                     "accuracy": right[m].mean().item() if n else None})
    return rows


def expected_calibration_error(probs: torch.Tensor, targets: torch.Tensor, bins: int = BINS) -> float:
    """ECE: the count-weighted mean gap |accuracy - confidence| over equal-width confidence bins."""
    total = len(targets)
    if total == 0:
        return 0.0
    return sum(r["count"] / total * abs(r["accuracy"] - r["confidence"])
               for r in reliability(probs, targets, bins) if r["count"])


@torch.no_grad()
def name_logits(model, vocab, names: list[str], batch_size: int = 1024) -> torch.Tensor:
    """A classifier's logits for each name (CPU, eval mode)."""
    model.eval()
    out = []
    for s in range(0, len(names), batch_size):
        ids, lengths = pad([vocab.encode(n)[:MAX_LEN] or [vocab.UNK] for n in names[s:s + batch_size]])
        out.append(model(ids, lengths).float())
    return torch.cat(out) if out else torch.zeros(0, 0)


def fit_run(run) -> dict:
    """Fit T on a loaded classifier run's validation split with its weights: what ``calibrate_run`` writes,
    without writing it."""
    index = {lab: i for i, lab in enumerate(run.labels)}
    val = [(n, lab) for n, lab in run.split["val"] if lab in index]
    rows, _ = _readable(run, val, {n for n, _ in val})
    val = [(text, lab) for _, text, lab in rows]
    logits = name_logits(run.model, run.vocab, [n for n, _ in val])
    y = torch.tensor([index[lab] for _, lab in val], dtype=torch.long)
    t = fit_temperature(logits, y)
    return {"temperature": t, "n_val": len(val),
            "val_nll_before": F.cross_entropy(logits, y).item() if len(val) else None,
            "val_nll_after": F.cross_entropy(logits / t, y).item() if len(val) else None,
            "val_ece_before": expected_calibration_error(logits.softmax(-1), y),
            "val_ece_after": expected_calibration_error((logits / t).softmax(-1), y)}


def calibrate_run(run_dir) -> dict | None:
    """Fit T on the run's validation split with its best weights and write ``calibration.json`` atomically,
    with the digest of the weights it was fitted to (``LoadedRun.weights_digest``).

    Returns what it wrote, or None for a generator run (nothing to calibrate)."""
    from .infer import load_run
    run = load_run(Path(run_dir))
    if run.task != "classify":
        return None
    result = {**fit_run(run), "weights": run.weights_digest}
    rf.atomic_write_json(Path(run_dir) / CALIBRATION, result)
    return result


TEMPERATURE_RANGE = (0.05, 20.0)   # what fit_temperature searches: a saved value outside it was not fitted here


def _read_saved(run) -> tuple[dict | None, str | None]:
    """(the run's calibration.json, None) when it belongs to the weights ``run`` holds; else (None, why not):
    "none", "stale" (fitted to other weights) or the damage in words.

    It belongs when its ``weights`` digest is the loaded weights' digest. A file from before the digest was
    recorded belongs when it is newer than the weights file (calibration is written after the weights it fits;
    a run resumed since then has rewritten them)."""
    path = Path(run.path) / CALIBRATION
    if not path.exists():
        return None, "none"
    try:
        saved = rf.read_json(path, dict)
    except rf.RunFolderError as e:
        return None, f"calibration.json is damaged ({str(e).split(': ', 1)[-1]})"
    t = saved.get("temperature")
    lo, hi = TEMPERATURE_RANGE
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not (lo <= t <= hi):
        return None, f"calibration.json is damaged (temperature {t!r} is not a number in [{lo}, {hi}])"
    if "weights" in saved:
        fits = saved["weights"] == run.weights_digest
    else:
        try:
            fits = path.stat().st_mtime >= (Path(run.path) / rf.WEIGHTS).stat().st_mtime
        except OSError:
            fits = False
    return ({**saved, "temperature": float(t)}, None) if fits else (None, "stale")


def saved_calibration(run) -> dict | None:
    """The run's calibration.json when it belongs to the weights ``run`` holds (see ``_read_saved``), else None."""
    return _read_saved(run)[0]


def run_calibration(run) -> dict:
    """A loaded classifier run's calibration: its ``calibration.json`` when fitted to these weights
    (``"saved": True``), else the same fitted now on its validation split and not written (``"saved": False``,
    with ``"why"``: "none", "stale" when the file was fitted to other weights (before a resume, say), or the
    damage in words; ``"stale"`` is True when a file exists). ``save_calibration`` writes it."""
    saved, why = _read_saved(run)
    if saved is not None:
        return {**saved, "saved": True}
    return {**fit_run(run), "weights": run.weights_digest, "saved": False, "why": why, "stale": why != "none"}


def save_calibration(run, cal: dict) -> str | None:
    """Write a calibration fitted now (``run_calibration``) into the run, unless a trainer is at work on it (its
    weights move on; the trainer writes its own at the end). None when written, else why not, in words (a
    read-only folder is a reason, not an error: the temperature was fitted all the same)."""
    if cal.get("saved"):
        return None
    try:
        if rf.read_status(run.path).live:
            return "the run is being trained"
    except rf.RunFolderError:
        pass
    record = {k: v for k, v in cal.items() if k not in ("saved", "stale", "why")}
    try:
        rf.atomic_write_json(Path(run.path) / CALIBRATION, record)
    except rf.RunFolderError as e:
        return str(e)
    return None


class EvalDataError(NamestudioError, ValueError):
    """Nothing left to evaluate, or a source that does not fit the run; one line."""


def load_source(run, src: str):
    """A labelled source to test ``run`` on, read as the run's training data was (folded to ASCII when it was
    trained with --ascii): its names are then the strings the run's split holds, so ``evaluate_pairs`` can tell
    which are in its training or validation split."""
    from namestudio.data import load_dataset
    return load_dataset(src, ascii_fold=run.config.ascii_fold)


def _readable(run, pairs, held: set):
    """(the pairs the model can read, each (name as given, name as the model reads it (``LoadedRun.read``:
    normalised, folded, cut), label), the names it cannot read). A generator is scored on the name's own letters:
    an unseen letter stays unseen (<unk>), not folded. A name the run's split holds as given (``held``) keeps its
    case, as the trainer scored it ("an" stays "an"); any other is read as classify reads a typed name (DOVESKY
    and dovesky as Dovesky, by a run that learned capitalised names)."""
    from .infer import InferenceError
    out, bad = [], []
    fold = run.task == "classify"
    for name, lab in pairs:
        try:
            out.append((name, run.read(name, fold_unseen=fold, recase=name not in held).text, lab))
        except InferenceError:
            bad.append(name)
    return out, bad


def evaluate_pairs(run, pairs, exclude_train: bool = False, temperature: float | None = None) -> dict:
    """Test a loaded run on any labelled (name, label) pairs (generators: NLL per character).

    Labels the run does not know are counted and skipped; rows whose name is in the run's training split are
    counted (``in_train``) and, with ``exclude_train``, skipped too; ``in_val`` counts the rows evaluated whose
    name is in its validation split. A name is looked up both as the pairs give it, which is how the split holds it
    when the pairs come from ``load_source``, and as the model reads it (SMITH as Smith); the first keeps
    "Maçon", read as "Macon" by a run that never saw "ç", in the validation split where it is. Returns accuracy, balanced accuracy, macro-F1, per class, confusion, NLL and
    ECE before/after temperature scaling, the reliability-diagram bins, and ``lm_blend``: the n-gram blend these
    figures include, or why the run's is left out (``LoadedRun.lm_blend``; None when there is none)."""
    index = {lab: i for i, lab in enumerate(run.labels)}
    folded = {lab.lower(): lab for lab in run.labels}
    unknown: dict[str, int] = {}
    known = []
    for name, lab in pairs:
        lab = lab if lab in index else folded.get(str(lab).lower(), lab)
        if lab in index:
            known.append((name, lab))
        else:
            unknown[lab] = unknown.get(lab, 0) + 1
    train = run.train_names
    val = {n for n, _ in run.split.get("val", [])} - train
    held = train | val | {n for n, _ in run.split.get("test", [])}
    rows, unreadable = _readable(run, known, held)
    key = lambda r: r[0] if r[0] in held else r[1]     # as given when the split holds it so, else as read (SMITH)
    overlap = sum(1 for r in rows if key(r) in train)
    if exclude_train:
        rows = [r for r in rows if key(r) not in train]
    in_val = sum(1 for r in rows if key(r) in val)     # kept: not trained on, but the checkpoint chosen on them
    known = [(text, lab) for _, text, lab in rows]
    if not known:
        skipped = sum(unknown.values())
        why = ("every name with a label the run knows is in its training split" + (
            f" ({skipped:,} row{'s' * (skipped != 1)} with labels it does not know skipped)" if skipped else "")
            if exclude_train and overlap else
            f"none of its labels is known to the run (it knows: {', '.join(run.labels)})")
        raise EvalDataError(f"nothing to evaluate: {why}")
    counts = {"skipped_unknown": sum(unknown.values()), "unknown_labels": sorted(unknown), "in_train": overlap,
              "in_val": in_val,
              "excluded_train": overlap if exclude_train else 0, "unreadable": len(unreadable),
              "unreadable_names": unreadable[:3],
              "n_source": len(pairs), "lm_blend": run.lm_blend}
    if run.task != "classify":  # generators: NLL per character on the source's names
        from .batches import encode
        from .train import evaluate
        return {**evaluate(run.model, encode(known, run.vocab, index, run.task), run.task, run.labels,
                           torch.device("cpu")), **counts}
    t = run.temperature if temperature is None else temperature
    logits = name_logits(run.model, run.vocab, [n for n, _ in known])
    y = torch.tensor([index[lab] for _, lab in known], dtype=torch.long)
    before, after = logits.softmax(-1), (logits / t).softmax(-1)
    report = classification_report(confusion_matrix(y, logits.argmax(-1), len(run.labels)), run.labels)
    return {
        **report,
        "loss": F.cross_entropy(logits, y).item(),
        "nll_after": F.cross_entropy(logits / t, y).item(),
        "temperature": t,
        "ece_before": expected_calibration_error(before, y),
        "ece_after": expected_calibration_error(after, y),
        "reliability": {"bins": BINS, "before": reliability(before, y), "after": reliability(after, y)},
        **counts,
    }
