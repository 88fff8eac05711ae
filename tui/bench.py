"""`namestudio bench`: how fast namestudio is, with every contender measured side by side in one run.

Sections (``--skip`` takes their names):

- ``seed``: namestudio's default classifier against a faithful reference of the seeds' recipe (one name per
  SGD step, nn.LSTM over one-hot ASCII letters) on the same data, split and device: training names/s, the
  reference's validation accuracy after a fixed time budget, and how long namestudio needs to reach it.
- ``mylstm``: the hand-written LSTM against nn.LSTM, epoch time of forward+backward over the same batches
  (and, in a full run, with its step scripted by TorchScript or compiled by torch.compile).
- ``startup``: ``namestudio --help`` and the TUI's first paint, in fresh processes.
- ``tui``: training names/s inside the running app (headless, ``App.run_test``) against headless CLI
  training, and key-press-to-screen latency while it trains.
- ``gpu``: CUDA only: names/s and epoch time of the classifier and the generator, with and without AMP.

Machines are noisy (other jobs share the cores), so the contenders of a section take turns in short slices and
every figure is a median. ``--json`` prints one JSON object as the last line of stdout.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import string
import subprocess
import sys
import tempfile
import time
import unicodedata
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_sequence

from namestudio.data import default_source, load_dataset, split_by_name

from namestudio.engine.batches import epoch_batches
from namestudio.engine.config import TrainConfig, default_threads
from namestudio.engine.device import available_devices, resolve_device
from namestudio.engine.metrics import classification_report, confusion_matrix
from namestudio.engine.models import _lstm_step, build_model
from namestudio.engine.train import Trainer, batch_loss


# ---- budgets ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Budgets:
    seed_budget_s: float = 60.0     # training time given to the seeds' reference
    rounds: int = 3                 # reference slices and namestudio runs take turns this many times
    ns_cap_s: float = 2.0           # training time of each namestudio run while they take turns
    cell_epochs: int = 3            # mylstm vs lstm: epochs of each
    cell_max_batches: int = 0       # cut each epoch to this many batches (0 = whole epochs)
    jit_variants: bool = True       # also time mylstm with a scripted and a compiled step
    help_runs: int = 9              # `namestudio --help` runs
    paint_runs: int = 5             # TUI first-paint runs
    tui_rounds: int = 2             # CLI and TUI training runs take turns this many times
    tui_train_s: float = 8.0        # seconds of training measured in each
    tui_presses: int = 30           # key presses timed in each TUI run
    gpu_epochs: int = 2             # epochs of each GPU configuration


PRESETS = {
    "full": Budgets(),
    "quick": Budgets(seed_budget_s=15.0, ns_cap_s=1.0, cell_epochs=1, jit_variants=False, help_runs=5,
                     paint_runs=3, tui_rounds=1, tui_train_s=4.0, tui_presses=16, gpu_epochs=1),
    # the test's plumbing run: a few seconds in all (NAMESTUDIO_BENCH_PRESET=tiny)
    "tiny": Budgets(seed_budget_s=0.6, rounds=2, ns_cap_s=0.3, cell_epochs=1, cell_max_batches=4,
                    jit_variants=False, help_runs=1, paint_runs=1, tui_rounds=1, tui_train_s=0.5, tui_presses=3,
                    gpu_epochs=1),
}

TARGETS = {  # key: (comparison, target) on 2 CPU cores; the bench reports, it never fails on a miss
    "speedup_to_same_accuracy": (">=", 50.0),
    "mylstm_over_lstm_epoch_time": ("<=", 1.5),
    "tui_over_cli_throughput": (">=", 0.85),
    "tui_key_latency_ms_p95": ("<=", 100.0),
    "cli_help_seconds": ("<=", 0.6),
    "tui_first_paint_seconds": ("<=", 2.0),
}

SECTIONS = ("seed", "mylstm", "startup", "tui", "gpu")
SECTION_KEYS = {
    "seed": ["seed_names_per_s", "ns_names_per_s", "ns_over_seed_names_per_s", "seed_budget_s", "seed_steps",
             "seed_val_acc_at_budget", "ns_seconds_to_seed_acc", "speedup_to_same_accuracy",
             "seed_val_balanced_acc_at_budget", "ns_seconds_to_seed_balanced_acc",
             "speedup_to_same_balanced_accuracy"],
    "mylstm": ["mylstm_over_lstm_epoch_time", "lstm_epoch_seconds", "mylstm_epoch_seconds",
               "mylstm_scripted_over_lstm_epoch_time", "mylstm_compiled_over_lstm_epoch_time",
               "mylstm_compile_warmup_seconds"],
    "startup": ["cli_help_seconds", "tui_first_paint_seconds"],
    "tui": ["tui_over_cli_throughput", "tui_names_per_s", "cli_names_per_s", "tui_key_latency_ms_p95",
            "tui_key_latency_ms_median",
            "tui_plot_key_latency_ms_p95", "tui_plot_key_latency_ms_median"],
    "gpu": ["gpu_lstm_names_per_s", "gpu_lstm_amp_names_per_s", "gpu_lstm_epoch_seconds",
            "gpu_lstm_amp_epoch_seconds", "gpu_generator_names_per_s", "gpu_generator_amp_names_per_s",
            "gpu_generator_epoch_seconds", "gpu_generator_amp_epoch_seconds"],
}


# ---- small helpers ----------------------------------------------------------------------
def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def percentile(values, q: float):
    """Nearest-rank percentile (q in 0..100)."""
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    rank = max(1, -(-len(values) * q // 100))
    return values[int(rank) - 1]


def ratio(a, b):
    return a / b if a is not None and b else None


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so that the clock measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def round_sig(x, digits: int = 4):
    if not isinstance(x, float):
        return x
    return float(f"{x:.{digits}g}")


# ---- progress: Rich on a terminal, plain lines otherwise --------------------------------
class Reporter:
    def __init__(self, json_mode: bool):
        from rich.console import Console
        self.console = Console(stderr=json_mode, highlight=False)
        self.progress = None
        if self.console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
            self.progress = Progress(TextColumn("[bold]{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), TextColumn("{task.fields[note]}"), console=self.console)

    def __enter__(self):
        if self.progress:
            self.progress.start()
        return self

    def __exit__(self, *exc):
        if self.progress:
            self.progress.stop()

    def line(self, text: str) -> None:
        (self.progress.console if self.progress else self.console).print(text)

    def section(self, title: str, total: int) -> "Section":
        return Section(self, title, total)


class Section:
    def __init__(self, rep: Reporter, title: str, total: int):
        self.rep, self.title, self.total, self.done = rep, title, max(1, total), 0
        self.task = rep.progress.add_task(title, total=self.total, note="") if rep.progress else None
        if not rep.progress:
            rep.line(f"{title}: started")

    def step(self, note: str = "") -> None:
        self.done += 1
        if self.task is not None:
            self.rep.progress.update(self.task, advance=1, note=note)
        else:
            self.rep.line(f"{self.title} [{self.done}/{self.total}] {note}".rstrip())

    def finish(self, note: str = "") -> None:
        if self.task is not None:
            self.rep.progress.update(self.task, completed=self.total, note=note)
        else:
            self.rep.line(f"{self.title}: done {note}".rstrip())


# ---- the run ----------------------------------------------------------------------------
@dataclass
class Context:
    budgets: Budgets
    device: torch.device
    threads: int
    data_src: str
    dataset: object
    rep: Reporter

    def config(self, **kw) -> TrainConfig:
        """namestudio's defaults (TrainConfig()), on the bench's data, device and threads."""
        return TrainConfig(data=self.data_src, device=self.device.type, threads=self.threads, **kw)


def run_bench(args) -> int:
    """The `namestudio bench` command."""
    skip = {s.strip() for s in (getattr(args, "skip", "") or "").split(",") if s.strip()}
    unknown = skip - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown section(s) to skip: {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    device, _ = resolve_device(getattr(args, "device", None) or "cpu")  # an absent device: one-line error
    preset = os.environ.get("NAMESTUDIO_BENCH_PRESET") or ("quick" if args.quick else "full")
    if preset not in PRESETS:
        raise ValueError(f"NAMESTUDIO_BENCH_PRESET={preset!r}; choose one of {', '.join(PRESETS)}")
    budgets = PRESETS[preset]
    # torch threads for every contender: namestudio's default unless NAMESTUDIO_BENCH_THREADS says otherwise
    threads = int(os.environ.get("NAMESTUDIO_BENCH_THREADS") or 0) or TrainConfig().threads or default_threads()
    src = args.data or default_source()
    with Reporter(args.json) as rep:
        dataset = load_dataset(src, ascii_fold=TrainConfig().ascii_fold)
        ctx = Context(budgets, device, threads, src, dataset, rep)
        results = bench(ctx, skip)
    show_summary(results, rep)
    if args.json:
        sys.stdout.write(json.dumps(results) + "\n")
        sys.stdout.flush()
    return 0


def bench(ctx: Context, skip: set[str]) -> dict:
    torch.set_num_threads(ctx.threads)
    started = time.time()
    out: dict = {
        "preset": next(k for k, v in PRESETS.items() if v == ctx.budgets), "device": str(ctx.device),
        "data": ctx.dataset.source, "n_names": len(ctx.dataset.pairs), "threads": ctx.threads,
        "cpu_count": os.cpu_count(), "torch": torch.__version__, "load_avg_start": _loadavg(),
    }
    notes, skipped, section_seconds = {}, {}, {}
    sections = {"seed": seed_section, "mylstm": cells_section, "startup": startup_section, "tui": tui_section,
                "gpu": gpu_section}
    for name, fn in sections.items():
        if name in skip:
            skipped[name] = "skipped with --skip"
            continue
        if name == "gpu" and "cuda" not in available_devices():
            skipped[name] = f"no CUDA device here (torch {torch.__version__})"
            continue
        section_start = time.perf_counter()
        try:
            got = fn(ctx)
        except Exception as e:  # one section failing must not lose the others' figures
            if os.environ.get("NAMESTUDIO_DEBUG"):
                raise
            skipped[name] = f"failed: {type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
            ctx.rep.line(f"[red]{name}: {skipped[name]}[/]")
            continue
        notes.update(got.pop("notes", {}))
        out.update(got)
        section_seconds[name] = round(time.perf_counter() - section_start, 1)
    for name, keys in SECTION_KEYS.items():
        for k in keys:
            out.setdefault(k, None)
    out = {k: round_sig(v) for k, v in out.items()}
    out["targets"] = {k: {"target": f"{op} {t:g}", "met": None if out.get(k) is None else
                          (out[k] >= t if op == ">=" else out[k] <= t)} for k, (op, t) in TARGETS.items()}
    out["notes"] = notes
    out["skipped"] = skipped
    out["load_avg_end"] = _loadavg()
    out["seconds"] = round(time.time() - started, 1)
    out["section_seconds"] = section_seconds
    return out


def _loadavg():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def show_summary(results: dict, rep: Reporter) -> None:
    from rich.table import Table
    n = results["threads"]
    title = f"namestudio bench ({results['preset']}, {results['device']}, {n} torch thread{'s' if n > 1 else ''})"
    t = Table(title=title, header_style="bold")
    for col in ("figure", "value", "target"):
        t.add_column(col, justify="right" if col == "value" else "left")
    for keys in SECTION_KEYS.values():
        for k in keys:
            v = results.get(k)
            target = results["targets"].get(k)
            mark = ""
            if target:
                mark = target["target"] + ("" if target["met"] is None else " ✓" if target["met"] else " ✗")
            t.add_row(k, "—" if v is None else f"{v:,.4g}", mark)
    rep.console.print(t)
    for name, why in results["skipped"].items():
        rep.console.print(f"[dim]{name}: {why}[/]")


# ---- 1. the seeds' recipe against namestudio ----------------------------------------------
ALL_LETTERS = string.ascii_letters + " .,;'"   # the 57 characters of the PyTorch char-RNN tutorial


def unicode_to_ascii(s: str) -> str:
    """The tutorial's folding: strip accents, keep only its 57 characters."""
    return "".join(c for c in unicodedata.normalize("NFD", s)
                   if unicodedata.category(c) != "Mn" and c in ALL_LETTERS)


