"""Evaluate pane: the confusion matrix as a coloured table, per-class metrics and the headline figures;
or the reliability diagram (confidence against accuracy, ECE before and after temperature scaling).

It follows the attached run live (each evaluation in its metrics.jsonl, read by tui/follow.py) or shows a
saved classifier run's test split, or that run tested on another labelled source (d: builtin, pytorch-names or a
path; x leaves out the names of its training split; t goes back to its test split). Each evaluation's tables
are rendered once and cached (per view, counts/percent and theme), and only while the pane shows: a pane
switch does not rebuild them. What needs the model (reliability bins, another source) runs in workers.
"""
from __future__ import annotations

from pathlib import Path

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, Select, Static
from textual.worker import get_current_worker

from namestudio.engine.blend import headline as blend_headline
from namestudio.engine.experiment import run_name

from .. import keys
from ..messages import CalibrationReady, RunMetrics, SourceEvaluated
from ..render import DrawnTable, confusion_tables, counted, per_class_table, reliability_table
from ..widgets import Choice, ANY, Anchor, Field, Pane, set_select, short_path, short_run, usable



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
        self.live_generator: str | None = None                 # the followed run, when it is a generator
        self.shown_run: str | None = None                      # run folder of what is shown
        self.selected_run: str | None = None                   # the saved run chosen (None: live)
        self.options: list[tuple[str, str]] = []               # classifier runs to choose from
        self.live_labels: list[str] = []                       # labels of the attached run (config.json)
        self._cache: dict = {}                                 # (id(metrics), percent, dark) -> renderables
        self._shown_key = None                                 # the key of what the widgets show now
        self._stale = False                                    # new metrics wait for the pane to show
        # model quality (issue 9)
        self.view = "confusion"                                # or "reliability" (r)
        self.own: tuple | None = None                          # (metrics, labels, title, run): the run's own split
        self.source: str | None = None                         # another labelled source shown (None: own split)
        self.exclude_train = False                             # leave out the names of the run's training split
        self.typed: str | None = None                          # a source typed in the field, while it is tested
        self.quality: dict[str, dict] = {}                     # run folder -> test-split reliability (or error)
        self.live_ended = False                                # the attached run has ended (its weights are final)
        self._pending_quality: str | None = None               # the run whose reliability a worker computes
        self._seen: dict[str, tuple] = {}                       # run folder -> its listing's end, last seen

    @property
    def run_path(self) -> Path | None:
        return Path(self.shown_run) if self.shown_run else None

    def compose_content(self) -> ComposeResult:
        with Horizontal(classes="toolbar"):
            yield Label("Run:", classes="field-label")
            yield Choice([], prompt="live: the training run", allow_blank=True, compact=True, id="eval-run")
        with Horizontal(classes="toolbar", id="eval-source-row"):
            yield Label("Data:", classes="field-label")
            yield Field(placeholder="builtin, pytorch-names or a path (folder, .csv), then Enter", accept=ANY,
                        id="eval-data")
        yield Anchor(self._idle_title(), id="eval-title")
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
        seen = {r["path"]: tuple(r.get(k) for k in ("state", "step", "test_accuracy", "train_seconds")) for r in runs
                if "path" in r}
        chosen = self.selected_run
        if chosen and not self.follow_live and chosen in self._seen and seen.get(chosen, self._seen[chosen]) != \
                self._seen[chosen]:   # trained on since it was shown (`train --resume`): its figures are read again
            self.quality.pop(chosen, None)
            if self.source is None:
                self.load_run(chosen)
            else:                     # another source is shown: its own split is read again when t goes back
                self.own = None
        self._seen = seen
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
            self.query_one("#eval-title", Static).update(Text(f"Loading {run_name(self.selected_run)} …"))
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
        """Show a run's own split (live validation, a saved run's test split): what t comes back to."""
        self.own = (metrics, list(labels), title, run)
        if self.source is not None:
            self._leave_source()
        self._display(metrics, labels, title, run)

    def _display(self, metrics: dict, labels: list[str], title: str, run: str | None) -> None:
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
            self._prerender()                  # ... from tables a worker renders now
            return
        self._stale = False
        m = self.metrics
        if not m:
            return
        dark = getattr(self.app.current_theme, "dark", True)
        quality = self._quality_data() if self.view == "reliability" else None
        width = self._matrix_width()
        key = (id(m), self.percent, dark, self.title, self.view, id(quality), width)
        if key == self._shown_key:
            return                             # the widgets show this already
        parts = self._cache.get(key)
        if parts is None:
            parts = self._renderables(m, dark, width) if self.view == "confusion" else self._reliability(m, quality)
            if quality is not None or self.view == "confusion":   # not the "computing …" placeholder
                self._cache[key] = parts
            if len(self._cache) > 8:           # the latest few (counts/percent, both themes)
                self._cache.pop(next(iter(self._cache)))
        self._shown_key = key
        for wid, part in zip(("#eval-title", "#eval-cm", "#eval-headline", "#eval-per-class"), parts):
            self.query_one(wid, Static).update(part)
        # a sentence in place of a table (still training, computing, an error) wraps beside the figures; a table
        # drawn ahead (_prerender) keeps its own width: as a sentence it shared the row and every row wrapped
        self.query_one("#eval-cm", Static).set_class(isinstance(parts[1], Text)
                                                     and not isinstance(parts[1], DrawnTable), "-message")

    def _visible(self) -> bool:
        try:
            return self.app.query_one("#panes").active == "evaluate"
        except Exception:
            return True

    def on_show(self) -> None:
        if self._stale:
            self.render_metrics()

    def _prerender(self) -> None:
        """While the pane is hidden: render the confusion matrix view of the newest metrics in a worker thread
        and cache it, so that showing the pane (a key press) only swaps text in (issue 10's key latency with
        runs training: each evaluation made the tables stale, and Rich rendered them on the switch)."""
        m = self.metrics
        if not m or self.view != "confusion" or "confusion" not in m:
            return
        dark = getattr(self.app.current_theme, "dark", True)
        width = self._matrix_width()
        key = (id(m), self.percent, dark, self.title, self.view, id(None), width)
        if key in self._cache or width <= 0:
            return
        self._prerender_worker(key, self._renderables(m, dark, width), width)

    @work(thread=True, exclusive=True, group="eval-prerender", exit_on_error=False)
    def _prerender_worker(self, key: tuple, parts: tuple, width: int) -> None:
        from ..render import prerendered

        title, cm, headline, per_class = parts
        cm_text = cm if isinstance(cm, (Text, str)) else prerendered(cm, width)
        if cm_text is None:
            return
        try:
            self.app.call_from_thread(self._prerendered, key, (title, cm_text, headline, per_class))
        except RuntimeError:                  # the app closed meanwhile: nothing to show it in
            pass

    def _prerendered(self, key: tuple, parts: tuple) -> None:
        if key[0] == id(self.metrics) and key not in self._cache:   # still the newest metrics
            self._cache[key] = parts
            if len(self._cache) > 8:
                self._cache.pop(next(iter(self._cache)))

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

    def _matrix_width(self) -> int:
        """The columns the confusion matrix may take: the screen's (the pane spans it) less the pane's padding, its
        scroll bar and the matrix's right margin; beside the figures (wide terminals) less their least width too.
        From the screen's size, not the pane's: on a resize the pane is laid out after the app hears of it."""
        width = self.app.size.width - 4
        try:
            narrow = self.screen.has_class("-narrow")
        except Exception:
            narrow = True
        return width if narrow else width - 20          # #eval-side's min-width

    def screen_resized(self) -> None:
        """The app's resize (after the layout): another width may split the matrix, or show it whole."""
        if self.built and self.metrics and self.view == "confusion":
            self.render_metrics()

    def _renderables(self, m: dict, dark: bool, width: int | None = None) -> tuple:
        if "nll" in m and "confusion" not in m:
            return (Text.assemble((self.title, "bold"), "  (a generator: no confusion matrix)"), "",
                    _headline_table(_generator_values(m)),
                    "")
        mode = "row %" if self.percent else "counts"
        return (Text.assemble((self.title, "bold"), f" · rows true, columns predicted · {mode} (c)"),
                _one(confusion_tables(m["confusion"], self._labels_for(m), width, percent=self.percent, dark=dark,
                                      title=None, corner="", only_seen=True)),
                _headline_table(_headline_values(m)),
                per_class_table(m, compact=True) if "per_class" in m else "")

    def _quality_data(self) -> dict | None:
        """What the reliability view draws: for another source its own result; for the run's own split the
        test-split reliability computed in a worker (None until it is there; asked for here)."""
        if self.source is not None:
            return self.metrics
        run = self._target()
        if run is None or "confusion" not in (self.metrics or {}):
            return None
        if run not in self.quality and run != self._pending_quality:
            self._pending_quality = run          # asked once; the worker's answer redraws
            self._quality_worker(run)
        return self.quality.get(run)

    def _reliability(self, m: dict, q: dict | None) -> tuple:
        title = Text.assemble((self.title, "bold"), " · reliability (r: matrix)")
        if "nll" in m and "confusion" not in m:
            return (Text.assemble((self.title, "bold"), "  (a generator: no reliability diagram)"), "",
                    _headline_table(_generator_values(m)),
                    "")
        values = _headline_values(m, ece=False)
        if q is None:
            run = self._target()
            if run is None:
                why = ("The attached run is still training: its reliability diagram comes when it ends "
                       "(or open a saved run, o)." if self.shown_run else "No run to test.")
            else:
                why = f"Computing the reliability diagram of {run_name(run)} on its test split …"
            return title, Text(why, style="dim"), _headline_table(values), ""
        if q.get("error"):
            return title, Text(f"No reliability diagram: {q['error']}", style="red"), _headline_table(values), ""
        rel = q["reliability"]
        cal = q.get("calibration") or {}
        t = q.get("temperature", 1.0)
        table = Table.grid()
        table.add_row(Text.assemble(("ECE ", "bold"), f"{q['ece_before']:.3f} raw → ", (f"{q['ece_after']:.3f}", "bold"),
                                    f" at T {t:.2f} · accuracy per confidence bin:"))
        table.add_row(reliability_table(rel["after"]))
        values = {**_headline_values(q, ece=False), "ECE raw": f"{q['ece_before']:.3f}",
                  "ECE at T": f"{q['ece_after']:.3f}", "T": f"{t:.2f}"}
        lines = ["ECE: mean |accuracy − confidence|", f"over {rel['bins']} bins, weighted by count."]
        if cal:
            fitted = [f"T fitted on validation ({cal.get('n_val', 0)} names)"] if cal.get("saved") else \
                ["T fitted now on validation", f"({cal.get('n_val', 0)} names; not saved:",
                 {"stale": "fitted to earlier weights)", "none": "the run had none)"}.get(
                     cal.get("why"), "calibration.json damaged)")]
            lines = fitted + [f"ECE {cal.get('val_ece_before', 0):.3f} → {cal.get('val_ece_after', 0):.3f} there.",
                              ""] + lines
        return title, table, _headline_table(values), Text("\n".join(lines), style="dim")

    # ---- live: the attached run (tui/follow.py) -------------------------------------
    def _idle_title(self) -> Text:
        """The title before any matrix is shown: what comes, and from where (a run's name: never markup)."""
        if self.live_run is not None and self.follow_live:
            return Text(f"Waiting for the first evaluation of {run_name(self.live_run)}: its validation confusion "
                        f"matrix shows here (or open a saved run, o).")
        if self.live_generator is not None and self.follow_live:
            return Text(f"The live run {run_name(self.live_generator)} is a generator: no confusion matrix "
                        f"(open a saved classifier, o).")
        return Text("No evaluation yet: train a classifier (2), or open a saved run (o).")

    def on_live_started(self, run_dir: str, e) -> None:
        classify = e.config.get("task") == "classify"
        self.live_run = run_dir if classify else None
        self.live_generator = None if classify else run_dir
        self.live_labels = list(e.labels)
        self.live = None
        self.live_ended = False
        self.quality.pop(run_dir, None)      # a run trained on (resumed): its weights change
        if self.follow_live and self.metrics and self.source is None and self.shown_run != run_dir:
            self._clear(self._idle_title())  # the run followed before this one: not "live" any more (a classifier's
        elif self.built and not self.metrics:   # test split stayed under "live" while a generator trained)
            self.query_one("#eval-title", Static).update(self._idle_title())  # what is coming

    def on_live_eval(self, e) -> None:
        if self.live_run is None or "confusion" not in e.metrics:
            return
        self.live = (e.metrics, self.live_labels, f"Validation, live · epoch {e.epoch:.2f}")
        if self.follow_live:
            self.show_metrics(*self.live, run=self.live_run)

    def on_live_done(self, e) -> None:
        if self.live_run is None:
            return
        self.live_ended = True
        if not self.follow_live:
            return
        if "confusion" in e.test_metrics:
            self.live = (e.test_metrics, self.live_labels, f"Test split · {run_name(e.run_dir)}")
            self.show_metrics(*self.live, run=e.run_dir)

    # ---- saved runs ---------------------------------------------------------------
    def load_run(self, path: str) -> None:
        self.follow_live = False
        self.selected_run = str(path)
        if self.source is not None:
            self._leave_source()
        if self.built:
            set_select(self.query_one("#eval-run", Select), value=str(path))
            self.query_one("#eval-title", Static).update(Text(f"Loading {run_name(path)} …"))
        self._metrics_worker(str(path))

    @work(thread=True, exclusive=True, group="evaluate", exit_on_error=False)
    def _metrics_worker(self, path: str) -> None:
        from namestudio.engine import runfolder as ck

        try:
            meta = ck.read_json(Path(path) / ck.CONFIG)
            labels = meta["labels"]
            if meta.get("train", {}).get("task") != "classify":
                record = ck.read_test(Path(path))
                test = record.get("test", {})
                why = record.get("untested") or "no test metrics yet"     # stopped before any training, say
                self.post_message(RunMetrics(path, test, labels, "test", "" if test else why))
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
        if msg.error:          # nothing of the run shown before stays under this run's name
            self._clear(Text(f"{run_name(msg.path)}: {msg.error}", style="red"))
            return
        self.show_metrics(msg.metrics, msg.labels, f"{msg.split.capitalize()} split · {run_name(msg.path)}",
                          run=msg.path)

    # ---- actions ------------------------------------------------------------------
    def action_toggle_counts(self) -> None:
        self.percent = not self.percent
        self.render_metrics()

    def action_follow_live(self) -> None:
        self.follow_live = True
        self.selected_run = None
        if self.source is not None:
            self._leave_source()
        self.query_one("#eval-run", Select).clear()
        if self.live:
            self.show_metrics(*self.live, run=self.live_run)
        else:
            self._clear(self._idle_title() if self.live_generator else
                        "Live: waiting for the first evaluation of a classifier run.")

    def _clear(self, title) -> None:
        """No metrics shown: the title says why, the tables are emptied."""
        self.metrics, self.shown_run, self._shown_key, self.own = None, None, None, None
        if self.built:
            self.query_one("#eval-title", Static).update(title)
            for wid in ("#eval-cm", "#eval-headline", "#eval-per-class"):
                self.query_one(wid, Static).update("")

    def action_choose_run(self) -> None:
        select = self.query_one("#eval-run", Select)
        select.focus()
        select.expanded = True

    # ---- model quality: the reliability view, another labelled source (issue 9) -----
    def _target(self) -> str | None:
        """The run whose weights the quality views use: the shown run once its weights are final (a saved run,
        or the attached run after it ended); None while nothing is shown or the attached run trains."""
        if not self.shown_run:
            return None
        if self.follow_live and self.shown_run == self.live_run and not self.live_ended:
            return None
        return self.shown_run

    @work(thread=True, exclusive=True, group="eval-quality", exit_on_error=False)
    def _quality_worker(self, path: str) -> None:
        """The run's temperature (calibration.json, or fitted now for an older run) and its test split's
        reliability bins and ECE: the engine's run_calibration and evaluate_pairs."""
        try:
            from namestudio.engine.calibration import evaluate_pairs, run_calibration
            from namestudio.engine.infer import load_run

            run = load_run(path)
            if run.task != "classify":
                raise ValueError(f"a {run.task} run has no reliability diagram")
            cal = run_calibration(run)
            m = evaluate_pairs(run, [tuple(p) for p in run.split["test"]], temperature=cal["temperature"])
        except Exception as e:   # a broken run folder is a message, not a crash
            self.post_message(CalibrationReady(path, {}, {}, _one_line(e)))
            return
        if not get_current_worker().is_cancelled:
            self.post_message(CalibrationReady(path, m, cal))

    def on_calibration_ready(self, msg: CalibrationReady) -> None:
        msg.stop()
        if msg.path == self._pending_quality:
            self._pending_quality = None
        self.quality[msg.path] = {"error": msg.error} if msg.error else {**msg.metrics, "calibration": msg.calibration}
        if len(self.quality) > 8:
            self.quality.pop(next(iter(self.quality)))
        if self.view == "reliability":
            self.render_metrics()

    def evaluate_source(self, source: str, exclude_train: bool | None = None) -> None:
        """Test the shown run on another labelled source, in a worker."""
        run = self._target()
        if run is None:
            self._source_error(source, "no finished run to test: open a saved classifier run (o)"
                               + (" or wait until the attached run ends" if self.shown_run else ""))
            return
        exclude = self.exclude_train if exclude_train is None else exclude_train
        self.query_one("#eval-title", Static).update(Text(
            f"Testing {run_name(run)} on {short_path(source)}" + (" without its training names" if exclude else "")
            + " …"))
        self._shown_key = None
        self._source_worker(run, source, exclude)

    @work(thread=True, exclusive=True, group="eval-source", exit_on_error=False)
    def _source_worker(self, path: str, source: str, exclude: bool) -> None:
        """Load the source (data.load_dataset) and test the run on it (engine.calibration.evaluate_pairs)."""
        try:
            from namestudio.engine.calibration import evaluate_pairs, load_source, run_calibration
            from namestudio.engine.infer import load_run

            run = load_run(path)
            ds = load_source(run, source)   # the names `eval --data` takes
            cal = run_calibration(run) if run.task == "classify" else {}
            m = evaluate_pairs(run, list(ds.pairs), exclude_train=exclude, temperature=cal.get("temperature"))
            m["calibration"] = cal
        except Exception as e:   # a bad path, a source with no known label: one line, not a crash
            self.post_message(SourceEvaluated(path, source, exclude, {}, [], _one_line(e)))
            return
        if not get_current_worker().is_cancelled:
            self.post_message(SourceEvaluated(path, source, exclude, m, list(run.labels)))

    def on_source_evaluated(self, msg: SourceEvaluated) -> None:
        msg.stop()
        if msg.path != self._target():
            return                                  # another run is shown now
        field = self.query_one("#eval-data", Field)
        if msg.error:
            self._source_error(msg.source, msg.error)
            return
        if self.typed is not None:                  # the typed source was tested: out of the field
            self.typed = None
            if field.has_focus:
                self.focus_anchor()
        self.source, self.exclude_train = msg.source, msg.exclude_train
        field.value = msg.source
        self.query_one("#eval-source-row").set_class(True, "-open")
        self._display(msg.metrics, msg.labels, source_header(msg.source, msg.metrics),
                      msg.path)
        self.refresh_bindings()

    def _source_error(self, source: str, error: str) -> None:
        shown = (f" Still showing {short_path(self.source)}." if self.source is not None
                 else " Still showing its own split." if self.metrics else "")
        self.query_one("#eval-title", Static).update(
            Text.assemble((f"Could not test on {short_path(source)}: ", "bold red"), f"{error}.{shown}"))
        self._shown_key = None
        if source == self.typed:                    # a typed source failed: the field keeps the focus, its text
            self.typed = None                       # selected, so that what is typed next corrects it
            field = self.query_one("#eval-data", Field)
            field.focus()
            field.select_all()

    def _leave_source(self) -> None:
        self.source, self.typed = None, None
        if self.is_mounted:
            self.workers.cancel_group(self, "eval-source")
        if self.built:
            row = self.query_one("#eval-source-row")
            if not self.query_one("#eval-data", Field).has_focus:
                row.set_class(False, "-open")
        self.refresh_bindings()

    @on(Input.Submitted, "#eval-data")
    def _source_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        source = event.value.strip()
        if source:
            self.typed = source                     # the focus stays in the field until it is tested (or fails)
            self.evaluate_source(source)
        else:
            self.focus_anchor()

    @on(Input.Blurred, "#eval-data")
    def _source_left(self, event: Input.Blurred) -> None:
        if self.source is None and self.typed is None:      # nothing from another source shown: the row goes
            self.query_one("#eval-source-row").set_class(False, "-open")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("toggle_exclude", "own_split"):
            return self.source is not None          # only while another source is shown
        if action == "toggle_counts":
            return self.view == "confusion"
        return True

    def action_toggle_view(self) -> None:
        self.view = "reliability" if self.view == "confusion" else "confusion"
        self.refresh_bindings()
        self.render_metrics()

    def action_other_source(self) -> None:
        if self._target() is None:
            self.app.notify("Open a saved classifier run first (o), or wait until the attached run ends.",
                            title="No run to test", severity="warning")
            return
        self.query_one("#eval-source-row").set_class(True, "-open")
        field = self.query_one("#eval-data", Field)
        field.focus()
        field.select_all()

    def action_toggle_exclude(self) -> None:
        if self.source is not None:
            self.evaluate_source(self.source, not self.exclude_train)

    def action_own_split(self) -> None:
        if self.source is None:
            return
        self._leave_source()
        self.query_one("#eval-source-row").set_class(False, "-open")
        if self.own is not None:
            self._display(*self.own)
        elif self.selected_run and not self.follow_live:    # read again: the run changed while a source was shown
            self.load_run(self.selected_run)


