"""Compare pane: the runs of an experiment (a folder made by `namestudio compare`), or the runs marked on the
Runs pane, side by side, in five views (v cycles):

- Curves: every run's training loss and validation metric (accuracy, or NLL for generators) overlaid; x-axis
  epoch / step / training time (t), the engine's debiased EMA smoothing (m; the raw line faint behind), log10 y
  (l), and h hides or shows the run under the legend's cursor.
- Results: model, parameters, training time, names/s, epochs to the best evaluation and the test metrics;
  s (or a click on a header) sorts.
- Confusion: two classifier runs' test matrices side by side, or their difference (d).
- Top-3: the three likeliest languages of typed names, for every classifier run (computed in a worker).
- Samples: names sampled per language by every generator run, at the temperature and start letters typed.

The data comes from engine/experiment.py (read in a worker; the run folders are the source of truth). While
the pane shows, it looks again about once a second and redraws only when a run's files changed, so the
curves of runs still training grow as they train.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from rich.markup import escape
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, HorizontalScroll, Vertical
from textual.widgets import ContentSwitcher, DataTable, Label, Select, Static
from textual.worker import get_current_worker
from textual_plotext import PlotextPlot

from namestudio.engine import runfolder as rf
from namestudio.engine.config import MAX_TEMPERATURE, model_label

from .. import keys
from ..messages import CompareComputed, CompareLoaded
from ..plots import SMOOTHING, X_AXES, X_LABELS, background, bucket_means, colour, describe, faint, flat_limits, \
    log10_or_nan, next_in
from ..render import confusion_table, counted, difference_table, fit_cells, marked_task
from ..widgets import Choice, NAME, NUMBER, Anchor, Field, Pane, ScrollTable, compact_number, duration, \
    scroll_hint, set_select

VIEWS = ("curves", "results", "confusion", "topk", "samples")
VIEW_TITLES = {"curves": "Curves", "results": "Results", "confusion": "Confusion", "topk": "Top-3",
               "samples": "Samples"}
# the actions that only mean something in some views (hidden from the key bar elsewhere)
VIEW_ACTIONS = {"x_axis": ("curves",), "smoothing": ("curves",), "log_scale": ("curves",),
                "toggle_run": ("curves", "results"), "sort": ("results",), "toggle_difference": ("confusion",),
                "compute": ("topk", "samples"), "scroll_matrix": ("confusion",)}
MARKED = "__marked__"
LOOK_EVERY = 1.0             # seconds between two looks at the shown runs' files (while the pane shows)
LIST_EVERY = 10.0            # seconds between two listings of the experiments (also on RunsListed, o, show)
LIVE = ("starting", "running", "paused", "stopping")
DEFAULT_NAMES = "Dovesky, Jackson, Hou"
DEFAULT_LETTERS = "ABC"
# results table: (header, key of engine.experiment.results_row); the metric columns depend on the task
COMMON_COLUMNS = [("run", "label"), ("model", "model"), ("params", "params"), ("time", "train_seconds"),
                  ("names/s", "names_per_s"), ("ep→best", "epochs_to_best")]
TASK_COLUMNS = {"classify": [("acc", "test_accuracy"), ("bal acc", "test_balanced_accuracy"),
                             ("F1", "test_macro_f1")],
                "generate": [("NLL", "test_nll"), ("ppl", "test_perplexity")]}
HIGHER_IS_BETTER = {"test_accuracy", "test_balanced_accuracy", "test_macro_f1", "names_per_s"}
SORT_ORDER = ["test_accuracy", "test_balanced_accuracy", "test_macro_f1", "test_nll", "test_perplexity",
              "names_per_s", "train_seconds", "params", "epochs_to_best", "model", "label"]


def result_columns(task: str | None) -> list[tuple[str, str]]:
    """The run, its state, its test figures and the n-gram blend they include (engine/blend.py short) first,
    so that 80 columns show them whatever the run's name; the cost of the run after them, scrolled to (the
    n-gram column came last and was cut at 80 columns)."""
    run, *cost = COMMON_COLUMNS
    return [("", "swatch"), run, ("state", "state"), *TASK_COLUMNS.get(task or "classify", []),
            ("n-gram", "n_gram"), *cost]


FIXED_COLUMNS = 2    # the swatch and the run stay in view while the table scrolls to the right


def sort_rows(rows: list[dict], key: str, reverse: bool = False) -> list[dict]:
    """Rows ordered by ``key``; rows without a value go last whichever the direction."""
    have = [r for r in rows if r.get(key) is not None]
    return sorted(have, key=lambda r: r[key], reverse=reverse) + [r for r in rows if r.get(key) is None]


def parse_names(text: str) -> list[str]:
    """Names separated by commas (a name may hold spaces: "de la Cruz")."""
    return [n.strip() for n in text.split(",") if n.strip()]


def metric_key(task: str | None) -> str:
    return "val_accuracy" if task == "classify" else "val_nll"


def _files_signature(paths: list[Path]) -> tuple:
    out = []
    for p in paths:
        try:
            st = os.stat(p)
            out.append((st.st_size, st.st_mtime_ns))
        except OSError:
            out.append(None)
    return tuple(out)


def short_label(name: str, task: str | None, model: str | None) -> str:
    """A marked run's label: its model and the end of its id (the id itself names the task and model)."""
    head = name.replace(f"-{task}-{model}", "") if task and model else name
    return f"{model} {head[-6:]}" if model else name