def line_to_tensor(line: str) -> torch.Tensor:
    """(T, 1, 57) one-hot letters, as the tutorial fed them (a name with no such letter reads as one space)."""
    line = unicode_to_ascii(line) or " "
    tensor = torch.zeros(len(line), 1, len(ALL_LETTERS))
    for i, ch in enumerate(line):
        tensor[i, 0, ALL_LETTERS.index(ch)] = 1
    return tensor


class SeedLSTM(nn.Module):
    """The seeds' model: nn.LSTM (hidden 128) over one-hot letters, a linear layer on the final hidden state."""

    def __init__(self, n_labels: int, hidden: int = 128):
        super().__init__()
        self.lstm = nn.LSTM(len(ALL_LETTERS), hidden)
        self.h2o = nn.Linear(hidden, n_labels)

    def forward(self, line_tensor: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(line_tensor)
        return F.log_softmax(self.h2o(h[-1]), dim=1)


class SeedRecipe:
    """The seeds' training, step for step: pick a random language, then a random name of it; one SGD step
    (lr 0.005, NLL loss) per name. Names are one-hot encoded up front rather than at every step (the seeds
    did it per step), which can only make this reference faster."""

    def __init__(self, split, labels: list[str], device: torch.device, seed: int = 0, lr: float = 0.005):
        torch.manual_seed(seed)
        self.rng = random.Random(seed)
        self.device, self.labels = device, labels
        index = {lab: i for i, lab in enumerate(labels)}
        self.by_label: dict[str, list[torch.Tensor]] = {lab: [] for lab in labels}
        for name, lab in split.train:
            self.by_label[lab].append(line_to_tensor(name).to(device))
        self.categories = [lab for lab in labels if self.by_label[lab]]
        self.targets = {lab: torch.tensor([index[lab]], device=device) for lab in labels}
        self.val_x = [line_to_tensor(name)[:, 0] for name, _ in split.val]
        self.val_y = torch.tensor([index[lab] for _, lab in split.val])
        self.model = SeedLSTM(len(labels)).to(device)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=lr)
        self.steps, self.seconds = 0, 0.0

    def train_for(self, seconds: float) -> float:
        """Train for about ``seconds``; returns this slice's names/s."""
        model, opt, rng = self.model, self.optimizer, self.rng
        model.train()
        n, start = 0, time.perf_counter()
        deadline = start + seconds
        while True:
            label = rng.choice(self.categories)
            line = rng.choice(self.by_label[label])
            loss = F.nll_loss(model(line), self.targets[label])
            opt.zero_grad()
            loss.backward()
            opt.step()
            n += 1
            if time.perf_counter() >= deadline:
                break
        sync(self.device)
        elapsed = time.perf_counter() - start
        self.steps += n
        self.seconds += elapsed
        return n / elapsed

    @torch.no_grad()
    def evaluate(self) -> dict:
        """Validation metrics; the names go through in packed batches, which computes exactly what one name at a
        time would."""
        self.model.eval()
        preds = []
        for s in range(0, len(self.val_x), 1024):
            packed = pack_sequence([x.to(self.device) for x in self.val_x[s:s + 1024]], enforce_sorted=False)
            _, (h, _) = self.model.lstm(packed)
            preds.append(self.model.h2o(h[-1]).argmax(-1).cpu())
        report = classification_report(confusion_matrix(self.val_y, torch.cat(preds), len(self.labels)), self.labels)
        return {k: report[k] for k in ("accuracy", "balanced_accuracy", "macro_f1")}