def _one(parts: list):
    """The matrix as one table, or its parts (a few predicted columns each, every one headed) as a group."""
    return parts[0] if len(parts) == 1 else Group(*parts)


def _one_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def source_header(source: str, m: dict) -> str:
    """The line above a run's result on another source: the source, its rows (name, label; a name may be under
    several labels), what was skipped and why,
    and its names in the run's training split (counted or left out)."""
    parts = [f"{short_path(source)}: {counted(m.get('n_source', 0), 'row')} (name, label)"]
    if m.get("skipped_unknown"):
        labels = m.get("unknown_labels") or []
        listed = ", ".join(labels[:6]) + (f" and {len(labels) - 6} more" if len(labels) > 6 else "")
        parts.append(f"{m['skipped_unknown']:,} skipped, labels unknown to the run: {listed}")
    if m.get("unreadable"):
        parts.append(f"{m['unreadable']:,} unreadable")
    in_train = m.get("in_train", 0)
    if not in_train:
        parts.append("none in its training split")
    elif m.get("excluded_train"):
        parts.append(f"{in_train:,} in its training split, excluded (x counts them)")
    else:
        parts.append(f"{in_train:,} in its training split, counted (x excludes them)")
    if m.get("in_val"):          # not trained on, but its checkpoint, blend and temperature were chosen on them
        parts.append(f"{m['in_val']:,} in its validation split, counted (its checkpoint was chosen on them)")
    return " · ".join(parts)


