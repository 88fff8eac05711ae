"""Train pane: the form, start/pause/stop, progress, live plots and a short log of evaluations.

The pane holds no training logic. It builds a TrainConfig from the form, hands it to the engine's
Trainer in a thread worker, and turns the engine's events into messages (tui/messages.py).
"""
from __future__ import annotations

import math
import os

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Label, Log, Select, Static
from textual.worker import get_current_worker
from textual_plotext import PlotextPlot

from namestudio.engine.config import TASKS, TrainConfig, default_threads

from .. import keys
from ..messages import (TrainingDone, TrainingEval, TrainingFailed, TrainingPaused, TrainingStarted,
                        TrainingStep)
from ..widgets import INTEGER, NUMBER, Anchor, Field, Pane, ProgressLine, duration, short_path

MODELS = [("LSTM (nn.LSTM)", "lstm"), ("GRU", "gru"), ("RNN (tanh)", "rnn"), ("hand-written LSTM", "mylstm")]
DEFAULTS = {task: TrainConfig(task=task) for task in TASKS}   # the engine's defaults differ by task
FORM = {"f-epochs": "epochs", "f-batch": "batch_size", "f-lr": "lr", "f-hidden": "hidden", "f-layers": "layers",
        "f-dropout": "dropout", "f-seed": "seed"}     # form field -> TrainConfig field
REDRAW_EVERY = 0.25          # seconds: plots redraw at most ~4 times a second


def ui_threads() -> int:
    """Torch threads for training: the engine's default, which leaves a core for the UI."""
    return default_threads()