class ComparePane(Pane):
    pane_id = "compare"
    BINDINGS = keys.COMPARE

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.source: tuple | None = None       # ("exp", folder) or ("marked", (run folders…))
        self.experiments: list[dict] = []      # rows of engine.experiment.list_experiments
        self.data: dict | None = None          # what the loader read for ``source`` (see _read)
        self.error = ""
        self.view = "curves"
        self.x_axis = "epoch"
        self.smoothing = 0.6                    # TensorBoard's default
        self.log_scale = False
        self.hidden: set[str] = set()          # run folders not drawn on the curves
        self.sort: tuple[str, bool] | None = None   # (results_row key, descending)
        self.difference = False
        self.pair: list[str | None] = [None, None]  # run folders of the confusion view's A and B
        self.shown_difference: dict | None = None   # the difference matrix on screen (labels, matrix)
        self._cm_info: Text | None = None           # the line above it, less the scroll hint
        self.topk: dict | None = None          # {"key", "rows" | "error"}
        self.samples: dict | None = None       # {"key", "tables" | "error"}
        self.plotted: dict[str, list[tuple[str, list[float], list[float]]]] = {}   # what the curves drew
        self._sig = None                       # the signature of the files behind ``data``
        self._listed = 0.0                     # when the experiments were last listed (monotonic)
        self._list_due = True
        self._drawn: set[str] = set()          # views drawn since the data or a setting last changed

    # ---- layout -------------------------------------------------------------------
    def compose_content(self) -> ComposeResult:
        with Horizontal(classes="toolbar"):
            yield Label("Show:", classes="field-label")
            yield Choice([(self._marked_label(), MARKED)], prompt="an experiment, or the marked runs",
                         allow_blank=True, compact=True, id="cmp-source")
        yield Anchor("", id="cmp-views")
        with ContentSwitcher(initial="cmp-curves", id="cmp-switch"):
            with Vertical(id="cmp-curves"):
                yield Static("", id="cmp-curves-info")
                with Horizontal(id="cmp-plots"):
                    yield PlotextPlot(id="cmp-loss")
                    yield PlotextPlot(id="cmp-metric")
                yield DataTable(id="cmp-legend", cursor_type="row", zebra_stripes=False)
            with Vertical(id="cmp-results"):
                yield Static("", id="cmp-results-info")
                yield ScrollTable(id="cmp-table", cursor_type="row", zebra_stripes=True, fixed_columns=FIXED_COLUMNS)
            with Vertical(id="cmp-confusion"):
                with Horizontal(classes="toolbar", id="cmp-pair"):
                    yield Label("A:", classes="field-label")
                    yield Choice([], prompt="run A", allow_blank=True, compact=True, id="cmp-a")
                    yield Label("B:", classes="field-label")
                    yield Choice([], prompt="run B", allow_blank=True, compact=True, id="cmp-b")
                yield Static("", id="cmp-cm-info")
                with HorizontalScroll(id="cmp-cms") as cms:   # a matrix wider than the pane scrolls (→/←)
                    cms.can_focus = False
                    yield Static("", id="cmp-cm-a")
                    yield Static("", id="cmp-cm-b")
            with Vertical(id="cmp-topk"):
                with Horizontal(classes="toolbar"):
                    yield Label("Names:", classes="field-label")
                    yield Field(DEFAULT_NAMES, accept=NAME, id="cmp-names")
                yield Static("", id="cmp-topk-out")
            with Vertical(id="cmp-samples"):
                with Horizontal(classes="toolbar", id="cmp-sample-params"):
                    yield Label("Temp:", classes="field-label")
                    yield Field("0.8", accept=NUMBER, id="cmp-temp")
                    yield Label("Start letters:", classes="field-label")
                    yield Field(DEFAULT_LETTERS, accept=NAME, id="cmp-letters")
                yield Static("", id="cmp-samples-out")

    def on_mount(self) -> None:
        self.set_interval(LOOK_EVERY, self._tick)
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._redraw(all_views=True))
        try:   # the pane reads the marked runs and looks at its runs when it is shown
            self.watch(self.app.query_one("#panes"), "active", self._pane_switched, init=False)
        except Exception:
            pass

    def on_built(self) -> None:
        self._apply_experiments()
        self._show_view()
        self._shown()

    def focus_default(self) -> None:
        if self.view == "curves":
            self.query_one("#cmp-legend", DataTable).focus()
        elif self.view == "results":
            self.query_one("#cmp-table", DataTable).focus()
        else:
            self.focus_anchor()

    @property
    def run_path(self) -> Path | None:
        return Path(self.source[1]) if self.source and self.source[0] == "exp" else None

    def _visible(self) -> bool:
        try:
            return self.app.query_one("#panes").active == self.pane_id
        except Exception:
            return True

    # ---- what to show -------------------------------------------------------------
    def set_runs(self, runs: list[dict]) -> None:
        """The follower listed the checkpoints folder again (tui/follow.py): an experiment may have come."""
        self._list_due = True

    def _marked(self) -> tuple[str, ...]:
        """The runs marked on the Runs pane, in its order (newest first)."""
        try:
            runs = self.app.pane("runs")
            listed = [r["path"] for r in runs.runs if r["path"] in runs.marked]
            return tuple(listed + sorted(runs.marked - set(listed)))
        except Exception:
            return ()

    def _marked_label(self) -> str:
        n = len(self._marked()) if self.is_mounted else 0
        return f"runs marked on the Runs pane ({n})"

    def _pane_switched(self, active) -> None:
        if active == self.pane_id and self.built:
            # after the layout: a pane built while hidden (the app builds them all at start-up) has no size yet,
            # and the curves are averaged down to the plot's width
            self.call_after_refresh(self._shown)

    def on_resize(self, event) -> None:
        if self.built and "curves" in self._drawn:
            self._drawn.discard("curves")     # averaged to the old width
            self._redraw()
        if self.shown_difference is not None:   # a wider or narrower view shows other columns
            self.call_after_refresh(self._matrix_hint)

    def _shown(self) -> None:
        """The pane is shown: follow the Runs pane's marks when they are the source, look at the runs now."""
        if self.source and self.source[0] == "marked":
            marked = self._marked()
            if marked != self.source[1]:       # none marked now: the pane says so, not the runs marked before
                self.set_source(("marked", marked))
        self._list_due = True
        self._apply_experiments()
        self._redraw()
        self._load()

    def set_source(self, source: tuple | None) -> None:
        if source == self.source:
            return
        self.source, self.data, self.error, self._sig = source, None, "", None
        self.hidden, self.pair, self.topk, self.samples = set(), [None, None], None, None
        self.shown_difference = None
        self._drawn.clear()
        if self.built:
            value = MARKED if source and source[0] == "marked" else (source[1] if source else None)
            set_select(self.query_one("#cmp-source", Select), value=value)
            self._redraw()
        self._load()

    def _tick(self) -> None:
        if self.built and self._visible() and not self._loading():
            self._load()

    def _loading(self) -> bool:
        """A read of the runs is still under way. The tick waits for it: a thread worker cannot be stopped, so
        replacing it each second threw away every read of long runs (1.9-7 s each) and piled the threads up."""
        return any(w.group == "compare-load" and w.node is self and not w.is_finished for w in self.app.workers)

    def _load(self) -> None:
        if not self.built or not self.is_mounted:
            return
        list_exps = self._list_due or time.monotonic() - self._listed > LIST_EVERY
        known = {r["path"]: r for r in self.data["runs"]} if self.data else {}
        self._loader(self.source, list_exps, self._sig, known, str(getattr(self.app, "checkpoints", "checkpoints")))

    @work(thread=True, exclusive=True, group="compare-load", exit_on_error=False)
    def _loader(self, source: tuple | None, list_exps: bool, last_sig, known: dict, checkpoints: str) -> None:
        from namestudio.data.errors import NamestudioError
        from namestudio.engine import experiment as ex

        worker = get_current_worker()
        exps = None
        if list_exps:
            try:
                exps = ex.list_experiments(checkpoints)
            except Exception:        # an unreadable folder lists nothing (this runs every few seconds)
                exps = []
        data, error = None, ""
        if source is not None:
            try:
                data = read_source(source, last_sig, known)
            except NamestudioError as e:
                error = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            except Exception as e:   # a line on the pane, never an error box each second
                error = f"cannot read {Path(source[1]).name if source[0] == 'exp' else 'the marked runs'}: " \
                        f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
        if not worker.is_cancelled:
            self.post_message(CompareLoaded(source, exps, data, error))

    def on_compare_loaded(self, msg: CompareLoaded) -> None:
        msg.stop()
        if msg.experiments is not None:
            self.experiments = msg.experiments
            self._listed, self._list_due = time.monotonic(), False
            self._apply_experiments()
            if self.source is None:
                self._choose_default()
        if msg.source != self.source or msg.source is None:
            return
        if msg.error:
            if msg.error != self.error:
                self.error, self.data, self._sig = msg.error, None, None
                self._drawn.clear()
                self._redraw()
            return
        if msg.data is not None:
            self.error = ""
            self.data, self._sig = msg.data, msg.data["sig"]
            self._data_changed()

    def _choose_default(self) -> None:
        """At first: the newest experiment, else the marked runs."""
        good = [e for e in self.experiments if e.get("state") != "damaged"]
        if good:
            self.set_source(("exp", good[0]["path"]))
        elif self._marked():
            self.set_source(("marked", self._marked()))
        else:
            self._redraw()

    def _apply_experiments(self) -> None:
        if not self.built:
            return
        options = [(self._marked_label(), MARKED)]
        for e in self.experiments:
            if e.get("state") == "damaged":
                continue
            state = rf.stopped_word(e.get("state"))
            options.append((f"{e['id']} · {e.get('done', 0)}/{e.get('runs', 0)} done · {state}", e["path"]))
        value = MARKED if self.source and self.source[0] == "marked" else (self.source[1] if self.source else None)
        select = self.query_one("#cmp-source", Select)
        if [(str(p), v) for p, v in options] != [(str(p), v) for p, v in select._options if v != Select.NULL]:
            set_select(select, options, value)
        elif value is not None and select.value != value:
            set_select(select, value=value)

    @on(Select.Changed, "#cmp-source")
    def _source_chosen(self, event: Select.Changed) -> None:
        value = event.select.value
        if value == Select.NULL:
            return
        if value == MARKED:
            if self.source and self.source[0] == "marked":
                return
            marked = self._marked()
            if not marked:
                self.app.notify("No runs are marked: mark runs on the Runs pane (6) with space.",
                                severity="warning")
            self.set_source(("marked", marked))
        elif not (self.source and self.source == ("exp", value)):
            self.set_source(("exp", str(value)))

    # ---- drawing ------------------------------------------------------------------
    def runs(self, task: str | None = None) -> list[dict]:
        """The shown runs (of ``task`` when given), in the experiment's (or the marks') order."""
        rows = self.data["runs"] if self.data else []
        return [r for r in rows if task is None or r["task"] == task]

    def _data_changed(self) -> None:
        paths = {r["path"] for r in self.runs()}
        self.hidden &= paths
        self._drawn.clear()
        self._redraw()

    def _redraw(self, all_views: bool = False) -> None:
        """Draw the views that changed (the shown one now; the others when they are shown)."""
        if not self.built or not self.is_mounted:
            return
        if all_views:
            self._drawn.clear()
        self._title()
        if self.view in self._drawn or not self._visible():
            return
        self._drawn.add(self.view)
        {"curves": self._draw_curves, "results": self._draw_results, "confusion": self._draw_confusion,
         "topk": self._draw_topk, "samples": self._draw_samples}[self.view]()

    def _title(self) -> None:
        bar = Text()
        for v in VIEWS:
            bar.append(f" {VIEW_TITLES[v]} ", "reverse bold" if v == self.view else "dim")
        bar.append("  v: next view", "dim")
        what = ""
        if self.error:
            what = self.error
        elif self.source is None:
            what = "no experiment yet"
        elif self.data is None:
            what = "reading …"
        else:
            d = self.data
            n = len(d["runs"])
            live = sum(r["state"] in LIVE for r in d["runs"])
            what = f"{d.get('task') or '?'} · {n} run{'s' if n != 1 else ''}"
            what += f" · {live} training" if live else ""
        bar.append(" · " + what, "red" if self.error else "")
        self.query_one("#cmp-views", Static).update(bar)

    def _empty_note(self) -> str | None:
        """Why there is nothing to draw, or None."""
        if self.error:
            return self.error
        if self.source is None:
            return ("No experiment yet: run `namestudio compare --models rnn,lstm --epochs 3` (the runs train as "
                    "their own processes), or mark runs on the Runs pane (6, space) and press u.")
        if self.source[0] == "marked" and not self.source[1]:
            return "No runs are marked: mark runs on the Runs pane (6) with space, then press u here."
        if self.data is None:
            return "Reading the runs …"
        if not self.data["runs"]:
            return "No run has started yet: their folders appear as they start."
        return None

    def _task_note(self, needs: str, what: str, see: str) -> str:
        """Why a view of one task (``needs``) shows nothing: the runs are of the other task; or, for marked runs of
        both, Compare shows the task most of them have, and the others are left out (it said "these runs are
        generators" of a marked classifier)."""
        kind = {"classify": "classifier", "generate": "generator"}
        shown = (self.data or {}).get("task")
        skipped = (self.data or {}).get("skipped") or 0
        if skipped and shown in kind and shown != needs:
            return (f"{what} for {kind[needs]}s: Compare shows one task at a time, here the {kind[shown]}s (most of "
                    f"the runs marked); unmark them on Runs (6) to compare the {counted(skipped, kind[needs])} marked.")
        return f"{what} for {kind[needs]}s: these runs are {kind.get(shown, 'other run')}s{see}."

    # ---- Curves -------------------------------------------------------------------
    def _draw_curves(self) -> None:
        from namestudio.engine.experiment import curve_points

        note = self._empty_note()
        task = self.data.get("task") if self.data else None
        info = describe(self.x_axis, self.smoothing, self.log_scale) + " · h hides a run"
        if self.data and self.data.get("skipped"):
            info += f" · {self.data['skipped']} run(s) of the other task left out"
        self.query_one("#cmp-curves-info", Static).update(Text(note or info, style="red" if self.error else "dim"))
        self.plotted = {"loss": [], "metric": [], "loss raw": [], "metric raw": []}
        plots = {"loss": self.query_one("#cmp-loss", PlotextPlot), "metric": self.query_one("#cmp-metric", PlotextPlot)}
        ema = f" · EMA {self.smoothing:g}" if self.smoothing else ""
        metric_name = "val accuracy" if task == "classify" else "val NLL"
        log_metric = self.log_scale and task != "classify"
        titles = {"loss": ("log10 " if self.log_scale else "") + "train loss" + ema,
                  "metric": ("log10 " if log_metric else "") + metric_name + ema}
        for name, plot in plots.items():
            plt = plot.plt
            plt.clear_figure()
            plt.title(titles[name])
            plt.xlabel(X_LABELS[self.x_axis])
            y = "loss" if name == "loss" else metric_key(task)
            use_log = self.log_scale if name == "loss" else log_metric
            f = log10_or_nan if use_log else (lambda v: v)
            most = 2 * max(10, plot.size.width - 8)
            bg = background(plot)
            for i, r in enumerate(self.runs()):
                if r["path"] in self.hidden:
                    continue
                lines = []
                if self.smoothing:
                    lines.append((name + " raw", curve_points(r["curves"], y, self.x_axis, 0.0), faint(colour(i), bg)))
                lines.append((name, curve_points(r["curves"], y, self.x_axis, self.smoothing), colour(i)))
                for kind, pts, rgb in lines:
                    xs, ys = bucket_means([p[0] for p in pts], [p[1] for p in pts], most)
                    ys = [f(v) for v in ys]
                    self.plotted[kind].append((r["label"], list(xs), ys))
                    if xs:
                        plt.plot(xs, ys, marker="braille", color=rgb)
            limits = flat_limits([v for kind in (name, name + " raw") for _, _, ys in self.plotted[kind] for v in ys])
            if limits:
                plt.ylim(*limits)
            plot.refresh()
        self._fill_legend()

    def _fill_legend(self) -> None:
        table = self.query_one("#cmp-legend", DataTable)
        task = self.data.get("task") if self.data else None
        heads = [("", "swatch"), ("run", "run"), ("state", "state"), ("epoch", "epoch"),
                 ("val acc" if task == "classify" else "val NLL", "val"), ("best", "best")]
        keep = self._cursor_key(table)
        rows = []
        for i, r in enumerate(self.runs()):
            evals = r["curves"].get("evals") or []
            key = metric_key(task)
            vals = [e[key] for e in evals if isinstance(e.get(key), (int, float))]
            last_epoch = next((e["epoch"] for e in reversed(evals) if isinstance(e.get("epoch"), (int, float))), None)
            steps = r["curves"].get("steps") or []
            if steps and isinstance(steps[-1].get("epoch"), (int, float)):
                last_epoch = max(last_epoch or 0.0, steps[-1]["epoch"])
            best = (max(vals) if task == "classify" else min(vals)) if vals else None
            kept = (r.get("row") or {}).get("val_kept")   # the model the run keeps, with its n-gram LM: as Runs says
            best = kept if isinstance(kept, (int, float)) else best
            rows.append(((self._swatch(i, r), Text(str(r["label"])), state_text(r["state"]),
                          f"{last_epoch:.2f}" if last_epoch is not None else "",
                          f"{vals[-1]:.3f}" if vals else "", f"{best:.3f}" if best is not None else ""), r["path"]))
        table.clear(columns=True)
        for c, (label, key) in enumerate(heads):     # fixed widths: the widths measured as cells arrive came out
            width = max([len(label)] + [len(str(cells[c])) for cells, _ in rows])    # different now and then
            table.add_column(label, key=key, width=max(1, width))
        for cells, path in rows:
            table.add_row(*cells, key=path)
        if keep is not None and keep in {r["path"] for r in self.runs()}:
            table.move_cursor(row=table.get_row_index(keep))

    def _swatch(self, i: int, r: dict) -> Text:
        rgb = colour(i)
        if r["path"] in self.hidden:
            return Text("○", style="dim")
        return Text("●", style=f"bold rgb({rgb[0]},{rgb[1]},{rgb[2]})")

    @staticmethod
    def _cursor_key(table: DataTable) -> str | None:
        if not table.row_count or not 0 <= table.cursor_row < table.row_count:
            return None
        return table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value

    # ---- Results ------------------------------------------------------------------
    def _draw_results(self) -> None:
        table = self.query_one("#cmp-table", DataTable)
        task = self.data.get("task") if self.data else None
        columns = result_columns(task)
        keep = self._cursor_key(table)
        table.clear(columns=True)
        for label, key in columns:
            arrow = ""
            if self.sort and self.sort[0] == key:
                arrow = " ↓" if self.sort[1] else " ↑"
            table.add_column(label + arrow, key=key)
        order = {r["path"]: i for i, r in enumerate(self.runs())}
        rows = [dict(r["row"], path=r["path"], state=r["state"]) for r in self.runs()]
        if self.sort:
            rows = sort_rows(rows, *self.sort)
        for row in rows:
            cells = [self._swatch(order[row["path"]], {"path": row["path"]})]
            for _, key in columns[1:]:
                cells.append(result_cell(key, row))
            table.add_row(*cells, key=row["path"])
        if keep is not None and keep in order:
            table.move_cursor(row=table.get_row_index(keep))
        self._results_info()

    @on(ScrollTable.Resized, "#cmp-table")
    def _results_info(self) -> None:
        """The lines above the results: the split and the order; and the columns past the table's right edge,
        with the way to them."""
        note = self._empty_note()
        if note:
            text = Text(note, style="red" if self.error else "dim")
        else:
            heads = dict((k, h) for h, k in result_columns(self.data.get("task") if self.data else None))
            how = (f"sorted by {heads.get(self.sort[0], self.sort[0])} "
                   f"{'(highest first)' if self.sort[1] else '(lowest first)'}" if self.sort else "in run order")
            text = Text(f"test split · {how} · s sorts (or click a header)", style="dim")
            hidden = self.query_one("#cmp-table", ScrollTable).offscreen()
            if hidden:
                text.append("\n").append_text(scroll_hint(hidden))
        info = self.query_one("#cmp-results-info", Static)
        if str(info.content) != str(text):       # the same: no new layout (which would resize the table again)
            info.update(text)

    def shown_order(self) -> list[str]:
        """The run labels in the results table's order (top to bottom)."""
        table = self.query_one("#cmp-table", DataTable)
        labels = {r["path"]: r["label"] for r in self.runs()}
        return [labels[table.coordinate_to_cell_key((i, 0)).row_key.value] for i in range(table.row_count)]

    @on(DataTable.HeaderSelected, "#cmp-table")
    def _header_clicked(self, event: DataTable.HeaderSelected) -> None:
        key = event.column_key.value
        if key == "swatch" or key is None:
            return
        if self.sort and self.sort[0] == key:
            self.sort = (key, not self.sort[1])
        else:
            self.sort = (key, key in HIGHER_IS_BETTER)
        self._redraw_view()

    # ---- Confusion ----------------------------------------------------------------
    def _draw_confusion(self) -> None:
        runs = [r for r in self.runs("classify") if r.get("confusion")]
        options = [(r["label"], r["path"]) for r in runs]
        paths = [p for _, p in options]
        a, b = self.pair
        if a not in paths:
            a = paths[0] if paths else None
        if b not in paths or b == a and len(paths) > 1:
            b = next((p for p in paths if p != a), None)
        self.pair = [a, b]
        self.query_one("#cmp-pair").display = bool(runs)
        set_select(self.query_one("#cmp-a", Select), options, a)
        set_select(self.query_one("#cmp-b", Select), options, b)
        info = self.query_one("#cmp-cm-info", Static)
        left, right = self.query_one("#cmp-cm-a", Static), self.query_one("#cmp-cm-b", Static)
        self.shown_difference = None
        note = self._empty_note()
        if note is None and not runs:
            note = (self._task_note("classify", "Confusion matrices are", "") if self.data and
                    self.data.get("task") == "generate" else "No classifier run has an evaluation yet.")
        if note:
            info.update(Text(note, style="red" if self.error else "dim"))
            left.update("")
            right.update("")
            return
        by_path = {r["path"]: r for r in runs}
        ra, rb = by_path[a], by_path.get(b)
        dark = getattr(self.app.current_theme, "dark", True)
        if self.difference and rb is not None:
            from namestudio.engine.experiment import ExperimentError, confusion_difference

            try:
                diff = confusion_difference(ra["confusion"], rb["confusion"])
            except ExperimentError as e:
                info.update(Text(str(e), style="red"))
                left.update("")
                right.update("")
                return
            self.shown_difference = diff
            self._cm_info = Text(f"A − B, row percentage points ({ra['label']} minus {rb['label']}): green where A "
                                 "does better, red where it does worse · d: side by side", style="dim")
            info.update(self._cm_info)
            left.update(difference_table(diff["matrix"], diff["labels"], dark=dark, corner="true\\pred"))
            right.update("")
            right.display = False
            self._stack(False)
            self.call_after_refresh(self._matrix_hint)
            return
        right.display = rb is not None
        info.update(Text("rows true, columns predicted, row % · d: the difference A − B" if rb is not None else
                         "one classifier run with an evaluation: nothing to set beside it", style="dim"))
        tables = [confusion_table(r["confusion"]["matrix"], r["confusion"]["labels"], dark=dark, corner="",
                                  title=f"{side}: {escape(str(r['label']))} ({r['confusion']['split']})")
                  for side, r in (("A", ra), ("B", rb)) if r is not None]
        left.update(tables[0])
        if rb is not None:
            right.update(tables[1])
        # side by side when both fit (their cells' own widths, which the percentages set), else one above the other
        widths = [self.app.console.measure(t).maximum + 2 for t in tables]
        self._stack(rb is not None and sum(widths) > self.size.width - 2)

    def _stack(self, stacked: bool) -> None:
        self.query_one("#cmp-cms").set_class(stacked, "-stacked")

    def _hidden_difference_columns(self) -> list[str]:
        """The labels of the difference table's columns that end past the view's right edge (as scrolled)."""
        diff = self.shown_difference
        if not diff:
            return []
        cms = self.query_one("#cmp-cms", HorizontalScroll)
        table = self.query_one("#cmp-cm-a", Static).content
        if not isinstance(table, Table) or not cms.scrollable_content_region.width:
            return []
        try:        # Rich's own measure of each column (private: a Rich that renames it loses the hint, nothing else)
            widths = table._calculate_column_widths(self.app.console, self.app.console.options.update_width(10_000))
        except (AttributeError, TypeError):
            return []
        edge = cms.scroll_x + cms.scrollable_content_region.width
        right, hidden = widths[0], []
        for label, w in zip(diff["labels"], widths[1:]):
            right += w
            if right > edge:
                hidden.append(str(label))
        return hidden

    def _matrix_hint(self) -> None:
        """The line above the difference table, with the columns past its right edge and the way to them."""
        if self.shown_difference is None or self._cm_info is None:
            return
        text = self._cm_info.copy()
        hidden = self._hidden_difference_columns()
        if hidden:
            text.append("\n").append_text(scroll_hint(hidden))
        info = self.query_one("#cmp-cm-info", Static)
        if str(info.content) != str(text):
            info.update(text)

    def action_scroll_matrix(self, step: int) -> None:
        """→/← in the Confusion view: the matrices scroll by a few columns."""
        cms = self.query_one("#cmp-cms", HorizontalScroll)
        cms.scroll_relative(x=step * 5, animate=False, immediate=True)
        self.call_after_refresh(self._matrix_hint)

    @on(Select.Changed, "#cmp-a")
    @on(Select.Changed, "#cmp-b")
    def _pair_chosen(self, event: Select.Changed) -> None:
        value = event.select.value
        i = 0 if event.select.id == "cmp-a" else 1
        if value == Select.NULL or value == self.pair[i]:
            return
        self.pair[i] = str(value)
        self._redraw_view()

    # ---- Top-3 --------------------------------------------------------------------
    def _topk_key(self) -> tuple:
        return (self.source, tuple(parse_names(self.query_one("#cmp-names", Field).value)))

    def _draw_topk(self) -> None:
        self._draw_computed("#cmp-topk-out", "classify", self._task_note("classify", "Top-3 is", " (see Samples)"),
                            self.topk, self._topk_key(), self.compute_topk, "rows",
                            lambda rows, runs: topk_renderable(rows, [r["label"] for r in runs]))

    def _draw_computed(self, out_id: str, task: str, other_task: str, state: dict | None, key: tuple, compute,
                       part: str, render) -> None:
        """Top-3 and Samples: a note when there is nothing to show, the worker's result when it is for ``key``
        (``compute`` asks for it otherwise), its error, or "Loading" while it runs."""
        out = self.query_one(out_id, Static)
        note = self._empty_note()
        runs = self.runs(task)
        if note is None and not runs:
            note = other_task
        if note:
            out.update(Text(note, style="red" if self.error else "dim"))
            return
        if state is None or state["key"] != key:
            compute()
            return
        if state.get("error"):
            out.update(Text(state["error"], style="red"))
            return
        if state.get(part) is None:
            out.update(Text("Loading the runs' weights …", style="dim"))
            return
        out.update(render(state[part], runs))

    def compute_topk(self) -> None:
        names = parse_names(self.query_one("#cmp-names", Field).value)
        key = self._topk_key()
        out = self.query_one("#cmp-topk-out", Static)
        if not names:
            self.topk = {"key": key, "error": "Type names separated by commas, e.g. Dovesky, Jackson, Hou."}
            out.update(Text(self.topk["error"], style="red"))
            return
        runs = [(r["label"], r["path"]) for r in self.runs("classify")]
        if not runs:
            return
        self.topk = {"key": key, "rows": None}
        out.update(Text(f"Loading {len(runs)} run{'s' if len(runs) != 1 else ''} …", style="dim"))
        self._topk_worker(key, runs, names)

    @work(thread=True, exclusive=True, group="compare-topk", exit_on_error=False)
    def _topk_worker(self, key: tuple, runs: list[tuple[str, str]], names: list[str]) -> None:
        from namestudio.engine.experiment import topk_table

        worker = get_current_worker()
        try:
            rows, error = topk_table([(label, Path(p)) for label, p in runs], names, 3), ""
        except Exception as e:   # a run that cannot be read is a line on the pane, never a crash
            rows, error = None, str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if not worker.is_cancelled:
            self.post_message(CompareComputed("topk", key, rows, error))

    # ---- Samples ------------------------------------------------------------------
    def _samples_settings(self) -> tuple[float | None, str, str]:
        """(temperature, start letters, error)."""
        text = self.query_one("#cmp-temp", Field).value.strip()
        letters = "".join(c for c in self.query_one("#cmp-letters", Field).value if not c.isspace())
        try:
            temperature = float(text)
        except ValueError:
            return None, letters, f"Temperature: {text!r} is not a number (0 is greedy; 0.8 is usual)."
        if not 0 <= temperature <= MAX_TEMPERATURE:      # as Generate and `sample` take it
            return None, letters, f"Temperature: give a number from 0 (greedy) to {MAX_TEMPERATURE:g}."
        if not letters:
            return temperature, letters, "Start letters: type one or more, e.g. ABC."
        if len(letters) > 12:
            return temperature, letters, "Start letters: at most 12."
        return temperature, letters, ""

    def _samples_key(self) -> tuple:
        return (self.source, self.query_one("#cmp-temp", Field).value.strip(),
                self.query_one("#cmp-letters", Field).value.strip())

    def _draw_samples(self) -> None:
        self._draw_computed("#cmp-samples-out", "generate", self._task_note("generate", "Samples are", " (see Top-3)"),
                            self.samples, self._samples_key(), self.compute_samples, "tables",
                            lambda tables, runs: samples_renderable(tables))

    def compute_samples(self) -> None:
        temperature, letters, error = self._samples_settings()
        key = self._samples_key()
        out = self.query_one("#cmp-samples-out", Static)
        if error:
            self.samples = {"key": key, "error": error}
            out.update(Text(error, style="red"))
            return
        runs = [(r["label"], r["path"]) for r in self.runs("generate")]
        if not runs:
            return
        self.samples = {"key": key, "tables": None}
        out.update(Text(f"Sampling from {len(runs)} run{'s' if len(runs) != 1 else ''} …", style="dim"))
        self._samples_worker(key, runs, temperature, letters)

    @work(thread=True, exclusive=True, group="compare-samples", exit_on_error=False)
    def _samples_worker(self, key: tuple, runs: list[tuple[str, str]], temperature: float, letters: str) -> None:
        from namestudio.engine.experiment import samples_table

        worker = get_current_worker()
        tables = []
        for label, path in runs:
            try:
                tables.append((label, samples_table(Path(path), temperature, letters, n=1, seed=0), ""))
            except Exception as e:   # one run that cannot be read: its own line
                tables.append((label, None, str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__))
            if worker.is_cancelled:
                return
        self.post_message(CompareComputed("samples", key, tables, ""))

    def on_compare_computed(self, msg: CompareComputed) -> None:
        msg.stop()
        state = self.topk if msg.kind == "topk" else self.samples
        if state is None or state["key"] != msg.key:
            return                                 # settings changed meanwhile: a newer result comes
        if msg.error:
            state["error"] = msg.error
        else:
            state["rows" if msg.kind == "topk" else "tables"] = msg.result
        self._drawn.discard(msg.kind)
        self._redraw()

    @on(Field.Submitted, "#cmp-names")
    @on(Field.Submitted, "#cmp-temp")
    @on(Field.Submitted, "#cmp-letters")
    def _submitted(self) -> None:
        self.action_compute()

    # ---- actions ------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        views = VIEW_ACTIONS.get(action)
        if views is not None and self.view not in views:
            return False
        return True

    def _show_view(self) -> None:
        self.query_one("#cmp-switch", ContentSwitcher).current = f"cmp-{self.view}"
        self.refresh_bindings()
        self._redraw()

    def _redraw_view(self) -> None:
        self._drawn.discard(self.view)
        self._redraw()

    def show_view(self, view: str) -> None:
        self.view = view
        self._show_view()
        self.focus_default()

    def action_next_view(self) -> None:
        self.show_view(next_in(VIEWS, self.view))

    def action_choose_source(self) -> None:
        self._list_due = True
        self._load()
        select = self.query_one("#cmp-source", Select)
        select.focus()
        select.expanded = True

    def action_use_marked(self) -> None:
        marked = self._marked()
        if not marked:
            self.app.notify("No runs are marked: mark runs on the Runs pane (6) with space.", severity="warning")
            return
        self.set_source(("marked", marked))

    def action_x_axis(self) -> None:
        self.x_axis = next_in(X_AXES, self.x_axis)
        self._redraw_view()

    def action_smoothing(self) -> None:
        self.smoothing = next_in(SMOOTHING, self.smoothing)
        self._redraw_view()

    def action_log_scale(self) -> None:
        self.log_scale = not self.log_scale
        self._redraw_view()

    def action_toggle_run(self) -> None:
        table = self.query_one("#cmp-legend" if self.view == "curves" else "#cmp-table", DataTable)
        path = self._cursor_key(table)
        if path is None:
            return
        self.hidden ^= {path}
        self._drawn.discard("curves")
        self._drawn.discard("results")
        self._redraw()

    def action_sort(self) -> None:
        columns = [k for _, k in result_columns(self.data.get("task") if self.data else None)]
        order = [k for k in SORT_ORDER if k in columns]
        key = next_in(tuple(order), self.sort[0] if self.sort else None)
        self.sort = (key, key in HIGHER_IS_BETTER)
        self._redraw_view()

    def action_toggle_difference(self) -> None:
        self.difference = not self.difference
        self._redraw_view()

    def action_compute(self) -> None:
        if self.view == "topk":
            self.compute_topk()
        elif self.view == "samples":
            self.compute_samples()


