"""Start-up in fresh processes: `namestudio --help`, and the TUI's first frame (encoded as for a terminal)."""
from __future__ import annotations

import subprocess
import tempfile
import time

from . import driver
from .common import Context, child_env, median, namestudio_command, probe_command


def time_help() -> float:
    start = time.perf_counter()
    subprocess.run(namestudio_command() + ["--help"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True, env=child_env())
    return time.perf_counter() - start


def time_first_paint(data: str, checkpoints: str, timeout: float = 120.0) -> float:
    """Seconds from starting paint_probe.py to its first frame."""
    start = time.perf_counter()
    child = subprocess.Popen(probe_command("paint_probe") + [data, checkpoints], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=child_env(TEXTUAL_DRIVER=driver.SPEC))
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
                      "tui_first_paint_seconds": f"process start to the first frame written (encoded as for a "
                                                 f"terminal), median of {len(paints)}"}}
