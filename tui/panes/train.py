"""Train pane: the form, start/pause/stop, progress, live plots and a short log of evaluations.

The pane holds no training logic and never imports the trainer. Start launches `namestudio train` as a
child process (engine/process.py) with a config built from the form; pause, resume and stop write the
run's control file (engine/runfolder.py). What it shows comes from the ATTACHED run's folder, read by the
follower (tui/follow.py) as the engine's own events: the run this TUI started, else the newest live run,
else the one chosen (a cycles live runs; w on the Runs pane attaches the run under the cursor).
"""
from __future__ import annotations

import dataclasses
import math
import os
import textwrap

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Label, Log, Select, Static
from textual_plotext import PlotextPlot

from namestudio.engine import runfolder as rf
from namestudio.engine.config import TASKS, TrainConfig, default_threads, option
from namestudio.engine.events import Done, Eval, Failed, Started, Status, Step

from .. import keys
from ..plots import SMOOTHING, X_AXES, X_LABELS, Smoother, background, bucket_means, colour, faint, log10_or_nan, \
    next_in
from ..render import Clipped, Parts, Squeezed
from ..widgets import Choice, INTEGER, NUMBER, Field, Flowing, Pane, ProgressLine, duration, short_path

MODEL_NAMES = {"lstm": "LSTM (nn.LSTM)", "gru": "GRU", "rnn": "RNN (tanh)", "mylstm": "hand-written LSTM",
               "ngram": "character n-grams", "hybrid": "n-grams + LSTM"}
FORM = {"f-epochs": "epochs", "f-batch": "batch_size", "f-lr": "lr", "f-hidden": "hidden", "f-layers": "layers",
        "f-dropout": "dropout", "f-members": "members", "f-lm": "lm_order", "f-seed": "seed"}   # form field -> TrainConfig field
DEFAULTS = {task: {name: option(name, task)["default"] for name in ("task", "model", "device", *FORM.values())}
            for task in TASKS}                         # the engine's defaults differ by task
LABELS = {"f-epochs": "Epochs", "f-batch": "Batch", "f-lr": "LR", "f-hidden": "Hidden", "f-layers": "Layers",
          "f-dropout": "Dropout", "f-members": "Members", "f-lm": "N-gram", "f-seed": "Seed"}
REDRAW_EVERY = 0.25          # seconds: plots redraw at most ~4 times a second
LIVE = ("starting", "running", "paused", "stopping")


def reason_words(reason: str | None) -> str:
    """Why the run ended, in the words of every face (runfolder.reason_words), with the cause of an early stop."""
    return rf.reason_words(reason, why=True) if reason else "ended"


def ui_threads() -> int:
    """Torch threads for a run started here: the engine's default (1 on a small machine)."""
    return default_threads()


def model_choices(task: str | None = None) -> list[tuple[str, str]]:
    return [(MODEL_NAMES.get(m, m), m) for m in option("model", task)["choices"]]