def namestudio_run(cfg: TrainConfig, dataset, cap_s: float, targets: dict | None = None) -> dict:
    """Train namestudio's classifier as Trainer.run does (its setup, its epoch batches, its train step) and
    evaluate the validation split densely with the clock stopped: after each of the first 20 steps, then every 5,
    then every 10. Stops after ``cap_s`` seconds of training, or once every value in ``targets`` is reached."""
    with tempfile.TemporaryDirectory(prefix="namestudio-bench-") as tmp:
        trainer = Trainer(cfg, tmp, dataset=dataset)
        trainer.setup()  # the same model, optimiser, schedule, class weights and encoded split as a real run
        device, model = trainer.device, trainer.model
        curve, names, step, train_s = [], 0, 0, 0.0
        first_step_s, first_names = None, 0
        epoch = 0
        while True:
            batches = trainer.epoch_batches(epoch)
            for idx in batches:
                start = time.perf_counter()
                trainer.train_step(idx)
                step += 1
                names += len(idx)
                if not (step <= 20 or step % (5 if step <= 100 else 10) == 0):
                    train_s += time.perf_counter() - start
                    continue
                sync(device)
                train_s += time.perf_counter() - start
                if first_step_s is None:
                    first_step_s, first_names = train_s, names
                m = trainer.evaluate(trainer.val_data)
                model.train()
                curve.append({"train_s": train_s, "step": step, "accuracy": m["accuracy"],
                              "balanced_accuracy": m["balanced_accuracy"]})
                reached = targets and all(max(p[k] for p in curve) >= v for k, v in targets.items())
                if train_s >= cap_s or reached:
                    # names/s leaves out the first step, which pays one-off allocations
                    rate = (names - first_names) / (train_s - first_step_s) if train_s > first_step_s else None
                    return {"curve": curve, "names_per_s": rate, "train_s": train_s, "steps": step}
            epoch += 1


