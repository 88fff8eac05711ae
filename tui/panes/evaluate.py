"""Evaluate pane: the confusion matrix as a coloured table, per-class metrics and the headline figures.

It follows the attached run live (each evaluation in its metrics.jsonl, read by tui/follow.py) or shows a
saved classifier run's test split. Each evaluation's tables are rendered once and cached (per counts/percent
and theme), and only while the pane shows: a pane switch does not rebuild them.
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
from ..messages import RunMetrics
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
        self.live_labels: list[str] = []                       # labels of the attached run (config.json)
        self._cache: dict = {}                                 # (id(metrics), percent, dark) -> renderables
        self._shown_key = None                                 # the key of what the widgets show now
        self._stale = False                                    # new metrics wait for the pane to show

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
        try:   # metrics that came while the pane was hidden are drawn when it is shown
            self.watch(self.app.query_one("#panes"), "active", lambda _active: self.on_show(), init=False)
        except Exception:
            pass

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
        if metrics is not self.metrics:
            self._shown_key = None
        self.metrics, self.labels, self.title = metrics, list(labels), title
        self.shown_run = run
        self.render_metrics()

    def render_metrics(self) -> None:
        if not self.built or not self.is_mounted:
            return
        if not self._visible():
            self._stale = True                 # drawn when the pane is shown
            return
        self._stale = False
        m = self.metrics
        if not m:
            return
        dark = getattr(self.app.current_theme, "dark", True)
        key = (id(m), self.percent, dark, self.title)
        if key == self._shown_key:
            return                             # the widgets show this already
        parts = self._cache.get(key)
        if parts is None:
            parts = self._cache[key] = self._renderables(m, dark)
            if len(self._cache) > 8:           # the latest few (counts/percent, both themes)
                self._cache.pop(next(iter(self._cache)))
        self._shown_key = key
        for wid, part in zip(("#eval-title", "#eval-cm", "#eval-headline", "#eval-per-class"), parts):
            self.query_one(wid, Static).update(part)

    def _visible(self) -> bool:
        try:
            return self.app.query_one("#panes").active == "evaluate"
        except Exception:
            return True

    def on_show(self) -> None:
        if self._stale:
            self.render_metrics()

    def _labels_for(self, m: dict) -> list[str]:
        """The labels of the matrix: the run's own (config.json), never bare numbers."""
        n = len(m.get("confusion") or [])
        if len(self.labels) == n:
            return self.labels
        if self.shown_run:
            try:
                from namestudio.engine import runfolder as rf
                labels = rf.read_json(Path(self.shown_run) / rf.CONFIG, dict).get("labels") or []
                if len(labels) == n:
                    self.labels = [str(x) for x in labels]
                    return self.labels
            except Exception:
                pass
        return [f"class {i}" for i in range(n)]

    def _renderables(self, m: dict, dark: bool) -> tuple:
        if "nll" in m and "confusion" not in m:
            return (Text.assemble((self.title, "bold"), "  (a generator: no confusion matrix)"), "",
                    _headline_table({"NLL (nats/char)": f"{m['nll']:.3f}", "perplexity": f"{m['perplexity']:.2f}"}),
                    "")
        mode = "row %" if self.percent else "counts"
        return (Text.assemble((self.title, "bold"), f" · rows true, columns predicted · {mode} (c)"),
                confusion_table(m["confusion"], self._labels_for(m), percent=self.percent, dark=dark, title=None,
                                corner=""),
                _headline_table({"accuracy": f"{m.get('accuracy', 0):.3f}",
                                 "balanced": f"{m.get('balanced_accuracy', 0):.3f}",
                                 "macro-F1": f"{m.get('macro_f1', 0):.3f}",
                                 "n": f"{m.get('n', 0):,}"}),
                per_class_table(m, compact=True) if "per_class" in m else "")

    # ---- live: the attached run (tui/follow.py) -------------------------------------
    def on_live_started(self, run_dir: str, e) -> None:
        classify = e.config.get("task") == "classify"
        self.live_run = run_dir if classify else None
        self.live_labels = list(e.labels)
        self.live = None

    def on_live_eval(self, e) -> None:
        if self.live_run is None or "confusion" not in e.metrics:
            return
        self.live = (e.metrics, self.live_labels, f"Validation, live · epoch {e.epoch:.2f}")
        if self.follow_live:
            self.show_metrics(*self.live, run=self.live_run)

    def on_live_done(self, e) -> None:
        if self.live_run is None or not self.follow_live:
            return
        if "confusion" in e.test_metrics:
            self.live = (e.test_metrics, self.live_labels, f"Test split · {Path(e.run_dir).name}")
            self.show_metrics(*self.live, run=e.run_dir)

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
        from namestudio.engine import runfolder as ck

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
            self.metrics, self._shown_key = None, None
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
            self.metrics, self.shown_run, self._shown_key = None, None, None
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