class TrainPane(Pane):
    pane_id = "train"
    BINDINGS = keys.TRAIN

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.devices: list[str] = []
        self.run_dir: str | None = None      # the attached run's folder
        self.state: str | None = None        # its state: starting running paused stopping done failed ...
        self.train_task = "classify"
        self.model = ""
        self.epochs = 0
        self.total_steps = 0
        self.log_scale = False
        self.x_axis = "epoch"            # the plots' x: epoch, step or elapsed (training seconds); key t
        self.smoothing = 0.0             # debiased EMA weight of the plotted lines (engine/smoothing.py); key m
        self._smoother = Smoother()       # smooths only the points added since the last frame
        self.plotted: dict[str, list[tuple[str, list[float], list[float]]]] = {}   # what the plots last drew
        self.last_step: Step | None = None
        self.start_step = 0                  # the step its weights were at when this attempt began (Started)
        self.ended: Done | Failed | None = None
        self._dirty = False          # redraw everything at the next tick
        self._dirty_steps = False    # redraw the progress and the loss plot at the next tick
        self._pending_log: list[str] = []
        self.reset_history()

    @property
    def running(self) -> bool:
        """The attached run is live (its trainer is at work)."""
        return self.state in LIVE

    @property
    def paused(self) -> bool:
        return self.state == "paused"

    def reset_history(self) -> None:
        self.history: dict[str, list[float]] = {
            "step_epoch": [], "step_loss": [], "step_step": [], "step_elapsed": [],     # from Step events
            "eval_epoch": [], "val_loss": [], "val_metric": [], "eval_step": [], "eval_elapsed": [],   # Eval
        }

    # ---- layout -------------------------------------------------------------------
    def compose_content(self) -> ComposeResult:
        d = DEFAULTS[TASKS[0]]
        with Horizontal(id="train-body"):
            with Vertical(id="train-form"):
                yield from self._row("Task", Choice([(t, t) for t in option("task")["choices"]], value=d["task"],
                                                    allow_blank=False, compact=True, id="f-task"))
                yield from self._row("Model", Choice(model_choices(d["task"]), value=d["model"], allow_blank=False,
                                                     compact=True, id="f-model"))
                yield from self._row("Device", Choice([(d["device"], d["device"])], value=d["device"],
                                                      allow_blank=False, compact=True, id="f-device"))
                for fid, name in FORM.items():
                    accept = INTEGER if option(name)["kind"] == "int" else NUMBER
                    yield from self._row(LABELS[fid], Field(str(d[name]), accept=accept, id=fid,
                                                            tooltip=f"{option(name)['flag']}: {option(name)['help']}"))
                with Horizontal(id="train-buttons"):
                    yield Button("Start", id="b-start", compact=True, variant="success", tooltip="s: start training")
                    yield Button("Pause", id="b-pause", compact=True, tooltip="p: pause or resume")
                    yield Button("Stop", id="b-stop", compact=True, variant="error", tooltip="x: stop, keep the best")
            with Vertical(id="train-main"):
                yield Flowing("Ready: press s to train on the active data source.", id="train-status")
                yield ProgressLine(id="train-progress")
                yield RateLine(id="train-rate")
                with Horizontal(id="train-plots"):
                    yield PlotextPlot(id="loss-plot")
                    yield PlotextPlot(id="metric-plot")
                yield WrappedLog(id="eval-log", max_lines=200)

    @staticmethod
    def _row(label: str, field) -> ComposeResult:
        with Horizontal(classes="form-row"):
            yield Label(label, classes="field-label")
            yield field

    def on_mount(self) -> None:
        self.set_interval(REDRAW_EVERY, self._redraw_if_dirty)

    def on_built(self) -> None:
        log = self.query_one("#eval-log", WrappedLog)
        for line in self._pending_log:
            log.add(line)
        self._pending_log = []
        if getattr(self, "_status_text", None):
            self._status(self._status_text)
        if self.last_step is not None:
            self._draw_progress()
        self._draw_plots()
        self._update_buttons()
        if self.devices:
            self.set_devices(self.devices)

    def set_devices(self, devices: list[str]) -> None:
        """Offer only the devices that exist here (after the start-up worker has asked torch)."""
        self.devices = devices
        if not self.built:
            return
        select = self.query_one("#f-device", Select)
        current = select.value
        choices = [d for d in option("device")["choices"] if d == "auto" or d in devices]
        select.set_options([(d, d) for d in choices])
        select.value = current if current in choices else choices[0]

    @on(Select.Changed, "#f-task")
    def _task_changed(self, event: Select.Changed) -> None:
        new = DEFAULTS.get(str(event.value))
        if new is None:
            return
        for fid, name in FORM.items():     # a field left at another task's default takes this task's default
            field = self.query_one(f"#{fid}", Field)
            if any(field.value.strip() == str(d[name]) for d in DEFAULTS.values()):
                field.value = str(new[name])
        model = self.query_one("#f-model", Select)
        choices = model_choices(str(event.value))
        keep = model.value if model.value in [v for _, v in choices] else new["model"]
        model.set_options(choices)
        model.value = keep
        if not self.running and not self.history["eval_epoch"]:
            self.train_task = str(event.value)      # the metric plot's title follows the task
            self._dirty = True

    # ---- the form -----------------------------------------------------------------
    def build_config(self, dataset=None) -> TrainConfig:
        """A TrainConfig from the form; ValueError (ConfigError) names the field at fault."""
        def num(fid: str, kind, label: str):
            text = self.query_one(f"#{fid}", Field).value.strip()
            try:
                return kind(text)
            except ValueError:
                raise ValueError(f"{label}: {text!r} is not a valid {'whole number' if kind is int else 'number'}") from None

        task = str(self.query_one("#f-task", Select).value)
        values = {name: num(fid, int if option(name)["kind"] == "int" else float, LABELS[fid])
                  for fid, name in FORM.items()}
        cfg = TrainConfig(task=task, model=str(self.query_one("#f-model", Select).value),
                          device=str(self.query_one("#f-device", Select).value), threads=ui_threads(), **values)
        if dataset is not None:
            cfg.data = dataset.source          # the child loads the data itself, from the same source
            n_train = len(dataset.pairs) * (1 - cfg.val_fraction - cfg.test_fraction)
            steps_per_epoch = max(1, math.ceil(n_train / max(1, cfg.batch_size)))
            cfg.log_every = max(1, min(20, steps_per_epoch // 20))   # about 20 points an epoch, at least
        for key, value in getattr(self.app, "train_overrides", {}).items():
            setattr(cfg, key, value)
        try:
            cfg.validate()
        except ValueError as e:       # the engine names the flag: put the field's label in front of it
            said = str(e)
            for fid, name in FORM.items():
                if said.startswith(option(name)["flag"] + " "):
                    raise type(e)(f"{LABELS[fid]}: {said}") from None
            raise
        return cfg

    # ---- actions ------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "start":
            return True           # while a run started here trains, s says why it starts nothing (issue 12)
        if action in ("pause", "stop"):
            return True if self.state in ("running", "paused") else None
        return True

    def action_start(self) -> None:
        if self.app.own_live_runs():
            self.app.notify("A run started here is still training: one run at a time from this window. "
                            "Stop it first (x), or wait for it to end.", title="Not started", severity="warning")
            return
        dataset = getattr(self.app, "dataset", None)
        if dataset is None:
            self.app.notify("No data loaded yet: pick a source on the Data pane (1).", severity="warning")
            return
        try:
            cfg = self.build_config(dataset)
        except ValueError as e:
            self.app.notify(str(e), title="Cannot start", severity="error", markup=False)
            return
        from namestudio.data.errors import NamestudioError
        from namestudio.engine.process import launch_train
        from namestudio.engine.train import SMALL_DATA, check_labels, split_to_train

        try:   # what train refuses of this data (one language for a classifier, too few names to split), said
            # now: a process started, failed and left a failed run folder. The split only where it can be too
            # small (1 ms; a large source's would hold up the UI: 1.5 s for 350k names)
            split_to_train(dataset, cfg) if len(dataset.pairs) < SMALL_DATA else check_labels(dataset, cfg)
        except NamestudioError as e:
            self.app.notify(str(e), title="Cannot start", severity="error", markup=False)
            return
        try:
            launched = launch_train(cfg, self.app.checkpoints, nice=10)
        except (NamestudioError, OSError) as e:
            self.app.notify(str(e).splitlines()[0] if str(e) else type(e).__name__, title="Cannot start",
                            severity="error", markup=False)
            return
        self.app.run_launched(launched)
        self.attached(str(launched.run_dir))
        self.state = "starting"
        self._status(Text(f"Starting: {cfg.task} · {cfg.model} · {short_path(dataset.source)} · "
                          f"{cfg.threads} torch thread{'s' if cfg.threads > 1 else ''} · a process of its own "
                          f"(pid {launched.pid}, nice 10) …"))
        self._update_buttons()
        self.focus_anchor()          # out of the form: digits switch panes again

    def _control(self, command: str) -> bool:
        from namestudio.engine.runfolder import RunFolderError, send_control

        if self.run_dir is None:
            return False
        try:
            send_control(self.run_dir, command)
        except RunFolderError as e:
            self.app.notify(str(e), title=f"Cannot {command}", severity="error", markup=False)
            return False
        return True

    def action_pause(self) -> None:
        if self.state not in ("running", "paused"):
            return
        command = "resume" if self.paused else "pause"
        if self._control(command):
            self._status(f"Asked the run to {command} (at its next batch) …")

    def action_stop(self) -> None:
        if self.state in ("running", "paused") and self._control("stop"):
            self._status(self._stopping_words())

    def action_attach_next(self) -> None:
        """Attach to the next live run (in the order of the Runs pane: newest first)."""
        live = [r["path"] for r in self.app.follower.live_runs()]
        if not live:
            self.app.notify("No live run to attach to: start one (s), or `namestudio train` anywhere.",
                            severity="warning")
            return
        current = str(self.run_dir) if self.run_dir else None
        nxt = live[(live.index(current) + 1) % len(live)] if current in live else live[0]
        self.app.attach_run(nxt)

    def action_log_scale(self) -> None:
        self.log_scale = not self.log_scale
        self._dirty = True
        self._redraw_if_dirty()

    def action_smoothing(self) -> None:
        self.smoothing = next_in(SMOOTHING, self.smoothing)
        self._dirty = True
        self._redraw_if_dirty()

    def action_x_axis(self) -> None:
        self.x_axis = next_in(X_AXES, self.x_axis)
        self._dirty = True
        self._redraw_if_dirty()

    @on(Button.Pressed, "#b-start")
    def _start_pressed(self) -> None:
        self.action_start()

    @on(Button.Pressed, "#b-pause")
    def _pause_pressed(self) -> None:
        self.action_pause()

    @on(Button.Pressed, "#b-stop")
    def _stop_pressed(self) -> None:
        self.action_stop()

    # ---- the attached run's events (from the follower) ------------------------------
    def attached(self, run_dir: str) -> None:
        """A new run is shown: forget the last one's history."""
        if run_dir == self.run_dir:
            return
        self.run_dir, self.state, self.ended, self.last_step = run_dir, None, None, None
        self.start_step = 0
        self.reset_history()
        self.total_steps = 0
        self._pending_log = []
        self._dirty = True
        if self.built:
            self.query_one("#eval-log", WrappedLog).clear()
            self.query_one("#train-progress", ProgressLine).set(0, 0)
            self.query_one("#train-rate", RateLine).show(None)
            self._status(Text(f"Attached to {os_name(run_dir)} …"))

    def on_events(self, run_dir: str, events: list) -> None:
        """Record the events; the 4 Hz timer draws (a tiny dataset can log a hundred steps a second)."""
        if run_dir != self.run_dir:
            self.attached(run_dir)
        elif events and isinstance(events[0], Started) and (self.ended is not None or self.history["step_loss"]):
            self.run_dir = None       # followed afresh (trained on after its end, or its logs cut back): read again
            self.attached(run_dir)
        h = self.history
        for e in events:
            if isinstance(e, Step):
                h["step_epoch"].append(e.epoch)
                h["step_loss"].append(e.loss)
                h["step_step"].append(e.step)
                h["step_elapsed"].append(e.elapsed)
                self.last_step = e
                self.total_steps = e.total_steps or self.total_steps
                self._dirty_steps = True
            elif isinstance(e, Eval):
                self._eval(e)
            elif isinstance(e, Started):
                self._started(e)
            elif isinstance(e, Status):
                self._state(e.state)
            elif isinstance(e, Done):
                self._done(e)
            elif isinstance(e, Failed):
                self._failed(e)
        self.app.set_train_status(self.status_text())

    def _started(self, e: Started) -> None:
        cfg = e.config
        self.train_task = cfg.get("task") or self.train_task
        self.model = cfg.get("model") or ""
        self.epochs = cfg.get("epochs") or 0
        self.total_steps = e.total_steps
        self.start_step = e.start_step
        self._dirty = True

    def _stopping_words(self) -> str:
        """What a stop asked now keeps, as `train` says it on a Ctrl-C: the best checkpoint, the current weights
        (trained, not evaluated yet), or nothing (not one step trained)."""
        step = max(self.start_step, self.last_step.step if self.last_step else 0)
        return f"{'Stopping after this batch' if step else 'Stopping'}: {rf.stop_keeps(self.run_dir, step, True)} …"

    def _state(self, state: str) -> None:
        self._dirty_steps = self._dirty_steps or "paused" in (state, self.state)   # the ETA goes or comes back
        self.state = state
        name = os_name(self.run_dir or "")
        text = {"starting": Text(f"Starting run {name}: its process loads the data and torch …"),
                "running": Text.assemble("Training ", (f"{self.model}", "bold"), f" {self.train_task} · run {name}"),
                "paused": Text.assemble(("Paused", "bold"), f" · run {name}: press p to resume, x to stop."),
                "stopping": self._stopping_words()}
        self._status(text.get(state, Text(f"Run {name}: {state}")))     # run folders' names: never markup
        self._update_buttons()

    def _eval(self, e: Eval) -> None:
        m = e.metrics
        h = self.history
        h["eval_epoch"].append(e.epoch)
        h["eval_step"].append(e.step)
        h["eval_elapsed"].append(e.elapsed)
        if self.train_task == "classify":
            h["val_loss"].append(m.get("loss", float("nan")))
            h["val_metric"].append(m.get("accuracy", float("nan")))
            text = (f"val loss {m.get('loss', float('nan')):.3f} acc {m.get('accuracy', float('nan')):.3f} "
                    f"F1 {m.get('macro_f1', float('nan')):.3f}")
        else:
            h["val_loss"].append(m.get("nll", float("nan")))
            h["val_metric"].append(m.get("nll", float("nan")))
            text = f"val NLL {m.get('nll', float('nan')):.3f} ppl {m.get('perplexity', float('nan')):.2f}"
        self._log(f"ep {e.epoch:5.2f} · train {e.train_loss:.3f} · {text}{' ★' if e.best else ''}")
        self._dirty = True

    def _done(self, e: Done) -> None:
        self.state, self.ended = (rf.STOPPED if rf.stopped_word(e.reason) == rf.STOPPED else "done"), e
        t = e.test_metrics
        if e.untested:             # stopped before any training (or at once): no test figures, and why
            test = f"not tested: {e.untested}"
        elif not t:
            test = "no test metrics"
        elif self.train_task == "classify":
            test = (f"test acc {t.get('accuracy', 0):.3f} · bal {t.get('balanced_accuracy', 0):.3f} · "
                    f"F1 {t.get('macro_f1', 0):.3f}")
        else:
            test = f"test NLL {t.get('nll', 0):.3f} · ppl {t.get('perplexity', 0):.2f}"
        ended = f"Run {rf.STOPPED} after" if self.state == rf.STOPPED else f"Done, {reason_words(e.reason)} in"
        line = f"{ended} {duration(e.train_seconds)} · {test}"
        if e.untested == rf.UNTRAINED:      # "stopped before any training: …", as `train` says it
            line = f"Run {e.untested}"
        blend = t.get("lm_blend") if t else None       # the n-gram blend (mix) the test figures are of, as
        if isinstance(blend, dict):                    # `train` says it before its test line: why they jump
            from namestudio.engine.blend import describe   # in parts: a wrap at 80 columns breaks between them
            self._log(f"{describe(blend, narrow=True)} · {blend.get('seconds', 0):.1f} s")
        self._log(line)
        kept = "Run folder" if e.untested == rf.UNTRAINED else "Best checkpoint"    # untrained: no weights
        # the status breaks only between the line's parts ("bal 0.604" stays whole at 80 columns)
        self._status((Parts(*line.split(Parts.SEP), style="bold"), Squeezed(f"{kept}: ", short_path(e.run_dir))))
        self._update_buttons()
        self._dirty = True

    def _failed(self, e: Failed) -> None:
        self.state, self.ended = "failed", e
        if e.stale and e.resume_step is not None:     # killed: the progress is where `train --resume` goes on from
            self._at_resume_point(e.resume_step, e.resume_epoch)
        first, *rest = e.message.splitlines() or [""]
        head = "Run stale:" if e.stale else "Training failed:"   # killed: "stale", as runs and the Runs pane say
        # the status has 3 lines: a long first line is cut to leave the pointer to the rest in sight (the log has
        # it whole: "failed: …" below)
        pointer = Text("last lines of its train.log below", "dim") if rest else None
        self._status((Clipped(Text.assemble((head, "bold red"), f" {first}"), 3 - bool(rest)), pointer))
        self._log(f"{'stale' if e.stale else 'failed'}: {first}")
        if rest:
            self._log(f"last lines of {os_name(self.run_dir) + '/' if self.run_dir else 'its '}train.log:")
        for line in rest:
            self._log("  " + line)
        self._update_buttons()
        self._dirty = True

    def _at_resume_point(self, step: int, epoch: float | None) -> None:
        """The progress of a run whose trainer is gone: its resume point's step and epoch (the steps logged past it
        are lost; killed just after it was saved, the log may not have reached it yet), with the loss logged at or
        before it."""
        last = self.last_step
        if last is None:
            last = Step(step=0, epoch=0.0, loss=float("nan"), names_per_s=0.0, elapsed=0.0, eta=0.0,
                        total_steps=self.total_steps)
        if epoch is None:
            epoch = last.epoch * step / last.step if last.step else 0.0
        h = self.history
        at = [i for i, s in enumerate(h["step_step"]) if s <= step]
        loss = h["step_loss"][at[-1]] if at else last.loss
        self.last_step = dataclasses.replace(last, step=step, epoch=epoch, loss=loss,
                                             total_steps=last.total_steps or self.total_steps)
        self._dirty_steps = True

    def status_text(self) -> str:
        """The status bar's words for the attached run."""
        what = f"{self.model} {self.train_task}".strip()
        step = self.last_step
        pct = f"{100 * step.step / max(1, step.total_steps):.0f}%" if step else "0%"
        if self.state == "running":
            return f"training {what} {pct}" + (f" · epoch {step.epoch:.1f}" if step else "")
        if self.state == "paused":
            return f"paused {what} at {pct}"
        if self.state == "starting":
            return f"starting {what}"
        if self.state == "stopping":
            return f"stopping {what} at {pct}"
        if isinstance(self.ended, Done):
            return f"last run {reason_words(self.ended.reason)}"
        if isinstance(self.ended, Failed):
            return "last run stale" if self.ended.stale else "last run failed"
        return "idle"

    def _log(self, line: str) -> None:
        if self.built:
            self.query_one("#eval-log", WrappedLog).add(line)
        else:
            self._pending_log.append(line)

    # ---- drawing ------------------------------------------------------------------
    def _draw_progress(self) -> None:
        msg = self.last_step
        if msg is None:
            return
        self.query_one("#train-progress", ProgressLine).set(msg.step, msg.total_steps)
        if self.state == "paused" or (self.ended is not None and self.state not in LIVE):
            msg = dataclasses.replace(msg, eta=None)    # paused, or ended: no time left to tell
        self.query_one("#train-rate", RateLine).show(msg, self.epochs)

    def _status(self, text: str | Text | tuple) -> None:
        """The status line: our own markup (a str), or a Text where it holds a path, a run's name or an error; at a
        run's end (render.Parts, Text): its words, broken only between their parts, then the folder."""
        self._status_text = text
        if self.built:
            status = self.query_one("#train-status", Flowing)
            status.flow(*text) if isinstance(text, tuple) else status.say(text)

    def _update_buttons(self) -> None:
        if not self.built:
            return
        controllable = self.state in ("running", "paused")
        self.query_one("#b-start", Button).disabled = bool(self.app.own_live_runs())
        self.query_one("#b-pause", Button).disabled = not controllable
        self.query_one("#b-stop", Button).disabled = not controllable
        self.query_one("#b-pause", Button).label = "Resume" if self.paused else "Pause"
        self.refresh_bindings()

    def _redraw_if_dirty(self) -> None:
        """The 4 Hz timer: draw what changed since the last tick, in one frame (only while the pane shows)."""
        if not self.built or getattr(self.app, "active_pane", self) is not self:
            flush = getattr(self.app, "flush_status", None)
            if flush:
                flush()
            return
        if self._dirty:                  # everything (a new evaluation, a new run, the log scale)
            self._dirty = self._dirty_steps = False
            self._draw_progress()
            self._draw_plots()
        elif self._dirty_steps:          # new training steps: the progress line and the loss plot only
            self._dirty_steps = False
            self._draw_progress()
            self._draw_plots(metric=False)
        flush = getattr(self.app, "flush_status", None)
        if flush:
            flush()                      # the status bar, in the same frame

    def _xs(self, kind: str, n: int) -> list[float]:
        """The x values of the "step" or "eval" points on the chosen axis (epochs where a history was filled
        without them)."""
        xs = self.history.get(f"{kind}_{self.x_axis}", [])
        return xs if len(xs) == n else self.history[f"{kind}_epoch"]

    def _line(self, plot: PlotextPlot, name: str, label: str, xs: list[float], ys: list[float], i: int,
              bucket: int = 0, legend: bool = True) -> None:
        """One line: smoothed (the engine's debiased EMA) over its raw values drawn faint, mapped to log10 when
        asked; ``bucket`` > 0 averages it down to that many points (after smoothing)."""
        f = log10_or_nan if self.log_scale and name == "loss" else (lambda v: v)
        lines = []
        if self.smoothing:
            lines.append((f"{label} raw", ys, faint(colour(i), background(plot))))
        lines.append((label, self._smoother(f"{name} {label}", ys, self.smoothing), colour(i)))
        for text, values, rgb in lines:
            bx, by = bucket_means(xs, values, bucket) if bucket else (xs, values)
            by = [f(v) for v in by]
            self.plotted.setdefault(name, []).append((text, list(bx), by))
            shown = legend and text == label             # the legend names the smoothed line, not the raw one
            plot.plt.plot(bx, by, marker="braille", color=rgb, **({"label": text} if shown else {}))

    def _draw_plots(self, metric: bool = True) -> None:
        h = self.history
        loss_plot = self.query_one("#loss-plot", PlotextPlot)
        plt = loss_plot.plt
        plt.clear_figure()
        self.plotted["loss"] = []
        ema = f" · EMA {self.smoothing:g}" if self.smoothing else ""
        plt.title(("log10 loss" if self.log_scale else "loss") + ema)
        plt.xlabel(X_LABELS[self.x_axis])
        if h["step_epoch"]:
            # at most ~one point per braille column: the mean of each bucket of steps (less noise, less work)
            self._line(loss_plot, "loss", "train", self._xs("step", len(h["step_loss"])), h["step_loss"], 0,
                       2 * max(10, loss_plot.size.width - 8))
        if h["eval_epoch"]:
            self._line(loss_plot, "loss", "val", self._xs("eval", len(h["val_loss"])), h["val_loss"], 1)
        loss_plot.refresh()
        if not metric:
            return
        metric_plot = self.query_one("#metric-plot", PlotextPlot)
        plt = metric_plot.plt
        plt.clear_figure()
        self.plotted["metric"] = []
        plt.xlabel(X_LABELS[self.x_axis])
        if self.train_task == "classify":
            plt.title("val accuracy" + ema)
            plt.ylim(0, 1)
        else:
            plt.title("val NLL (nats/char)" + ema)
        if h["eval_epoch"]:
            self._line(metric_plot, "metric", "val", self._xs("eval", len(h["val_metric"])), h["val_metric"], 2,
                       legend=False)
        metric_plot.refresh()


class WrappedLog(Log):
    """The Train pane's log: a long line (an error, the n-gram blend's) wraps at the log's width, indented, rather
    than running off its edge. Until the log has a width (laid out and shown: the pane may be hidden) its lines
    wait, in order; a guess at the screen's width ran past the log beside the form."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._waiting: list[str] = []

    def add(self, line: str) -> None:
        self._waiting.append(line)
        self._flush()

    def clear(self):
        self._waiting = []
        return super().clear()

    def on_resize(self, event) -> None:
        self._flush()

    def _flush(self) -> None:
        width = self.scrollable_content_region.width if self.size.width else 0
        if not width or not self._waiting:
            return
        width = max(20, width)
        lines, self._waiting = self._waiting, []
        for line in lines:
            self.write_lines(_wrapped(line, width) if len(line) > width else [line])


def _wrapped(line: str, width: int) -> list[str]:
    """A log line wrapped at ``width``, indented after the first; a line of parts joined by " · " breaks only
    between them when each fits ("… · bal" / "0.325 · F1 0.300" cut a figure from its name)."""
    parts = line.split(Parts.SEP)
    if len(parts) > 1 and all(len(part) <= width - 4 for part in parts):
        line = Parts.SEP.join(part.replace(" ", "\ue000") for part in parts)   # not a space to textwrap
    return [w.replace("\ue000", " ") for w in textwrap.wrap(line, width, subsequent_indent="    ")]


class RateLine(Static):
    """The progress words under the bar (``progress_words``), chosen for the width the line has when it is
    drawn: a run attached while the pane was hidden has no width yet, and its words are chosen again once the
    pane is shown (they were once chosen for 200 cells and cut at 80)."""

    def __init__(self, **kw) -> None:
        super().__init__("", **kw)
        self.words: tuple | None = None          # (the last Step, the run's epochs)

    def show(self, msg, epochs=None) -> None:
        self.words = None if msg is None else (msg, epochs)
        self.refresh()

    def render(self):
        if self.words is None:
            return ""
        msg, epochs = self.words
        return progress_words(msg, epochs, self.size.width or 200)


def progress_words(msg, epochs, width: int) -> str:
    """The progress line under the bar, whole in ``width`` cells (issue 12: never cut at 80×24). The
    throughput goes first, then words get shorter; the step count stays (the bench reads it off the screen)."""
    epoch, eta = f"epoch {msg.epoch:.1f}/{epochs or '?'}", "" if msg.eta is None else f"ETA {duration(msg.eta)}"
    loss, step = f"loss {msg.loss:.3f}", f"step {msg.step:,}/{msg.total_steps:,}"
    short_epoch = f"ep {msg.epoch:.1f}/{epochs or '?'}"
    for parts in ([epoch, eta, f"{msg.names_per_s:,.0f} names/s", step, loss],
                  [epoch, eta, f"{msg.names_per_s:,.0f}/s", step, loss],
                  [epoch, eta, step, loss],
                  [short_epoch, eta, step, loss],
                  [short_epoch, eta, step]):
        text = " · ".join(p for p in parts if p)
        if len(text) <= width:
            break
    return text


def os_name(path: str) -> str:
    return os.path.basename(path.rstrip("/"))