def _headline_values(m: dict, ece: bool = True) -> dict[str, str]:
    values = {"accuracy": f"{m.get('accuracy', 0):.3f}", "balanced": f"{m.get('balanced_accuracy', 0):.3f}",
              "macro-F1": f"{m.get('macro_f1', 0):.3f}", "n": f"{m.get('n', 0):,}"}
    if ece and "ece_after" in m:
        values["ECE"] = f"{m['ece_after']:.3f}"
    blend = blend_headline(m.get("lm_blend") or {})   # the figures are of the network with the n-gram LM, or
    if blend:                                          # it was left out (engine/blend.py)
        values["n-gram"] = blend
    return values


def _generator_values(m: dict) -> dict[str, str]:
    values = {"NLL (nats/char)": f"{m['nll']:.3f}", "perplexity": f"{m['perplexity']:.2f}"}
    blend = blend_headline(m.get("lm_blend") or {})   # the network and the n-gram LM multiplied, or the LM
    if blend:                                          # left out (engine/blend.py)
        values["n-gram"] = blend
    return values


def _headline_table(values: dict[str, str]) -> Table:
    t = Table(show_header=False, box=None, padding=(0, 0, 0, 1), pad_edge=False)
    t.add_column("what", style="bold", no_wrap=True)
    t.add_column("value", justify="right", no_wrap=True)
    for k, v in values.items():
        t.add_row(k, v)
    return t