class TrainPane(Pane):
    pane_id = "train"
    BINDINGS = keys.TRAIN

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.devices: list[str] = []
        self.trainer = None
        self.worker = None           # the Textual worker of the latest run
        self.running = False
        self.paused = False
        self.train_task = "classify"
        self.epochs = 0
        self.run_dir: str | None = None
        self.log_scale = False
        self.last_step: TrainingStep | None = None
        self._dirty = False          # redraw everything at the next tick
        self._dirty_steps = False    # redraw the progress and the loss plot at the next tick
        self.reset_history()

    def reset_history(self) -> None:
        self.history: dict[str, list[float]] = {
            "step_epoch": [], "step_loss": [],                     # from Step events
            "eval_epoch": [], "val_loss": [], "val_metric": [],   # from Eval events
        }

    # ---- layout -------------------------------------------------------------------
    def compose_content(self) -> ComposeResult:
        d = DEFAULTS[TASKS[0]]
        with Horizontal(id="train-body"):
            with Vertical(id="train-form"):
                yield from self._row("Task", Select([("classify", "classify"), ("generate", "generate")],
                                                    value=d.task, allow_blank=False, compact=True, id="f-task"))
                yield from self._row("Model", Select([(t, v) for t, v in MODELS], value=d.model, allow_blank=False,
                                                     compact=True, id="f-model"))
                yield from self._row("Device", Select([("auto", "auto"), ("cpu", "cpu")], value="auto",
                                                      allow_blank=False, compact=True, id="f-device"))
                yield from self._row("Epochs", Field(str(d.epochs), accept=INTEGER, id="f-epochs"))
                yield from self._row("Batch", Field(str(d.batch_size), accept=INTEGER, id="f-batch"))
                yield from self._row("LR", Field(str(d.lr), accept=NUMBER, id="f-lr"))
                yield from self._row("Hidden", Field(str(d.hidden), accept=INTEGER, id="f-hidden"))
                yield from self._row("Layers", Field(str(d.layers), accept=INTEGER, id="f-layers"))
                yield from self._row("Dropout", Field(str(d.dropout), accept=NUMBER, id="f-dropout"))
                yield from self._row("Seed", Field(str(d.seed), accept=INTEGER, id="f-seed"))
                with Horizontal(id="train-buttons"):
                    yield Button("Start", id="b-start", compact=True, variant="success", tooltip="s: start training")
                    yield Button("Pause", id="b-pause", compact=True, tooltip="p: pause or resume")
                    yield Button("Stop", id="b-stop", compact=True, variant="error", tooltip="x: stop, keep the best")
            with Vertical(id="train-main"):
                yield Anchor("Ready: press s to train on the active data source.", id="train-status")
                yield ProgressLine(id="train-progress")
                yield Static("", id="train-rate")
                with Horizontal(id="train-plots"):
                    yield PlotextPlot(id="loss-plot")
                    yield PlotextPlot(id="metric-plot")
                yield Log(id="eval-log", max_lines=200)

    @staticmethod
    def _row(label: str, field) -> ComposeResult:
        with Horizontal(classes="form-row"):
            yield Label(label, classes="field-label")
            yield field

    def on_mount(self) -> None:
        self.set_interval(REDRAW_EVERY, self._redraw_if_dirty)

    def on_built(self) -> None:
        self._draw_plots()
        self._update_buttons()
        if self.devices:
            self.set_devices(self.devices)

    def set_devices(self, devices: list[str]) -> None:
        """Show only the devices that exist here (after the start-up worker has asked torch)."""
        self.devices = devices
        if not self.built:
            return
        select = self.query_one("#f-device", Select)
        current = select.value
        select.set_options([("auto", "auto")] + [(d, d) for d in devices])
        select.value = current if current in devices or current == "auto" else "auto"

    @on(Select.Changed, "#f-task")
    def _task_changed(self, event: Select.Changed) -> None:
        new = DEFAULTS.get(str(event.value))
        if new is None:
            return
        for fid, name in FORM.items():     # a field left at another task's default takes this task's default
            field = self.query_one(f"#{fid}", Field)
            if any(field.value.strip() == str(getattr(d, name)) for d in DEFAULTS.values()):
                field.value = str(getattr(new, name))
        if not self.running and not self.history["eval_epoch"]:
            self.train_task = str(event.value)      # the metric plot's title follows the task
            self._dirty = True

    # ---- the form -----------------------------------------------------------------
    def build_config(self, dataset=None) -> TrainConfig:
        """A TrainConfig from the form; ValueError names the field at fault."""
        def num(fid: str, kind, label: str):
            text = self.query_one(f"#{fid}", Field).value.strip()
            try:
                return kind(text)
            except ValueError:
                raise ValueError(f"{label}: {text!r} is not a valid {'whole number' if kind is int else 'number'}") from None

        task = str(self.query_one("#f-task", Select).value)
        cfg = TrainConfig(
            task=task, model=str(self.query_one("#f-model", Select).value),
            device=str(self.query_one("#f-device", Select).value),
            epochs=num("f-epochs", int, "Epochs"), batch_size=num("f-batch", int, "Batch size"),
            lr=num("f-lr", float, "Learning rate"), hidden=num("f-hidden", int, "Hidden size"),
            layers=num("f-layers", int, "Layers"), dropout=num("f-dropout", float, "Dropout"),
            seed=num("f-seed", int, "Seed"), threads=ui_threads())
        if dataset is not None:
            cfg.data = dataset.source
            n_train = len(dataset.pairs) * (1 - cfg.val_fraction - cfg.test_fraction)
            steps_per_epoch = max(1, math.ceil(n_train / max(1, cfg.batch_size)))
            cfg.log_every = max(1, min(20, steps_per_epoch // 20))   # about 20 points an epoch, at least
        for key, value in getattr(self.app, "train_overrides", {}).items():
            setattr(cfg, key, value)
        cfg.validate()
        return cfg

    # ---- actions ------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "start":
            return None if self.running else True
        if action in ("pause", "stop"):
            return True if self.running else None
        return True

    def action_start(self) -> None:
        if self.running:
            self.app.notify("A run is already training; stop it first (x).", severity="warning")
            return
        dataset = getattr(self.app, "dataset", None)
        if dataset is None:
            self.app.notify("No data loaded yet: pick a source on the Data pane (1).", severity="warning")
            return
        try:
            cfg = self.build_config(dataset)
        except ValueError as e:
            self.app.notify(str(e), title="Cannot start", severity="error")
            return
        from namestudio.engine.train import Trainer

        self.trainer = Trainer(cfg, self.app.checkpoints, on_event=self._on_engine_event, dataset=dataset)
        self.train_task, self.epochs, self.run_dir = cfg.task, cfg.epochs, None
        self.running, self.paused = True, False
        self.reset_history()
        self.last_step = None
        self._dirty = True
        self.query_one("#eval-log", Log).clear()
        self.query_one("#train-progress", ProgressLine).set(0, 0)
        self.query_one("#train-rate", Static).update("", layout=False)
        self._status(f"Starting: {cfg.task} · {cfg.model} · {short_path(dataset.source)} · "
                     f"{cfg.threads} torch thread{'s' if cfg.threads > 1 else ''} …")
        self._update_buttons()
        self.focus_anchor()          # out of the form: digits switch panes again
        self.worker = self.train_worker(self.trainer)

    def action_pause(self) -> None:
        if not (self.running and self.trainer):
            return
        if self.paused:
            self.trainer.resume()
        else:
            self.trainer.pause()
        self.paused = not self.paused
        self.post_message(TrainingPaused(self.paused))

    def action_stop(self) -> None:
        if self.running and self.trainer:
            self.trainer.cancel()
            self._status("Stopping after this batch: the best checkpoint so far is kept …")

    def action_log_scale(self) -> None:
        self.log_scale = not self.log_scale
        self._dirty = True
        self._redraw_if_dirty()

    def cancel_training(self) -> None:
        """Stop the run (quit, or a new app); the worker ends within one batch."""
        if self.trainer is not None:
            self.trainer.cancel()

    @on(Button.Pressed, "#b-start")
    def _start_pressed(self) -> None:
        self.action_start()

    @on(Button.Pressed, "#b-pause")
    def _pause_pressed(self) -> None:
        self.action_pause()

    @on(Button.Pressed, "#b-stop")
    def _stop_pressed(self) -> None:
        self.action_stop()

    # ---- the worker ---------------------------------------------------------------
    @work(thread=True, exclusive=True, group="train", exit_on_error=False, name="train")
    def train_worker(self, trainer) -> None:
        trainer.run()    # events arrive in _on_engine_event, in this thread

    def _on_engine_event(self, e) -> None:
        """Called by the Trainer in the worker thread: post a small message, never wait for the UI."""
        from namestudio.engine.events import Done, Eval, Failed, Started, Step

        try:
            if get_current_worker().is_cancelled:
                self.trainer.cancel()
        except Exception:  # not in a worker (direct call): nothing to check
            pass
        if isinstance(e, Step):
            self.post_message(TrainingStep(e.step, e.epoch, e.loss, e.names_per_s, e.elapsed, e.eta, e.total_steps))
        elif isinstance(e, Eval):
            metrics = {k: v for k, v in e.metrics.items() if k != "confusion_normalized"}
            self.post_message(TrainingEval(e.step, e.epoch, e.train_loss, metrics, e.best,
                                           self.trainer.cfg.task, list(self.trainer.labels)))
        elif isinstance(e, Started):
            self.post_message(TrainingStarted(e.run_dir, e.config["task"], e.config["model"], list(e.labels),
                                              e.total_steps, e.steps_per_epoch, e.n_train, e.device, e.note))
        elif isinstance(e, Done):
            self.post_message(TrainingDone(e.run_dir, self.trainer.cfg.task, e.test_metrics, e.train_seconds,
                                           e.reason, e.best_step))
        elif isinstance(e, Failed):
            self.post_message(TrainingFailed(e.message, e.run_dir))

    # ---- engine events, as messages -------------------------------------------------
    def on_training_started(self, msg: TrainingStarted) -> None:
        self.run_dir = msg.run_dir
        self.query_one("#train-progress", ProgressLine).set(0, msg.total_steps)
        note = f" ({msg.note})" if msg.note else ""
        self._status(f"Training [b]{msg.model}[/b] {msg.task} on {msg.device}{note} · run {os_name(msg.run_dir)}"
                     f" · {msg.n_train:,} training names")

    def on_training_step(self, msg: TrainingStep) -> None:
        """Record only; the 4 Hz timer draws (a tiny dataset can send a hundred steps a second)."""
        self.history["step_epoch"].append(msg.epoch)
        self.history["step_loss"].append(msg.loss)
        self.last_step = msg
        self._dirty_steps = True

    def _draw_progress(self) -> None:
        msg = self.last_step
        if msg is None:
            return
        self.query_one("#train-progress", ProgressLine).set(msg.step, msg.total_steps)
        self.query_one("#train-rate", Static).update(
            f"epoch {msg.epoch:.1f}/{self.epochs} · ETA {duration(msg.eta)} · {msg.names_per_s:,.0f} names/s · "
            f"step {msg.step:,}/{msg.total_steps:,} · loss {msg.loss:.3f}", layout=False)

    def on_training_eval(self, msg: TrainingEval) -> None:
        m = msg.metrics
        self.history["eval_epoch"].append(msg.epoch)
        if msg.task == "classify":
            self.history["val_loss"].append(m.get("loss", float("nan")))
            self.history["val_metric"].append(m.get("accuracy", float("nan")))
            text = f"val loss {m['loss']:.3f} acc {m['accuracy']:.3f} F1 {m['macro_f1']:.3f}"
        else:
            self.history["val_loss"].append(m.get("nll", float("nan")))
            self.history["val_metric"].append(m.get("nll", float("nan")))
            text = f"val NLL {m['nll']:.3f} ppl {m['perplexity']:.2f}"
        self.query_one("#eval-log", Log).write_line(
            f"ep {msg.epoch:5.2f} · train {msg.train_loss:.3f} · {text}{' ★' if msg.best else ''}")
        self._dirty = True

    def on_training_done(self, msg: TrainingDone) -> None:
        self.running, self.paused = False, False
        reasons = {"finished": "finished", "early_stop": "stopped early (no improvement)",
                   "cancelled": "stopped by you", "max_steps": "reached the step limit"}
        t = msg.test_metrics
        test = (f"test acc {t.get('accuracy', 0):.3f} · bal {t.get('balanced_accuracy', 0):.3f} · "
                f"F1 {t.get('macro_f1', 0):.3f}" if msg.task == "classify" else
                f"test NLL {t.get('nll', 0):.3f} · ppl {t.get('perplexity', 0):.2f}")
        line = f"Done, {reasons.get(msg.reason, msg.reason)} in {duration(msg.train_seconds)} · {test}"
        self.query_one("#eval-log", Log).write_line(line)
        self._status(f"[b]{line}[/b]\nBest checkpoint: {short_path(msg.run_dir)}")
        self._update_buttons()
        self._dirty = True
        self._redraw_if_dirty()

    def on_training_failed(self, msg: TrainingFailed) -> None:
        self.running, self.paused = False, False
        self._status(f"[b red]Training failed:[/] {msg.message}")
        self.query_one("#eval-log", Log).write_line(f"failed: {msg.message}")
        self._update_buttons()

    def on_training_paused(self, msg: TrainingPaused) -> None:
        self.query_one("#b-pause", Button).label = "Resume" if msg.paused else "Pause"
        if msg.paused:
            self._status("Paused after this batch: press p to resume, x to stop.")
        else:
            self._status("Resumed.")

    def worker_failed(self, worker) -> None:
        """A worker raised (not a Failed event): the app shows the message; the pane is ready again."""
        if worker.group != "train":
            return
        error = worker.error
        self.running, self.paused = False, False
        self._status(f"[b red]Training stopped by an error:[/] {error}")
        self._update_buttons()

    # ---- drawing ------------------------------------------------------------------
    def _status(self, text: str) -> None:
        self.query_one("#train-status", Static).update(text)

    def _update_buttons(self) -> None:
        self.query_one("#b-start", Button).disabled = self.running
        self.query_one("#b-pause", Button).disabled = not self.running
        self.query_one("#b-stop", Button).disabled = not self.running
        if not self.running:
            self.query_one("#b-pause", Button).label = "Pause"
        self.refresh_bindings()

    def _redraw_if_dirty(self) -> None:
        """The 4 Hz timer: draw what changed since the last tick, in one frame."""
        if not self.built:
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

    def _draw_plots(self, metric: bool = True) -> None:
        h = self.history
        loss_plot = self.query_one("#loss-plot", PlotextPlot)
        plt = loss_plot.plt
        plt.clear_figure()
        f = (lambda v: math.log10(v) if v > 0 else float("nan")) if self.log_scale else (lambda v: v)
        plt.title("log10 loss" if self.log_scale else "loss")
        plt.xlabel("epoch")
        if h["step_epoch"]:
            # at most ~one point per braille column: the mean of each bucket of steps (less noise, less work)
            xs, ys = bucket_means(h["step_epoch"], h["step_loss"], 2 * max(10, loss_plot.size.width - 8))
            plt.plot(xs, [f(v) for v in ys], label="train", marker="braille", color="cyan")
        if h["eval_epoch"]:
            plt.plot(h["eval_epoch"], [f(v) for v in h["val_loss"]], label="val", marker="braille", color="orange")
        loss_plot.refresh()
        if not metric:
            return
        metric_plot = self.query_one("#metric-plot", PlotextPlot)
        plt = metric_plot.plt
        plt.clear_figure()
        plt.xlabel("epoch")
        if self.train_task == "classify":
            plt.title("val accuracy")
            plt.ylim(0, 1)
        else:
            plt.title("val NLL (nats/char)")
        if h["eval_epoch"]:
            plt.plot(h["eval_epoch"], h["val_metric"], marker="braille", color="green")
        metric_plot.refresh()


def bucket_means(xs: list[float], ys: list[float], most: int) -> tuple[list[float], list[float]]:
    """Average consecutive points so that at most ``most`` remain (the last bucket may be smaller)."""
    n = len(xs)
    if n <= most:
        return xs, ys
    size = math.ceil(n / most)
    bx = [sum(xs[i:i + size]) / len(xs[i:i + size]) for i in range(0, n, size)]
    by = [sum(ys[i:i + size]) / len(ys[i:i + size]) for i in range(0, n, size)]
    return bx, by


def os_name(path: str) -> str:
    return os.path.basename(path.rstrip("/"))

