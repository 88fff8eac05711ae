"""Start a run as its own OS process: `namestudio train` in a new POSIX session, at a lower CPU priority.

The child outlives whoever launched it (the TUI, its quit, a hang-up); everything about it is then read
from its run folder (engine/runfolder.py). The engine never imports the TUI: the CLI is started by module name.
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from . import runfolder as rf
from .config import ConfigError, TrainConfig, cfg_to_argv

CLI_MODULE = "namestudio.tui.cli"


@dataclass
class Launched:
    pid: int
    run_dir: Path
    popen: subprocess.Popen


def spawn(argv: list[str], log_path: Path, say_command: bool = True) -> subprocess.Popen:
    """Start ``argv`` in its own session (it outlives its launcher), stdin from /dev/null, stdout and stderr
    appended to ``log_path`` (a run's train.log, an experiment's compare.log), after a line with the command."""
    try:
        log = open(log_path, "ab")
    except OSError as e:
        raise rf.RunFolderError(f"could not write {log_path}: {e.strerror or e}") from None
    with log:
        if say_command:
            log.write(("$ " + " ".join(argv[1:]) + "\n").encode())
            log.flush()
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def train_argv(cfg: TrainConfig, run_dir: Path, nice: int = 10, nproc: int = 1) -> list[str]:
    """The exact command line of a launched run (``nproc`` > 1: that many ranks through torchrun)."""
    return [sys.executable, "-m", CLI_MODULE, "train", *cfg_to_argv(cfg), "--run-dir", str(run_dir),
            "--nice", str(int(nice))] + (["--nproc", str(int(nproc))] if nproc != 1 else [])


def launch_train(cfg: TrainConfig, checkpoints: str | Path = "checkpoints", nice: int = 10,
                 run_dir: str | Path | None = None, nproc: int = 1) -> Launched:
    """Create the run folder, start `namestudio train ... --run-dir DIR --nice N` in its own session
    (stdin from /dev/null, stdout and stderr to DIR/train.log) and return at once.

    The run folder gets a "starting" status with the child's pid straight away, so a follower sees the run
    before the child has imported torch; the child then takes the run lock and rewrites its status.
    With ``nproc`` > 1 the child is torchrun's agent and rank 0 (another pid) takes over status.json; a
    SIGTERM to the child reaches every rank.
    """
    cfg.validate()
    if nproc < 1:
        raise ConfigError(f"--nproc must be at least 1 (got {nproc})")
    run_dir = rf.prepare_run_dir(Path(run_dir)) if run_dir else rf.new_run_dir(checkpoints, cfg.task, cfg.model)
    popen = spawn(train_argv(cfg, run_dir, nice, nproc), run_dir / rf.LOG)
    if not (run_dir / rf.STATUS).exists():
        import time
        rf.write_status(run_dir, rf.RunStatus(state="starting", pid=popen.pid, host=rf.HOST, started=time.time(),
                                              heartbeat=time.time(), total_steps=0))
    return Launched(pid=popen.pid, run_dir=run_dir, popen=popen)


def resume_argv(run_dir: Path, nice: int = 10) -> list[str]:
    """The command line of a launched resume: `namestudio train --resume DIR --nice N`."""
    return [sys.executable, "-m", CLI_MODULE, "train", "--resume", str(run_dir), "--nice", str(int(nice))]


def launch_resume(run_dir: str | Path, nice: int = 10, check: bool = True) -> Launched:
    """Start `namestudio train --resume DIR` in its own session, its output appended to DIR/train.log, and return
    at once: a stopped, stale or failed run trains on from its last resume point. With ``check``, RunFolderError
    (one line) for a run that is live, done, or has no resume point."""
    run_dir = Path(run_dir)
    if check:
        st = rf.read_status(run_dir)
        if st.live:
            raise rf.RunFolderError(f"run {run_dir.name} is {st.state} already (pid {st.pid})")
        if rf.nothing_left(run_dir):    # an early-stopped run is done too, but has steps left: it trains on
            raise rf.RunFolderError(f"run {run_dir.name} is done: nothing to resume "
                                    f"(`namestudio train --resume {rf.as_arg(run_dir)} --epochs N` trains it further)")
        if rf.resume_dir(run_dir) is None:
            raise rf.RunFolderError(f"run {run_dir.name} has no resume point (it stopped before its first save)")
    popen = spawn(resume_argv(run_dir, nice), run_dir / rf.LOG)
    if check:   # live at once, with the child's pid (as launch_train does): a follower must not read the old end
        import time
        old = rf.read_status(run_dir)
        step, epoch = rf.resume_progress(run_dir, old) or (old.step, old.epoch)   # where it goes on from
        rf.write_status(run_dir, rf.RunStatus(state="starting", pid=popen.pid, host=rf.HOST, started=time.time(),
                                              heartbeat=time.time(), step=step, total_steps=old.total_steps,
                                              epoch=old.epoch if epoch is None else epoch, device=old.device))
    return Launched(pid=popen.pid, run_dir=run_dir, popen=popen)


def is_alive(pid: int | None) -> bool:
    """Whether the process runs (on this host); a finished child not yet reaped counts as dead."""
    return rf.pid_alive(pid)
