"""Every message of the TUI, in one module.

Background workers (training, data loading, downloading, start-up) post these
with ``post_message``, which is thread-safe and does not wait for the UI. The
payloads are small: training steps carry a few numbers; only evaluations
carry the confusion matrix.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from textual.message import Message

message = dataclass(eq=False)  # Textual initialises dataclass messages; eq=False keeps them hashable


# ---- data ---------------------------------------------------------------------------
@message
class DatasetLoaded(Message):
    """A data source was loaded, cleaned and summarised."""
    dataset: object          # namestudio.data.Dataset
    summary: dict
    why: str                 # why this source is active (shown to the user)


@message
class DatasetFailed(Message):
    source: str
    message: str             # one line


@message
class DownloadProgress(Message):
    done: int
    total: int | None


@message
class DownloadDone(Message):
    ok: bool
    message: str = ""


# ---- start-up -----------------------------------------------------------------------
@message
class DevicesFound(Message):
    devices: list[str]       # e.g. ["cpu", "cuda"]


@message
class RunsListed(Message):
    """The run folders under the checkpoints folder (rows of engine.checkpoint.list_runs)."""
    runs: list[dict]


# ---- training -----------------------------------------------------------------------
@message
class TrainingStarted(Message):
    run_dir: str
    task: str
    model: str
    labels: list[str]
    total_steps: int
    steps_per_epoch: int
    n_train: int
    device: str
    note: str = ""


@message
class TrainingStep(Message):
    step: int
    epoch: float
    loss: float
    names_per_s: float
    elapsed: float
    eta: float
    total_steps: int


@message
class TrainingEval(Message):
    step: int
    epoch: float
    train_loss: float
    metrics: dict            # validation metrics; classifiers include the confusion matrix
    best: bool
    task: str
    labels: list[str]


@message
class TrainingDone(Message):
    run_dir: str
    task: str
    test_metrics: dict
    train_seconds: float
    reason: str              # finished | early_stop | cancelled | max_steps
    best_step: int = 0


@message
class TrainingFailed(Message):
    message: str
    run_dir: str | None = None


@message
class TrainingPaused(Message):
    paused: bool


# ---- runs ---------------------------------------------------------------------------
@message
class OpenRun(Message):
    """Load a run into a pane ("evaluate", "classify" or "generate") and show that pane."""
    path: str
    target: str


@message
class RunMetrics(Message):
    """Metrics of a saved run, computed in a worker for the Evaluate pane."""
    path: str
    metrics: dict
    labels: list[str]
    split: str
    error: str = ""


@message
class Notice(Message):
    """A one-line message for the user (errors included)."""
    text: str
    severity: str = "information"
    extra: dict = field(default_factory=dict)


@message
class SamplesReady(Message):
    """Samples from the Generate pane's worker, checked by the classifier when one is chosen."""
    samples: list[dict]
    agreement: float | None
    error: str = ""