def time_to(curve: list[dict], key: str, target: float):
    """Training seconds at the first evaluation that reaches ``target``; None if none does."""
    return next((p["train_s"] for p in curve if p[key] >= target), None)


def seed_section(ctx: Context) -> dict:
    b, cfg = ctx.budgets, ctx.config()
    split = split_by_name(ctx.dataset.pairs, seed=cfg.split_seed, val=cfg.val_fraction, test=cfg.test_fraction)
    sec = ctx.rep.section("seeds' recipe vs namestudio", 2 * b.rounds + 1)
    ref = SeedRecipe(split, list(ctx.dataset.labels), ctx.device, seed=cfg.seed)
    ref_rates, runs = [], []
    slice_s = b.seed_budget_s / b.rounds
    for r in range(b.rounds):
        order = ("ref", "ns") if r % 2 == 0 else ("ns", "ref")  # take turns at going first
        for who in order:
            if who == "ref":
                ref_rates.append(ref.train_for(slice_s * (r + 1) - ref.seconds))
                sec.step(f"seeds' recipe {ref.seconds:.0f}/{b.seed_budget_s:.0f} s, {ref_rates[-1]:,.0f} names/s")
            else:
                runs.append(namestudio_run(cfg, ctx.dataset, b.ns_cap_s))
                sec.step(f"namestudio run {len(runs)}: {runs[-1]['names_per_s'] or 0:,.0f} names/s")
    seed_metrics = ref.evaluate()
    targets = {"accuracy": seed_metrics["accuracy"], "balanced_accuracy": seed_metrics["balanced_accuracy"]}
    # A run that stopped at its cap before reaching the reference is trained again, now towards the known target.
    curves = []
    for run in runs:
        if all(time_to(run["curve"], k, v) is not None for k, v in targets.items()):
            curves.append(run["curve"])
        else:
            curves.append(namestudio_run(cfg, ctx.dataset, 2 * b.seed_budget_s, targets)["curve"])
    sec.step(f"reference val accuracy {seed_metrics['accuracy']:.3f}")
    t_acc = median([time_to(c, "accuracy", targets["accuracy"]) for c in curves])
    t_bal = median([time_to(c, "balanced_accuracy", targets["balanced_accuracy"]) for c in curves])
    seed_rate = ref.steps / ref.seconds
    ns_rate = median([run["names_per_s"] for run in runs])
    sec.finish(f"speedup {ratio(ref.seconds, t_acc) or 0:,.0f}x")
    return {
        "seed_names_per_s": seed_rate, "ns_names_per_s": ns_rate, "ns_over_seed_names_per_s": ratio(ns_rate, seed_rate),
        "seed_budget_s": ref.seconds, "seed_steps": ref.steps,
        "seed_val_acc_at_budget": seed_metrics["accuracy"],
        "ns_seconds_to_seed_acc": t_acc, "speedup_to_same_accuracy": ratio(ref.seconds, t_acc),
        "seed_val_balanced_acc_at_budget": seed_metrics["balanced_accuracy"],
        "ns_seconds_to_seed_balanced_acc": t_bal, "speedup_to_same_balanced_accuracy": ratio(ref.seconds, t_bal),
        "notes": {
            "ns_seconds_to_seed_acc": "training time only: the clock stops for every evaluation; median of "
                                      f"{len(curves)} runs, each evaluated after every step up to 20, then every 5-10",
            "seed_names_per_s": "the seeds' recipe: one name per SGD step, names one-hot encoded up front",
            "ns_names_per_s": f"namestudio's default classifier (batch {cfg.batch_size}), first step left out",
            "seed_val_balanced_acc_at_budget": "the seeds' recipe samples languages uniformly, which favours balanced "
                                               "accuracy over plain accuracy; both targets are reported",
        },
    }


