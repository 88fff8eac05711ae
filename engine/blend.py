"""The n-gram blend (issue 9): a network plus a character n-gram language model per language.

After training, a ``CharNGramLM`` (engine/models.py; modified Kneser-Ney) is counted over the training names, well
under a second for the names data, and combined with the network with weights chosen on the validation split.
The test split is never looked at.

Classifiers (``fit_blend``, ``BlendedClassifier``):

    logits = log_softmax(network) + weight * (log p(name | language) + prior_weight * log prior)

``weight`` and ``prior_weight`` come from a small grid, scored on the validation split by accuracy + balanced
accuracy + macro-F1 (the three figures issue 9 asks for); weight 0, the network alone, is in the grid, so the
blend is never worse than the network on validation.

Generators (``fit_mix``, ``MixedGenerator``): the next-character distributions are multiplied, each raised to a
weight, and renormalised (a product of experts); the two weights minimise the validation NLL per character, chosen
for each letter position (the first and second letters lean on different evidence than later ones), and (1, 0),
the network alone, is in the grid.

The language model is saved in the run folder as ``lm.safetensors`` (runfolder.LM): its counts and the chosen
weights, plain tensors, and in its header the digest of the network weights they were chosen for and the report of
what was chosen (with its validation figures), in one atomic write: the file says what it is, so a run stopped (or
killed) after it was saved and before its test was recorded is described with the blend it uses, in every face
(runfolder.kept_blend for listings, ``LoadedRun.lm_blend`` for eval). ``load_blend``
puts it back around the network when a run is loaded; a run without the file (older runs, ``--lm-order 0``, or the
network alone chosen) is the network alone, and so is a run whose weights moved on since its blend was chosen (a
resumed run writes a new best while it trains; it chooses its blend afresh when it ends): its blend is reported
"not used (chosen for earlier weights …)" (``describe``) rather than put around weights it was not chosen for.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from . import runfolder as rf

if TYPE_CHECKING:      # torch is imported where it is used, so that describe() and short() stay light (the TUI)
    import torch

    from .batches import Encoded
    from .models import BlendedClassifier, MixedGenerator

MIX_WEIGHTS = tuple(round(0.3 + 0.05 * i, 2) for i in range(15))   # 0.3 .. 1.0, for each of the two
MIX_POSITIONS = 8      # a pair of weights for each of the first 7 letter positions, and one for the 8th and later
MIX_MIN_CHARS = 500    # validation characters a position needs to get its own pair

WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0, 1.5, 2.0)
PRIOR_WEIGHTS = (0.0, 0.5, 1.0)


def _scores(fn, data: Encoded, device, batch_size: int = 1024) -> torch.Tensor:
    """fn(ids, lengths) over the data in batches, on the CPU, in the data's order."""
    import torch
    out = []
    for s in range(0, len(data), batch_size):
        b = data.batch(torch.arange(s, min(len(data), s + batch_size)), device)
        out.append(fn(b.ids, b.lengths).float().cpu())
    return torch.cat(out)


def _figures(logits: torch.Tensor, y: torch.Tensor, n: int) -> dict:
    from .metrics import classification_report, confusion_matrix
    rep = classification_report(confusion_matrix(y, logits.argmax(-1), n), [str(i) for i in range(n)])
    return {k: rep[k] for k in ("accuracy", "balanced_accuracy", "macro_f1")}


def fit_blend(net: torch.nn.Module, train: Encoded, val: Encoded, n_labels: int, vocab_size: int, order: int,
              device=None) -> tuple[BlendedClassifier | None, dict]:
    """Count the language model on ``train`` and choose the blend on ``val``.

    Returns (the blended classifier, or None when the network alone did best on validation; a report of what was
    chosen and the validation figures before and after)."""
    return _fit(_choose_blend, net, train, val, (train.ids, train.lengths), n_labels, vocab_size, order, device)


