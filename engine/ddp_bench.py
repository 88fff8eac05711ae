"""Names per second with 1 and with N CPU ranks: the ranks part of `namestudio bench`'s scale section.

Each measurement is a real `namestudio train --nproc N` (torchrun's agent and N ranks over gloo) into a
throw-away run folder, stopped by --max-steps inside the first epoch so that the only evaluation comes after
the last logged window. The figure is training throughput: names per second over the logged windows after
the first (start-up, first-batch allocations and gloo's first connections are left out), read from the run's
steps.jsonl as the TUI would.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import runfolder as rf

CLI_MODULE = "namestudio.tui.cli"   # started by name: the engine does not import the TUI


def measure_ranks(nprocs=(1, 2), data: str | None = None, steps: int = 120, log_every: int = 20,
                  task: str = "classify", batch_size: int = 128, threads: int = 1, extra: list[str] | None = None,
                  timeout: float = 600) -> list[dict]:
    """For each N in ``nprocs``: {"nproc", "names_per_s" (median of the windows after the first),
    "windows", "steps", "wall_s" (the whole command, start-up and test included), "command"}."""
    out = []
    for n in nprocs:
        with tempfile.TemporaryDirectory(prefix="namestudio-ddp-bench-") as tmp:
            run_dir = Path(tmp) / "run"
            argv = [sys.executable, "-m", CLI_MODULE, "train", "--task", task, "--device", "cpu",
                    "--threads", str(threads), "--max-steps", str(steps), "--log-every", str(log_every),
                    "--batch-size", str(batch_size), "--patience", "0", "--run-dir", str(run_dir),
                    "--checkpoints", tmp, *(["--data", data] if data else []), *(extra or [])]
            if n != 1:
                argv += ["--nproc", str(n)]
            start = time.perf_counter()
            r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
            wall = time.perf_counter() - start
            if r.returncode != 0:
                last = (r.stderr.strip().splitlines() or ["no output"])[-1]
                raise RuntimeError(f"{n} rank(s): train failed: {last}")
            windows = [s["names_per_s"] for s in rf.read_jsonl(run_dir / rf.STEPS)][1:]
            if not windows:
                raise RuntimeError(f"{n} rank(s): too few logged windows; raise steps")
            out.append({"nproc": n, "names_per_s": statistics.median(windows), "windows": len(windows),
                        "steps": steps, "wall_s": round(wall, 2),
                        "command": " ".join(["namestudio", *argv[3:]]).replace(tmp, "TMP")})
    return out


if __name__ == "__main__":   # python -m namestudio.engine.ddp_bench [DATA]
    import json
    for row in measure_ranks(data=sys.argv[1] if len(sys.argv) > 1 else None):
        print(json.dumps(row))
