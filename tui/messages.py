"""Every message of the TUI, in one module.

Background workers (the run follower, data loading, downloading, start-up) post these
with ``post_message``, which is thread-safe and does not wait for the UI. The
payloads are small: a batch of steps carries a few numbers each; only evaluations
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
    """The run folders under the checkpoints folder (rows of engine.experiment.list_all_runs, each with its
    live ``state`` and progress ``step``/``total_steps``)."""
    runs: list[dict]


# ---- runs, followed live (tui/follow.py) --------------------------------------------
@message
class RunEvents(Message):
    """The engine's own events (engine/events.py: Started, Step, Eval, Status, Done, Failed) of one run,
    re-created from its folder by the follower: everything new since its last look, in order.
    ``attach``: the first batch after attaching (it starts with Started, then the logs already written)."""
    run_dir: str
    events: list
    attach: bool = False


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
    """Samples from the Generate pane's worker, checked by ``checked_by`` (the classifier chosen when the worker
    started, or None)."""
    samples: list[dict]
    agreement: float | None
    error: str = ""
    checked_by: object = None
    start: str = ""                           # the start the samples were drawn from, as typed
    notes: tuple[str, ...] | None = None      # how it was read (LoadedRun.read_start); None: the same samples


@message
class Predicted(Message):
    """The Classify pane's prediction for ``name`` (top ``k``) by ``run``, made in a worker: ``results`` and the
    letters' ``explanation``, or ``error``."""
    run: object
    name: str
    k: int
    results: list
    explanation: object = None
    error: str = ""


@message
class RunLoaded(Message):
    """A saved run a pane asked for (``slot``: "run" or "classifier"), loaded in a worker: ``run`` (an
    engine.infer.LoadedRun), or None with ``error`` (one line) and its ``severity``."""
    slot: str
    path: str
    quiet: bool
    run: object = None
    error: str = ""
    severity: str = "error"


# ---- model quality (issue 9) ----------------------------------------------------------
@message
class CalibrationReady(Message):
    """The Evaluate pane's reliability data for a run's own test split, computed in a worker: ``metrics`` is
    engine.calibration.evaluate_pairs on the test split (reliability bins, ECE before/after) and ``calibration``
    the run's temperature with its validation ECE (engine.calibration.run_calibration)."""
    path: str
    metrics: dict
    calibration: dict
    error: str = ""


# ---- comparison (Compare pane) -------------------------------------------------------
@message
class CompareLoaded(Message):
    """What the Compare pane shows, read by its worker: the experiments to choose from (None: not listed this
    time) and the shown runs' data (None: unchanged since the last look)."""
    source: tuple | None
    experiments: list | None
    data: dict | None
    error: str = ""


@message
class SourceEvaluated(Message):
    """A run evaluated on another labelled source (engine.calibration.evaluate_pairs), for the Evaluate pane."""
    path: str
    source: str
    exclude_train: bool
    metrics: dict
    labels: list[str]
    error: str = ""


@message
class QualityProgress(Message):
    """The Generate pane's temperature table: the rows done so far (engine.infer.sample_quality), of ``total``."""
    key: tuple
    rows: list[dict]
    total: int
    error: str = ""
    done: bool = False
    notes: tuple = ()        # how the start was read ("read Ω as O"), the words of `sample --start`


@message
class CompareComputed(Message):
    """The Top-3 table ("topk") or the samples table ("samples") of the Compare pane, computed in a worker
    (it loads the runs' weights)."""
    kind: str
    key: tuple
    result: object
    error: str = ""