def fit_mix(net: torch.nn.Module, train: Encoded, val: Encoded, n_labels: int, vocab_size: int, order: int,
            device=None) -> tuple[MixedGenerator | None, dict]:
    """Count the language model on ``train`` (a generator's encoding: <bos> + name) and choose the two weights
    of the product on ``val`` by NLL per character. Returns (the mixed generator, or None when the network alone
    did best; a report with the validation NLL before and after)."""
    names = (train.ids[:, 1:], (train.lengths - 1).clamp(min=1))      # without the <bos> the network reads
    return _fit(_choose_mix, net, train, val, names, n_labels, vocab_size, order, device)


def _fit(choose, net, train, val, names, n_labels, vocab_size, order, device):
    """What both share: the LM counted on the training names, the network in eval mode without gradients while
    ``choose`` scores the validation split, the report."""
    import torch

    from .models import CharNGramLM
    t0 = time.perf_counter()
    device = device or next(net.parameters()).device
    order = min(order, CharNGramLM.max_order(vocab_size, n_labels))   # a large alphabet caps it
    report = {"order": order, "n_val": len(val)}
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            lm = CharNGramLM(vocab_size, n_labels, order).to(device)
            lm.fit(names[0].to(device), names[1], train.y.to(device))
            if not len(val):
                return None, {**report, "why": "no validation names"}
            model, chosen = choose(net, lm, train, val, n_labels, device)
    finally:
        net.train(was_training)
    return model, {**report, **chosen, "seconds": round(time.perf_counter() - t0, 3)}


def _choose_blend(net, lm, train, val, n_labels, device):
    """w and λ by validation accuracy + balanced accuracy + macro-F1; ties go to the smaller weights."""
    import torch

    from .models import BlendedClassifier
    counts = torch.bincount(train.y.cpu(), minlength=n_labels).double()
    log_prior = (counts.clamp(min=0.5) / counts.sum().clamp(min=1)).log().float()
    y = val.y.cpu()
    base = _scores(lambda i, l: torch.log_softmax(net(i, l).float(), -1), val, device)
    ll = _scores(lm, val, device)
    best = None
    for w in WEIGHTS:
        for pw in PRIOR_WEIGHTS if w else (0.0,):
            fig = _figures(base + w * (ll + pw * log_prior), y, n_labels)
            score = fig["accuracy"] + fig["balanced_accuracy"] + fig["macro_f1"]
            if best is None or score > best[0] + 1e-9:
                best = (score, w, pw, fig)
    _, w, pw, fig = best
    chosen = {"weight": w, "prior_weight": pw, "val_before": _figures(base, y, n_labels), "val_after": fig}
    return (BlendedClassifier(net, lm, log_prior.to(device), w, pw) if w else None), chosen


