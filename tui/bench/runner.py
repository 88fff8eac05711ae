"""The `namestudio bench` command: run the sections in turn, collect one flat dict of figures, print a summary
and (with ``--json``) the dict as the last line of stdout."""
from __future__ import annotations

import json
import os
import sys
import time

import torch

from namestudio.data import default_source, load_dataset
from namestudio.engine.config import TrainConfig, default_threads
from namestudio.engine.device import available_devices, resolve_device

from . import cells, gpu, quality, scale, startup, tui, tutorial
from .common import (PRESETS, SECTION_KEYS, SECTIONS, SKIP_KEYS, TARGETS, BenchError, Context, Reporter, loadavg,
                     round_sig)

RUNS = {"tutorial": tutorial.tutorial_section, "mylstm": cells.cells_section, "startup": startup.startup_section,
        "tui": tui.tui_section, "scale": scale.scale_section, "quality": quality.quality_section,
        "gpu": gpu.gpu_section}
assert tuple(RUNS) == SECTIONS


def run_bench(args) -> int:
    """The `namestudio bench` command."""
    skip = {s.strip() for s in (getattr(args, "skip", "") or "").split(",") if s.strip()}
    unknown = skip - set(SECTIONS)
    if unknown:
        raise BenchError(f"unknown section(s) to skip: {', '.join(sorted(unknown))}; "
                         f"choose from {', '.join(SECTIONS)}")
    device, _ = resolve_device(getattr(args, "device", None) or "cpu")  # an absent device: one-line error
    preset = os.environ.get("NAMESTUDIO_BENCH_PRESET") or ("quick" if args.quick else "full")
    if preset not in PRESETS:
        raise BenchError(f"NAMESTUDIO_BENCH_PRESET={preset!r}; choose one of {', '.join(PRESETS)}")
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
        "cpu_count": os.cpu_count(), "torch": torch.__version__, "load_avg_start": loadavg(),
    }
    notes, skipped, section_seconds = {}, {}, {}
    for name, fn in RUNS.items():
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
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            skipped[name] = f"failed: {type(e).__name__}: {first}"
            ctx.rep.line(f"[red]{name}: {skipped[name]}[/]")
            continue
        notes.update(got.pop("notes", {}))
        out.update(got)
        section_seconds[name] = round(time.perf_counter() - section_start, 1)
    for keys in SECTION_KEYS.values():
        for k in keys:
            out.setdefault(k, None)
    for k in SKIP_KEYS:
        out.setdefault(k, None)
    out = {k: round_sig(v) for k, v in out.items()}
    out["targets"] = {k: {"target": f"{op} {t:g}", "met": None if out.get(k) is None else
                          (out[k] >= t if op == ">=" else out[k] <= t)} for k, (op, t) in TARGETS.items()}
    out["notes"] = notes
    out["skipped"] = skipped
    out["load_avg_end"] = loadavg()
    out["seconds"] = round(time.time() - started, 1)
    out["section_seconds"] = section_seconds
    return out


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
            t.add_row(k, "—" if v is None or isinstance(v, str) else f"{v:,.4g}", mark)
    rep.console.print(t)
    for name, why in results["skipped"].items():
        rep.console.print(f"[dim]{name}: {why}[/]")
    for k in SKIP_KEYS:
        if results.get(k):
            rep.console.print(f"[dim]{k}: {results[k]}[/]")