# ---- reading (in the loader's thread) ----------------------------------------------------------
def read_source(source: tuple, last_sig=None, known: dict | None = None) -> dict | None:
    """The shown runs' data: {"sig", "task", "runs": [{"label", "path", "task", "state", "row", "curves",
    "confusion", "sig"}], "skipped", "live"}; None when no file changed since ``last_sig``. A run of ``known``
    (the last data's runs, by path) whose files did not change is kept as it was, not read again: while one
    run trains, only its files are read each time."""
    from namestudio.data.errors import NamestudioError
    from namestudio.engine import experiment as ex

    kind, what = source
    if kind == "exp":
        doc = ex.read_experiment(what)
        runs = [(r["dir"], Path(r["path"])) for r in doc["runs"] if Path(r["path"]).is_dir()]
        task = doc.get("task")
        head = (doc.get("state"), _files_signature([Path(what) / ex.EXPERIMENT]))
    else:
        runs = [(Path(p).name, Path(p)) for p in what if Path(p).is_dir()]
        task, head = None, None
    run_sigs = []
    for _, d in runs:
        try:
            st = rf.read_status(d)
            state = (st.state, st.live, st.stale)      # a trainer that died is stale without a file changing
        except NamestudioError:
            state = ("damaged",)
        run_sigs.append((state, _files_signature([d / f for f in (rf.STATUS, rf.CONFIG, rf.STEPS, rf.METRICS,
                                                                    rf.TEST)])))
    sig = (tuple(str(d) for _, d in runs), head, tuple(run_sigs))
    if sig == last_sig:
        return None
    out, skipped = [], 0
    for (label, d), run_sig in zip(runs, run_sigs):
        old = (known or {}).get(str(d))
        if old is not None and old["sig"] == run_sig:
            entry = dict(old)                          # unchanged: not read again
        else:
            row = ex.results_row(d, label)
            if kind == "marked":
                label = short_label(d.name, row.get("task"), row.get("model"))
            try:
                cm = ex.confusion(d) if row.get("task") == "classify" else None
            except NamestudioError:
                cm = None
            entry = {"base": label, "path": str(d), "task": row.get("task"), "state": row.get("state") or "",
                     "row": row, "curves": ex.curves(d), "confusion": cm, "sig": run_sig}
        out.append(entry)
    if kind == "marked":          # marked runs of both tasks: the one the Runs overlay draws (most, else newest)
        task = marked_task([r["task"] for r in out])          # (in the Runs pane's order: newest first)
        skipped = sum(1 for r in out if r["task"] not in (None, task))
        out = [r for r in out if r["task"] in (None, task)]
    bases = [r["base"] for r in out]
    for r in out:                                      # two marked runs with one label: their full ids
        r["label"] = r["base"] if bases.count(r["base"]) == 1 else Path(r["path"]).name
        r["row"] = dict(r["row"], label=r["label"])
    return {"sig": sig, "task": task, "runs": out, "skipped": skipped,
            "live": any(r["state"] in LIVE for r in out)}