def _choose_mix(net, lm, train, val, n_labels, device):
    """a and b by validation NLL per character, for each letter position (the first MIX_POSITIONS - 1 positions
    one by one, the last for every later one); (1, 0), the network alone, is in the grid. A position with fewer
    than MIX_MIN_CHARS validation characters takes the pair that does best over all positions."""
    import torch
    import torch.nn.functional as F

    from .models import MixedGenerator
    grid = [(1.0, 0.0)] + [(a, b) for a in MIX_WEIGHTS for b in MIX_WEIGHTS]
    P = MIX_POSITIONS
    total = torch.zeros(len(grid), P, dtype=torch.float64)
    chars = torch.zeros(P, dtype=torch.float64)
    step = max(8, 4_000_000 // (max(1, val.ids.shape[1]) * lm.vocab_size))   # names per batch: (B, T, V) stays small
    for s in range(0, len(val), step):
        b = val.batch(torch.arange(s, min(len(val), s + step)), device)
        logits, _ = net(b.ids, b.y)
        p, q = torch.log_softmax(logits.float(), -1), lm.next_probs(b.ids, b.y).clamp(min=1e-30).log()
        keep = b.target != 0
        where = torch.arange(keep.shape[1], device=keep.device).clamp(max=P - 1).expand_as(keep)[keep].cpu()
        p, q, target = p[keep], q[keep], b.target[keep]
        for i, (wa, wb) in enumerate(grid):
            loss = F.cross_entropy(wa * p + wb * q, target, reduction="none").double().cpu()
            total[i].index_add_(0, where, loss)
        chars.index_add_(0, where, torch.ones(len(where), dtype=torch.float64))
    overall = int(total.sum(1).argmin())
    best = [int(total[:, k].argmin()) if chars[k] >= MIX_MIN_CHARS else overall for k in range(P)]
    n = max(1.0, float(chars.sum()))
    wa, wb = [grid[i][0] for i in best], [grid[i][1] for i in best]
    chosen = {"net_weight": wa, "lm_weight": wb, "val_nll_before": float(total[0].sum()) / n,
              "val_nll_after": float(sum(total[i, k] for k, i in enumerate(best))) / n}
    return (MixedGenerator(net, lm, wa, wb) if any(wb) else None), chosen


def mix_weights(report: dict) -> tuple[list, list]:
    """The mix's (network, n-gram) weights by letter position, from a report; a run from before the weights were
    chosen by position recorded one pair (a list of one)."""
    def as_list(v) -> list:
        if isinstance(v, list):
            return [x for x in v if isinstance(x, (int, float))]
        return [v] if isinstance(v, (int, float)) else []
    return as_list(report.get("net_weight")), as_list(report.get("lm_weight"))


def mix_used(report: dict) -> bool:
    """Whether the n-gram model takes part anywhere (some position gives it a weight)."""
    return any(mix_weights(report)[1])


# the blend's validation figures: (key, as `train` and `eval` print them, as the Train pane's narrow log does)
BLEND_FIGURES = (("accuracy", "validation accuracy", "val acc"), ("balanced_accuracy", "balanced", "bal"),
                 ("macro_f1", "macro-F1", "F1"))


def describe(report: dict, narrow: bool = False) -> str:
    """One line on what ``fit_blend`` or ``fit_mix`` chose (train prints it; eval shows it from test_metrics.json).
    ``narrow``: for a narrow log (the Train pane's), in parts joined by " · ", so that a wrap breaks between
    them, and in fewer words (the weights of each letter position are `train`'s and `eval`'s to print)."""
    head, sep, join, arrow = (" · ", " · ", " · ", "→") if narrow else (": ", "; ", ", ", "->")
    if "val_nll_after" in report:
        a, b = mix_weights(report)
        if len(a) > 1:
            weights = f"weights by letter position 1 to {len(a)}+" if narrow else \
                "network/n-gram by letter position 1, 2, … {}+: {}".format(
                    len(a), " ".join(f"{x:g}/{y:g}" for x, y in zip(a, b)))
        else:
            weights = f"network {a[0] if a else 0:g}, n-gram {b[0] if b else 0:g}"
        before, after = report["val_nll_before"], report["val_nll_after"]
        nll = f"val NLL {before:.3f} → {after:.3f}" if narrow else \
            f"validation NLL {before:.4f} -> {after:.4f} nats/char"
        return f"n-gram mix (order {report['order']}){head}{weights}{sep}{nll}"
    if "val_after" in report:
        b, a = report["val_before"], report["val_after"]
        figures = join.join(f"{short if narrow else wide} {b[key]:.3f} {arrow} {a[key]:.3f}"
                            for key, wide, short in BLEND_FIGURES)
        return (f"n-gram blend (order {report['order']}){head}weight {report['weight']:g}, "
                f"prior {report['prior_weight']:g}{sep}{figures}")
    return f"n-gram blend (order {report.get('order')}): not used ({report.get('why', 'nothing chosen')})"


def short(report: dict) -> str:
    """What was chosen, in a few characters for a table: "5 · w 0.5", "6 · 0.5/0.45", "6 · 8 positions" (weights
    by letter position), or "none" (the network alone did best on validation)."""
    if mix_used(report):
        a, b = mix_weights(report)
        return f"{report['order']} · " + (f"{a[0]:g}/{b[0]:g}" if len(a) == 1 else f"{len(a)} positions")
    if report.get("weight"):
        return f"{report['order']} · w {report['weight']:g}"
    return "none"


def headline(report: dict) -> str | None:
    """What a headline table shows for the n-gram LM: ``short`` when it takes part in the figures, "not used
    (earlier weights)" when ``load_blend`` left out a blend chosen for other weights, None when there is nothing
    to say (no blend, or the network alone chosen)."""
    if mix_used(report) or report.get("weight"):
        return short(report)
    return "not used (earlier weights)" if report.get("stale") else None


def save_blend(run_dir: Path, model: BlendedClassifier | MixedGenerator, report: dict | None = None) -> Path:
    """Write the language model and the chosen weights as ``lm.safetensors`` (atomically), with the digest of the
    network weights they were chosen for (the run folder's ``model.safetensors``, ``rf.weights_digest``) in its
    header: ``load_blend`` leaves the blend out once those weights have moved on (a resumed run's new best).
    ``report`` (``fit_blend``'s or ``fit_mix``'s: what was chosen, and the validation figures) goes in the header
    too, in the same write: the file says what it is, so a run stopped before its test recorded the blend is still
    described with the blend it uses (``rf.kept_blend``, ``rf.blend_chosen``)."""
    import json

    import torch
    run_dir = Path(run_dir)
    path = run_dir / rf.LM
    tensors = {f"lm.{k}": v for k, v in model.lm.state_dict().items()}
    tensors["order"] = torch.tensor(model.lm.order)
    tensors.update({k: v for k, v in model.named_buffers(recurse=False)})
    meta = {"chosen": json.dumps(report)} if report is not None else {}
    try:
        meta["weights"] = rf.weights_digest((run_dir / rf.WEIGHTS).read_bytes())
    except FileNotFoundError:      # no weights file to name (a blend saved on its own): it goes with any
        pass
    rf.save_weights(tensors, path, metadata=meta or None)
    return path


def remove_blend(run_dir: Path) -> None:
    """Drop a blend file left by an earlier finish of this run (a resumed run chooses afresh)."""
    try:
        (Path(run_dir) / rf.LM).unlink()
    except FileNotFoundError:
        pass


STALE = "chosen for earlier weights; the run has trained on since"   # why load_blend left a blend out


def load_blend(run_dir: Path, net: torch.nn.Module, vocab_size: int, n_labels: int, task: str,
               weights: str | None = None, data: bytes | None = None) -> tuple[torch.nn.Module, dict | None]:
    """(the network with the run's saved language model around it, or the network alone when there is none;
    None, or, when the saved blend was left out, a report of why for ``describe``).

    ``weights`` is ``rf.weights_digest`` of the network weights loaded into ``net`` (their file's bytes): a blend
    chosen for other weights (``save_blend`` records theirs: a resumed run has written a new best since, and has
    not, or not yet, chosen its blend afresh) is left out, and the network is used alone. A blend saved without the
    digest (before it was recorded) is used as it is. ``data``: the file's bytes, read already."""
    from .models import BlendedClassifier, CharNGramLM, MixedGenerator
    path = Path(run_dir) / rf.LM
    if data is None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return net, None
    sd = rf.load_weights(path, data=data)
    chosen_for = rf.weights_metadata(data).get("weights")
    if weights is not None and chosen_for is not None and chosen_for != weights:
        order = sd.get("order")
        return net, {"order": int(order) if order is not None and order.numel() == 1 else None, "why": STALE,
                     "stale": True}
    try:
        lm = CharNGramLM(vocab_size, n_labels, int(sd.pop("order")))
        lm.load_state_dict({k.removeprefix("lm."): v for k, v in sd.items() if k.startswith("lm.")})
        if task == "classify":
            if sd["log_prior"].shape != (n_labels,):
                raise ValueError(f"log_prior has {tuple(sd['log_prior'].shape)}, the run has {n_labels} labels")
            model = BlendedClassifier(net, lm, sd["log_prior"], float(sd["weight"]), float(sd["prior_weight"]))
        else:
            model = MixedGenerator(net, lm, sd["net_weight"], sd["lm_weight"])
    except (KeyError, ValueError, RuntimeError, TypeError) as e:
        raise rf.RunFolderError(f"{path}: not this run's n-gram model ({str(e).splitlines()[0][:120]})") from None
    return model.eval(), None
