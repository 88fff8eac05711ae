"""What the training loop reports. Plain data: the CLI printer, the run-folder writer and the TUI's
follower all consume these (the follower re-creates Step and Eval from the run folder's logs)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Started:
    run_dir: str
    config: dict
    labels: list[str]
    total_steps: int
    steps_per_epoch: int
    n_train: int
    device: str
    note: str = ""            # e.g. a device fallback that the user should hear about
    start_step: int = 0       # > 0 when resuming
    data_source: str = ""     # the data it trains on, as config.json records it ("builtin", "pytorch-names", a path)


@dataclass
class Step:
    step: int
    epoch: float              # fractional epoch, e.g. 2.5
    loss: float               # mean training loss since the last Step event
    names_per_s: float
    elapsed: float
    eta: float                # seconds left at the current pace
    total_steps: int
    lr: float | None = None   # the learning rate at this step


@dataclass
class Eval:
    step: int
    epoch: float
    train_loss: float
    metrics: dict             # validation metrics; classifiers add "confusion" (counts) and "per_class"
    best: bool                # this evaluation improved the monitored metric
    elapsed: float


@dataclass
class Status:
    state: str                # "paused" | "running" | "stopping": a change the user asked for


@dataclass
class Done:
    run_dir: str
    test_metrics: dict
    train_seconds: float
    reason: str               # "finished" | "early_stop" | "stopped" | "max_steps" (runfolder.REASONS)
    best_step: int = 0
    steps: int = 0            # the step the run ended at
    device: str = ""
    untested: str = ""        # why the weights were not tested (test_metrics is then {}): runfolder.UNTRAINED, NOT_TESTED


@dataclass
class Failed:
    message: str              # one line
    run_dir: str | None = None
    nothing_to_do: bool = False   # a resume of a done run with no step left: nothing was changed (not a failure)
    stale: bool = False           # no end of its own: its trainer is gone (killed), the run "stale" (resumable)
    resume_step: int | None = None        # a stale run's resume point: where `train --resume` continues it
    resume_epoch: float | None = None     # (runfolder.resume_progress), not its last logged step


Event = Started | Step | Eval | Status | Done | Failed