# ---- cells and tables ----------------------------------------------------------------------------
def state_text(state: str) -> Text:
    """A run's state; a run stopped before its end is "stopped", as the Runs pane words it."""
    state = rf.stopped_word(state)
    style = {"running": "bold green", "starting": "green", "paused": "yellow", "stopping": "yellow",
             "failed": "bold red", "stale": "bold red", "damaged": "red", rf.STOPPED: "dim"}.get(state, "")
    return Text(state or "", style=style)


def result_cell(key: str, row: dict):
    v = row.get(key)
    if key == "state":
        return state_text(row.get("state") or "")
    if v is None:
        return Text("–", style="dim", justify="right") if key not in ("label", "model") else ""
    if key == "model":
        return Text(model_label(v, row.get("members")))
    if key == "params":
        return Text(compact_number(v), justify="right")
    if key == "train_seconds":
        return Text(duration(v), justify="right")
    if key == "names_per_s":
        return Text(f"{v:,.0f}", justify="right")
    if key == "epochs_to_best":
        return Text(f"{v:.2f}", justify="right")
    if isinstance(v, float):
        return Text(f"{v:.3f}", justify="right")
    return Text(str(v))           # a run's label: its folder's name, never markup


TOPK_NAME_WIDTH = 16    # the Top-3 table's name column at its widest