# ---- 2. the hand-written LSTM against nn.LSTM ---------------------------------------------
CHUNK = 8  # batches per turn


def cells_section(ctx: Context) -> dict:
    b, cfg = ctx.budgets, ctx.config()
    with tempfile.TemporaryDirectory(prefix="namestudio-bench-") as tmp:
        trainer = Trainer(cfg, tmp, dataset=ctx.dataset)
        trainer.setup()
    device, lstm, data = trainer.device, trainer.model, trainer.train_data

    def mylstm(step=None):
        model = build_model(cfg.task, "mylstm", len(trainer.vocab), len(trainer.labels), embed=cfg.embed,
                            hidden=cfg.hidden, layers=cfg.layers, bidirectional=cfg.bidirectional,
                            dropout=cfg.dropout).to(device)
        model.load_state_dict(lstm.state_dict())  # same names and layout: the very same weights
        if step is not None:
            model.rnn.step = step
        return model

    contenders = {"lstm": lstm, "mylstm": mylstm()}
    notes = {"mylstm_over_lstm_epoch_time": f"forward+backward over the same batches (batch {cfg.batch_size}, "
                                            f"hidden {cfg.hidden}, bidirectional), median of {b.cell_epochs} epochs"}
    if b.jit_variants:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                contenders["mylstm_scripted"] = mylstm(torch.jit.script(_lstm_step))
            except Exception as e:
                notes["mylstm_scripted_over_lstm_epoch_time"] = f"TorchScript failed: {type(e).__name__}: {e}"
            try:
                contenders["mylstm_compiled"] = mylstm(torch.compile(_lstm_step, dynamic=True))
            except Exception as e:
                notes["mylstm_compiled_over_lstm_epoch_time"] = f"torch.compile failed: {type(e).__name__}: {e}"

    def epoch(e: int):
        idxs = epoch_batches(data.lengths, cfg.batch_size, torch.Generator().manual_seed(cfg.seed * 1000 + e))
        return [data.batch(i, device) for i in idxs[:b.cell_max_batches or None]]

    def forward_backward(model, batches) -> float:
        start = time.perf_counter()
        for batch in batches:
            loss, _ = batch_loss(model, batch, cfg.task, trainer.amp, trainer.class_weights)
            model.zero_grad(set_to_none=True)
            loss.backward()
        sync(device)
        return time.perf_counter() - start

    warm = epoch(b.cell_epochs)[:6]  # one-off costs (allocator, TorchScript profiling, compilation) come first
    warmup_s = {}
    for name, model in list(contenders.items()):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                warmup_s[name] = forward_backward(model, warm)
        except Exception as e:
            notes[f"{name}_over_lstm_epoch_time"] = f"{name} failed: {type(e).__name__}: {str(e)[:200]}"
            del contenders[name]
    names = list(contenders)
    sec = ctx.rep.section("mylstm vs nn.LSTM", b.cell_epochs)
    epoch_times = {n: [] for n in names}
    for e in range(b.cell_epochs):
        batches = epoch(e)
        total = dict.fromkeys(names, 0.0)
        for k, s in enumerate(range(0, len(batches), CHUNK)):
            turn = names[k % len(names):] + names[:k % len(names)]  # everyone goes first in turn
            for n in turn:
                total[n] += forward_backward(contenders[n], batches[s:s + CHUNK])
        for n in names:
            epoch_times[n].append(total[n])
        sec.step(f"epoch {e + 1}: mylstm/lstm {total['mylstm'] / total['lstm']:.2f}")
    ratios = {n: median([t / l for t, l in zip(epoch_times[n], epoch_times["lstm"])]) for n in names}
    sec.finish(f"mylstm/lstm {ratios['mylstm']:.2f}")
    out = {"mylstm_over_lstm_epoch_time": ratios["mylstm"], "lstm_epoch_seconds": median(epoch_times["lstm"]),
           "mylstm_epoch_seconds": median(epoch_times["mylstm"]),
           "mylstm_scripted_over_lstm_epoch_time": ratios.get("mylstm_scripted"),
           "mylstm_compiled_over_lstm_epoch_time": ratios.get("mylstm_compiled"), "notes": notes}
    if "mylstm_compiled" in warmup_s:
        out["mylstm_compile_warmup_seconds"] = warmup_s["mylstm_compiled"]
    if b.cell_max_batches:
        notes["lstm_epoch_seconds"] = f"epochs cut to {b.cell_max_batches} batches"
    return out


