"""Evaluate pane: the confusion matrix as a coloured table, per-class metrics and the headline figures.

It follows the training run live (at each evaluation) or shows a saved classifier run's test split.
"""
from __future__ import annotations

from pathlib import Path

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Select, Static

from .. import keys
from ..messages import RunMetrics, TrainingDone, TrainingEval, TrainingStarted
from ..render import confusion_table, per_class_table
from ..widgets import Anchor, Pane, set_select, short_run, usable


class EvaluatePane(Pane):
    pane_id = "evaluate"
    BINDINGS = keys.EVALUATE

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.percent = True
        self.follow_live = True
        self.metrics: dict | None = None
        self.labels: list[str] = []
        self.title = ""
        self.live: tuple[dict, list[str], str] | None = None   # the latest live evaluation
        self.live_run: str | None = None
        self.shown_run: str | None = None                      # run folder of what is shown
        self.selected_run: str | None = None                   # the saved run chosen (None: live)
        self.options: list[tuple[str, str]] = []               # classifier runs to choose from

    @property
    def run_path(self) -> Path | None:
        return Path(self.shown_run) if self.shown_run else None

    def compose_content(self) -> ComposeResult:
        with Horizontal(classes="toolbar"):
            yield Label("Run:", classes="field-label")
            yield Select([], prompt="live: the training run", allow_blank=True, compact=True, id="eval-run")
        yield Anchor("No evaluation yet: train a classifier (2), or open a saved run (o).", id="eval-title")
        with Horizontal(id="eval-body"):
            yield Static("", id="eval-cm")
            with Vertical(id="eval-side"):
                yield Static("", id="eval-headline")
                yield Static("", id="eval-per-class")

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.render_metrics())

    # ---- runs to choose from ------------------------------------------------------
    def set_runs(self, runs: list[dict]) -> None:
        options = []
        for r in runs:
            if r.get("task") != "classify" or not usable(r):
                continue
            acc = f" · acc {r['test_accuracy']:.3f}" if "test_accuracy" in r else ""
            options.append((f"{short_run(r)} {r.get('model')}{acc}", r["path"]))
        self.options = options
        if self.built:
            set_select(self.query_one("#eval-run", Select), options, self.selected_run)

    def on_built(self) -> None:
        set_select(self.query_one("#eval-run", Select), self.options, self.selected_run)
        if self.selected_run and not self.metrics:
            self.query_one("#eval-title", Static).update(f"Loading {Path(self.selected_run).name} …")
        self.render_metrics()

    @on(Select.Changed, "#eval-run")
    def _run_chosen(self, event: Select.Changed) -> None:
        value = event.select.value
        if value == Select.NULL:
            if self.selected_run is not None:
                self.action_follow_live()
        elif value != self.selected_run:
            self.load_run(str(value))

    # ---- showing ------------------------------------------------------------------
    def show_metrics(self, metrics: dict, labels: list[str], title: str, run: str | None = None) -> None:
        self.metrics, self.labels, self.title = metrics, list(labels), title
        self.shown_run = run
        self.render_metrics()

    def render_metrics(self) -> None:
        if not self.built or not self.is_mounted:
            return
        title = self.query_one("#eval-title", Static)
        cm = self.query_one("#eval-cm", Static)
        head = self.query_one("#eval-headline", Static)
        per = self.query_one("#eval-per-class", Static)
        m = self.metrics
        if not m:
            return
        if "nll" in m and "confusion" not in m:
            title.update(Text.assemble((self.title, "bold"), "  (a generator: no confusion matrix)"))
            cm.update("")
            head.update(_headline_table({"NLL (nats/char)": f"{m['nll']:.3f}",
                                         "perplexity": f"{m['perplexity']:.2f}"}))
            per.update("")
            return
        mode = "row %" if self.percent else "counts"
        title.update(Text.assemble((self.title, "bold"), f" · rows true, columns predicted · {mode} (c)"))
        dark = getattr(self.app.current_theme, "dark", True)
        cm.update(confusion_table(m["confusion"], self.labels, percent=self.percent, dark=dark, title=None,
                                  corner=""))
        head.update(_headline_table({"accuracy": f"{m['accuracy']:.3f}",
                                     "balanced": f"{m['balanced_accuracy']:.3f}",
                                     "macro-F1": f"{m['macro_f1']:.3f}",
                                     "n": f"{m.get('n', 0):,}"}))
        per.update(per_class_table(m, compact=True))

    # ---- live ---------------------------------------------------------------------
    def on_live_started(self, msg: TrainingStarted) -> None:
        self.live_run = msg.run_dir if msg.task == "classify" else None
        self.live = None

    def on_live_eval(self, msg: TrainingEval) -> None:
        if msg.task != "classify":
            return
        self.live = (msg.metrics, msg.labels, f"Validation, live · epoch {msg.epoch:.2f}")
        if self.follow_live:
            self.show_metrics(msg.metrics, msg.labels, self.live[2], run=self.live_run)

    def on_live_done(self, msg: TrainingDone) -> None:
        if msg.task != "classify" or not self.follow_live:
            return
        if "confusion" in msg.test_metrics:
            labels = self.live[1] if self.live else self.labels
            self.live = (msg.test_metrics, labels, f"Test split · {Path(msg.run_dir).name}")
            self.show_metrics(msg.test_metrics, labels, self.live[2], run=msg.run_dir)

    # ---- saved runs ---------------------------------------------------------------
    def load_run(self, path: str) -> None:
        self.follow_live = False
        self.selected_run = str(path)
        if self.built:
            set_select(self.query_one("#eval-run", Select), value=str(path))
            self.query_one("#eval-title", Static).update(f"Loading {Path(path).name} …")
        self._metrics_worker(str(path))

    @work(thread=True, exclusive=True, group="evaluate", exit_on_error=False)
    def _metrics_worker(self, path: str) -> None:
        from namestudio.engine import checkpoint as ck

        try:
            meta = ck.read_json(Path(path) / ck.CONFIG)
            labels = meta["labels"]
            if meta.get("train", {}).get("task") != "classify":
                test = ck.read_json(Path(path) / ck.TEST).get("test", {}) if (Path(path) / ck.TEST).is_file() else {}
                self.post_message(RunMetrics(path, test, labels, "test", "" if test else "no test metrics yet"))
                return
            test = ck.read_json(Path(path) / ck.TEST) if (Path(path) / ck.TEST).is_file() else {}
            if "confusion" in test.get("test", {}):
                self.post_message(RunMetrics(path, test["test"], labels, "test"))
                return
            from namestudio.engine.infer import load_run
            run = load_run(path)
            self.post_message(RunMetrics(path, run.evaluate("val"), labels, "validation"))
        except Exception as e:  # a broken run folder is a message, not a crash
            self.post_message(RunMetrics(path, {}, [], "", str(e).strip().splitlines()[0] if str(e).strip()
                                         else type(e).__name__))

    def on_run_metrics(self, msg: RunMetrics) -> None:
        msg.stop()
        if msg.error:
            self.metrics = None
            if self.built:
                self.query_one("#eval-title", Static).update(Text(f"{Path(msg.path).name}: {msg.error}", style="red"))
            return
        self.show_metrics(msg.metrics, msg.labels, f"{msg.split.capitalize()} split · {Path(msg.path).name}",
                          run=msg.path)

    # ---- actions ------------------------------------------------------------------
    def action_toggle_counts(self) -> None:
        self.percent = not self.percent
        self.render_metrics()

    def action_follow_live(self) -> None:
        self.follow_live = True
        self.selected_run = None
        self.query_one("#eval-run", Select).clear()
        if self.live:
            self.show_metrics(*self.live, run=self.live_run)
        else:
            self.metrics, self.shown_run = None, None
            self.query_one("#eval-title", Static).update("Live: waiting for the first evaluation of a classifier run.")
            for wid in ("#eval-cm", "#eval-headline", "#eval-per-class"):
                self.query_one(wid, Static).update("")

    def action_choose_run(self) -> None:
        select = self.query_one("#eval-run", Select)
        select.focus()
        select.expanded = True


def _headline_table(values: dict[str, str]) -> Table:
    t = Table(show_header=False, box=None, padding=(0, 0, 0, 1), pad_edge=False)
    t.add_column("what", style="bold", no_wrap=True)
    t.add_column("value", justify="right", no_wrap=True)
    for k, v in values.items():
        t.add_row(k, v)
    return t