def topk_renderable(rows: list[dict], labels: list[str]):
    """Names down, runs across; each cell the three likeliest languages with their probabilities. A run that
    could not be loaded says why once, under the table."""
    from rich.console import Group

    names = list(dict.fromkeys(r["name"] for r in rows))
    table = Table(show_edge=False, header_style="bold", padding=(0, 1), pad_edge=False)
    # a long name is cut (…) so that the runs' columns stay whole; the model reads 64 letters of it at most
    table.add_column("name", no_wrap=True, style="bold", max_width=TOPK_NAME_WIDTH, overflow="ellipsis")
    runs = [lab for lab in labels if any(r["label"] == lab for r in rows)]
    by = {(r["label"], r["name"]): r for r in rows}
    broken = {lab: next(r["error"] for r in rows if r["label"] == lab) for lab in runs   # the run, not a name:
              if any(r.get("broken") for r in rows if r["label"] == lab)}   # names it cannot read are each said
    for lab in runs:
        table.add_column(escape(lab), no_wrap=True)      # a run's label: text, never markup
    name_notes: list[str] = []
    for n in names:
        cells = []
        for lab in runs:
            r = by.get((lab, n))
            if r is None:
                cells.append("")
            elif lab in broken:
                cells.append(Text("cannot load", style="red"))
            elif r.get("error"):
                cells.append(Text("error", style="red"))
                if f"{n}: {r['error']}" not in name_notes:
                    name_notes.append(f"{n}: {r['error']}")
            else:
                cells.append(Text("\n".join(f"{fit_cells(lang, 10)} {p:.2f}" for lang, p in r["top"])))
        table.add_row(Text(n), *cells)
    notes = [Text(f"{lab}: {error}", style="red") for lab, error in broken.items()]
    notes += [Text(line, style="red") for line in name_notes]
    return Group(table, *notes) if notes else table