# ---- 3 and 4. start-up and the TUI, in child processes --------------------------------------
# A child process measures a fresh start, so the TUI is driven by the small scripts below, run with `python -c`.

PAINT_PROBE = r'''
import importlib, sys
app_module = importlib.import_module("namestudio.tui.app")
app = app_module.NameStudioApp(data=sys.argv[1], checkpoints=sys.argv[2])
show, painted = app._display, []

def first_frame(screen, update):
    show(screen, update)
    if update is not None and not painted:
        painted.append(update.render_segments(app.console))  # the bytes a terminal would be sent
        print("painted", flush=True)
        app.exit()

app._display = first_frame
app.run(headless=True, size=(100, 30))
'''

TRAIN_PROBE = r'''
"""Train with namestudio's defaults, headless through the CLI or inside the running TUI, and print one JSON line:
the names/s of the Trainer's Step events over `seconds` (the first event, with the warm-up, left out) and, in the
TUI, the key-press-to-screen latencies measured while it trains."""
import asyncio, importlib, json, random, statistics, sys, time

mode, data, checkpoints, seconds, presses, threads = sys.argv[1:7]
seconds, presses = float(seconds), int(presses)
train_module = importlib.import_module("namestudio.engine.train")
events = importlib.import_module("namestudio.engine.events")
state = {"first": None, "rates": [], "measured": False, "trainer": None}
OVERRIDES = {"epochs": 1000, "patience": 0}   # run on for as long as it is measured; no effect on speed


class Recording(train_module.Trainer):
    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        forward, state["trainer"] = self.on_event, self

        def on_event(e):
            if isinstance(e, events.Step) and not state["measured"]:
                now = time.perf_counter()
                if state["first"] is None:
                    state["first"] = now
                else:
                    state["rates"].append(e.names_per_s)
                    if now - state["first"] >= seconds:
                        state["measured"] = True
                        if mode != "tui":
                            self.cancel()
            forward(e)
        self.on_event = on_event


train_module.Trainer = Recording


async def wait_until(condition, timeout, app=None):
    start = time.perf_counter()
    while not condition():
        if getattr(app, "_exception", None) is not None:
            raise RuntimeError(f"the app failed: {app._exception!r}")
        if time.perf_counter() - start > timeout:
            raise TimeoutError("the TUI did not get there in time")
        await asyncio.sleep(0.005)


async def tui():
    app_module = importlib.import_module("namestudio.tui.app")
    textual_events = importlib.import_module("textual.events")
    app = app_module.NameStudioApp(data=data, checkpoints=checkpoints)
    app.train_overrides = {**OVERRIDES, **({"threads": int(threads)} if threads != "0" else {})}
    watch = {"done": None, "at": None}   # done(): has the screen caught up with the key?
    show = app._display

    def display(screen, update):
        show(screen, update)
        if update is not None:
            update.render_segments(app.console)  # headless skips this; a terminal would pay it
            if watch["done"] is not None and watch["at"] is None and watch["done"]():
                watch["at"] = time.perf_counter()

    app._display = display
    latencies = state["latencies"] = {"pane": [], "plot": []}

    def press(key):
        """Post the key event as the terminal driver does. (Pilot.press would then also wait for animations and
        for every widget to go idle, seconds while training streams updates; that wait is no part of the figure.)"""
        app.post_message(textual_events.Key(key, key))

    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(lambda: app.dataset is not None, 300, app)
        await pilot.press("2")
        await pilot.press("s")
        await wait_until(lambda: state["measured"], seconds + 300, app)
        train_pane = app.pane("train")
        for k in range(presses):
            # in turn: 3 shows the Evaluate pane, 2 the Train pane again, l redraws its loss plot in log10 (or back);
            # each is timed from the key to the first frame that shows its effect
            key = "32l"[k % 3]
            if key == "l":
                want = not train_pane.log_scale
                kind, done = "plot", (lambda: train_pane.log_scale == want)
            else:
                pane = app.pane("evaluate" if key == "3" else "train")
                kind, done = "pane", (lambda: pane.region.area > 0)
            watch["done"], watch["at"] = done, None
            start = time.perf_counter()
            press(key)
            await wait_until(lambda: watch["at"] is not None, 30, app)
            latencies[kind].append(1000 * (watch["at"] - start))
            watch["done"] = None
            await asyncio.sleep(random.uniform(0.05, 0.25))
        state["trainer"].cancel()
        await app.workers.wait_for_complete()
        await pilot.pause()
        await app.workers.wait_for_complete()   # the runs list it refreshes after a run


if mode == "tui":
    try:
        asyncio.run(tui())
    except Exception:  # an error while the app shuts down must not lose what was measured
        if sum(map(len, state.get("latencies", {}).values())) < presses:
            raise
        import traceback
        traceback.print_exc()
    latencies = state["latencies"]
else:
    cli = importlib.import_module("namestudio.tui.cli")
    argv = ["train", "--data", data, "--checkpoints", checkpoints, "--epochs", str(OVERRIDES["epochs"]),
            "--patience", str(OVERRIDES["patience"])]
    code = cli.main(argv + (["--threads", threads] if threads != "0" else []))
    latencies = {"pane": [], "plot": []}
    if code:
        sys.exit(code)
print(json.dumps({"mode": mode, "names_per_s": statistics.median(state["rates"]) if state["rates"] else None,
                  "windows": len(state["rates"]), "latencies_ms": latencies}))
'''


