"""The TUI while it trains: training names/s inside the running app against headless CLI training, and
key-press-to-screen latency meanwhile (pane switches and a plot redraw)."""
from __future__ import annotations

import json
import os
import subprocess
import tempfile

from .common import Context, child_env, median, percentile, probe_command, ratio


def train_probe(mode: str, ctx: Context, checkpoints: str, threads: int) -> dict:
    b = ctx.budgets
    presses = b.tui_presses if mode == "tui" else 0
    r = subprocess.run(probe_command("train_probe") + [mode, ctx.data_src, checkpoints, str(b.tui_train_s),
                        str(presses), str(threads)], capture_output=True, text=True, env=child_env(),
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