def samples_renderable(tables: list[tuple[str, dict | None, str]]):
    """Languages down, runs across; each cell one name per start letter."""
    from rich.console import Group

    table = Table(show_edge=False, header_style="bold", padding=(0, 1), pad_edge=False)
    table.add_column("language", no_wrap=True, style="bold")
    languages: list[str] = []
    notes: list[str] = []
    for label, t, error in tables:
        table.add_column(escape(label))
        if error:
            notes.append(f"{label}: {error}")
            continue
        for r in t["rows"]:
            if r["language"] not in languages:
                languages.append(r["language"])
        notes += [f"{label}: {n}" for n in t.get("notes", [])]
    for lang in languages:
        cells = []
        for _, t, error in tables:
            row = next((r for r in t["rows"] if r["language"] == lang), None) if t else None
            cells.append(Text(" ".join(name for letter in t["letters"] for name in row["samples"].get(letter, [])))
                         if row else "")
        table.add_row(Text(lang), *cells)
    if tables and tables[0][1] is not None:
        first = tables[0][1]
        caption = Text(f"temperature {first.get('temperature', 0):g} · one name per start letter "
                       f"({''.join(first['letters'])})", style="dim")
    else:
        caption = Text("")
    return Group(caption, table, *(Text(n, style="yellow") for n in notes))