def namestudio_command() -> list[str]:
    """The installed console script next to this Python, else the PATH's, else the module."""
    near = Path(sys.executable).with_name("namestudio")
    if near.exists():
        return [str(near)]
    found = shutil.which("namestudio")
    return [found] if found else [sys.executable, "-m", "namestudio.tui.cli"]


def _child_env() -> dict:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def time_help() -> float:
    start = time.perf_counter()
    subprocess.run(namestudio_command() + ["--help"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True, env=_child_env())
    return time.perf_counter() - start


def time_first_paint(data: str, checkpoints: str, timeout: float = 120.0) -> float:
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", PAINT_PROBE, data, checkpoints], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=_child_env())
    try:
        line = child.stdout.readline()
        painted = time.perf_counter() - start
        child.wait(timeout=timeout)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    if line.strip() != "painted":
        raise RuntimeError(f"the TUI did not paint: {child.stderr.read().strip()[-300:]}")
    return painted


def startup_section(ctx: Context) -> dict:
    b = ctx.budgets
    sec = ctx.rep.section("start-up", b.help_runs + b.paint_runs)
    helps, paints = [], []
    time_help()  # warm the file cache: the figure is a warm start, as a user's second run is
    with tempfile.TemporaryDirectory(prefix="namestudio-bench-") as tmp:
        for i in range(max(b.help_runs, b.paint_runs)):  # the two take turns
            if i < b.help_runs:
                helps.append(time_help())
                sec.step(f"--help {helps[-1]:.2f} s")
            if i < b.paint_runs:
                paints.append(time_first_paint(ctx.data_src, tmp))
                sec.step(f"first paint {paints[-1]:.2f} s")
    sec.finish()
    return {"cli_help_seconds": median(helps), "tui_first_paint_seconds": median(paints),
            "notes": {"cli_help_seconds": f"`{' '.join(namestudio_command())} --help`, median of {len(helps)}",
                      "tui_first_paint_seconds": f"process start to the first frame (headless, encoded as for a "
                                                 f"terminal), median of {len(paints)}"}}


def train_probe(mode: str, ctx: Context, checkpoints: str, threads: int) -> dict:
    b = ctx.budgets
    presses = b.tui_presses if mode == "tui" else 0
    r = subprocess.run([sys.executable, "-c", TRAIN_PROBE, mode, ctx.data_src, checkpoints, str(b.tui_train_s),
                        str(presses), str(threads)], capture_output=True, text=True, env=_child_env(),
                       timeout=b.tui_train_s + 5 * presses + 600)
    if r.returncode != 0:
        raise RuntimeError(f"{mode} training child failed: {(r.stderr or r.stdout).strip()[-400:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def tui_section(ctx: Context) -> dict:
    b = ctx.budgets
    # both train with the engine's default threads (which leave a core for the UI), or NAMESTUDIO_BENCH_THREADS
    threads = int(os.environ.get("NAMESTUDIO_BENCH_THREADS") or 0)
    sec = ctx.rep.section("TUI vs CLI training", 2 * b.tui_rounds)
    got = {"cli": [], "tui": []}
    latencies = {"pane": [], "plot": []}
    with tempfile.TemporaryDirectory(prefix="namestudio-bench-") as tmp:
        for r in range(b.tui_rounds):
            for mode in (("cli", "tui") if r % 2 == 0 else ("tui", "cli")):
                res = train_probe(mode, ctx, tmp, threads)
                got[mode].append(res["names_per_s"])
                for kind, values in res["latencies_ms"].items():
                    latencies[kind] += values
                sec.step(f"{mode}: {res['names_per_s'] or 0:,.0f} names/s")
    tui, cli = median(got["tui"]), median(got["cli"])
    sec.finish(f"TUI/CLI {ratio(tui, cli) or 0:.2f}")
    return {"tui_over_cli_throughput": ratio(tui, cli), "tui_names_per_s": tui, "cli_names_per_s": cli,
            "tui_key_latency_ms_p95": percentile(latencies["pane"], 95),
            "tui_key_latency_ms_median": median(latencies["pane"]),
            "tui_plot_key_latency_ms_p95": percentile(latencies["plot"], 95),
            "tui_plot_key_latency_ms_median": median(latencies["plot"]),
            "notes": {"tui_over_cli_throughput": f"names/s of the Trainer's step events over {b.tui_train_s:g} s "
                                                 f"of training, medians of {b.tui_rounds} runs each, both with "
                                                 f"{threads or 'the default'} torch thread(s)",
                      "tui_key_latency_ms_p95": f"{len(latencies['pane'])} presses of 3 and 2 (switch pane) while "
                                                "training: from the key to the first frame that shows the pane",
                      "tui_plot_key_latency_ms_p95": f"{len(latencies['plot'])} presses of l (loss plot in log10 or "
                                                     "back) while training"}}


# ---- 5. GPU ---------------------------------------------------------------------------------
def gpu_section(ctx: Context) -> dict:
    """Names/s and epoch time on CUDA, for the classifier and the generator, without and with AMP."""
    b = ctx.budgets
    sec = ctx.rep.section("GPU (CUDA)", 4 * b.gpu_epochs)
    out = {}
    for task, key in (("classify", "lstm"), ("generate", "generator")):
        times = {False: [], True: []}
        trainers = {}
        with tempfile.TemporaryDirectory(prefix="namestudio-bench-") as tmp:
            for amp in (False, True):
                cfg = replace(ctx.config(task=task), device="cuda", amp=amp)
                trainers[amp] = Trainer(cfg, Path(tmp) / str(amp), dataset=ctx.dataset)
                trainers[amp].setup()
        for e in range(b.gpu_epochs + 1):  # epoch 0 warms up (cuDNN plans, allocator)
            for amp in ((False, True) if e % 2 == 0 else (True, False)):
                tr = trainers[amp]
                idxs = tr.epoch_batches(e)
                tr.model.train()
                sync(tr.device)
                start = time.perf_counter()
                for idx in idxs:
                    tr.train_step(idx)
                sync(tr.device)
                if e:
                    times[amp].append(time.perf_counter() - start)
                    sec.step(f"{key} amp={amp}: {times[amp][-1]:.2f} s/epoch")
        n = len(trainers[False].train_data)
        for amp, suffix in ((False, ""), (True, "_amp")):
            epoch_s = median(times[amp])
            out[f"gpu_{key}{suffix}_epoch_seconds"] = epoch_s
            out[f"gpu_{key}{suffix}_names_per_s"] = ratio(n, epoch_s)
    sec.finish()
    out["notes"] = {"gpu_lstm_names_per_s": "a whole training epoch (Trainer's train step: forward, backward, "
                                            "clipping, AdamW), median of epochs after one warm-up epoch"}
    return out
