"""Classify pane: type a name; the top-k languages update as you type, with per-letter attribution."""
from __future__ import annotations

from rich.console import Group
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Input, Label, Select, Static

from namestudio.engine.config import model_label
from namestudio.engine.experiment import run_name

from .. import keys
from ..messages import Predicted, RunLoaded
from ..render import attribution_text, probability_table
from ..widgets import Choice, best_run, NAME, Anchor, Field, Pane, load_failed, load_run_in_worker, set_select, \
    short_run, usable


class ClassifyPane(Pane):
    pane_id = "classify"
    BINDINGS = keys.CLASSIFY

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.run = None              # LoadedRun
        self.k = 3
        self.results: list[tuple[str, float]] = []
        self.attribution: tuple[str, list[float]] | None = None
        self.explanation = None      # engine.infer.Explanation of the name typed
        self.busy = False            # a prediction is on its way (its worker)
        self.options: list[tuple[str, str]] = []
        self.pending: str | None = None   # a run to load once the pane is built
        self.wanted: str | None = None   # the run being loaded (in a worker) to replace self.run
        self.auto = False                 # the run was chosen for the user (best_run), not by them

    def compose_content(self) -> ComposeResult:
        with Horizontal(classes="toolbar"):
            yield Label("Run:", classes="field-label")
            yield Choice([], prompt="no classifier run yet", allow_blank=True, compact=True, id="clf-run")
        with Horizontal(classes="toolbar"):
            yield Label("Name:", classes="field-label")
            yield Field(placeholder="type a surname, e.g. Nakamura", accept=NAME, id="clf-name")
            yield Static("", id="clf-k")
        yield Anchor("", id="clf-run-info")
        yield Static("", id="clf-probs")
        yield Static("", id="clf-attr")

    def on_built(self) -> None:
        set_select(self.query_one("#clf-run", Select), self.options,
                   str(self.run.path) if self.run is not None else None)
        if self.pending:
            self.load_run(self.pending, quiet=True)
        self._show_k()
        self._refresh_view()

    def focus_default(self) -> None:
        self.query_one("#clf-name", Field).focus()

    # ---- runs ---------------------------------------------------------------------
    def set_runs(self, runs: list[dict]) -> None:
        options = [(f"{short_run(r)} {r.get('model')}"
                    + (f" · acc {r['test_accuracy']:.3f}" if "test_accuracy" in r else ""), r["path"])
                   for r in runs if r.get("task") == "classify" and usable(r)]
        self.options = options
        if self.built:
            set_select(self.query_one("#clf-run", Select), options,
                       str(self.run.path) if self.run is not None else None)
        if self.run is None and self.pending is None and self.wanted is None and options:
            self.load_run(best_run(runs, "classify", self.app.data_source())["path"], quiet=True)   # the best one
            self.auto = True

    def data_changed(self, runs: list[dict]) -> None:
        """The data loaded: a classifier chosen for the user and not shown yet is chosen again for that data."""
        if self.auto and self.run is None and self.pending is not None:
            row = best_run(runs, "classify", self.app.data_source())
            self.pending = row["path"] if row else self.pending

    def users_run(self) -> str | None:
        """The run the user chose here (shown, loading or waiting for the pane), or None: none, or one chosen for
        them (``auto``), which a run trained since may replace."""
        if self.auto:
            return None
        return self.wanted or (str(self.run.path) if self.run is not None else None) or self.pending

    @on(Select.Changed, "#clf-run")
    def _run_chosen(self, event: Select.Changed) -> None:
        value = event.select.value
        if value == Select.NULL and self.run is not None and self.wanted is None:   # the blank entry: not a run
            set_select(event.select, value=str(self.run.path))
            return
        if value == Select.NULL or (self.run is not None and str(self.run.path) == value) or value == self.wanted:
            return
        self.load_run(str(value))

    def load_run(self, path: str, quiet: bool = False) -> bool:
        """Load the run in a worker; the pane shows it when it arrives (``on_run_loaded``)."""
        self.auto = self.auto and quiet      # a run the user chose stays chosen
        if not self.built:
            self.pending = str(path)         # loaded when the pane is first shown
            return True
        self.pending = None
        self.wanted = str(path)
        self.query_one("#clf-run-info", Static).update(Text(f"Loading {run_name(path)} …", style="dim"))
        load_run_in_worker(self, "run", str(path), "classify", quiet)
        return True

    def on_run_loaded(self, msg: RunLoaded) -> None:
        msg.stop()
        if msg.path != self.wanted:
            return                           # another run was asked for since
        self.wanted = None
        run, quiet = msg.run, msg.quiet
        if run is None:
            load_failed(self, msg, "#clf-run")
            return
        self.run = run
        self._show_info()
        self.k = min(max(self.k, 1), len(run.labels))
        set_select(self.query_one("#clf-run", Select), value=str(run.path))
        self._show_k()
        self.predict()
        if not quiet:
            self.app.notify(f"Classify uses {run_name(run.path)}.", markup=False)

    # ---- prediction ---------------------------------------------------------------
    @on(Input.Changed, "#clf-name")
    def _name_changed(self, event: Input.Changed) -> None:
        self.predict()

    def predict(self) -> None:
        """Predict the name typed, in a worker: a prediction with its letters' attribution takes 30-100 ms, and
        a run without a saved calibration first fits its temperature on the validation split (0.6-5 s)."""
        name = self.query_one("#clf-name", Field).value.strip()
        if self.run is None or not name:
            self.results, self.attribution, self.explanation = [], None, None
            self.busy = False            # a prediction on its way is for a name no longer there: dropped
            self._refresh_view()
            return
        self.busy = True
        self._predict_worker(self.run, name, self.k)

    @work(thread=True, exclusive=True, group="classify", exit_on_error=False)
    def _predict_worker(self, run, name: str, k: int) -> None:
        try:
            results = run.classify([name], k)[0]
            explanation = run.explain(name)
        except Exception as e:  # InferenceError and the like: a message, not a crash
            text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            self.post_message(Predicted(run, name, k, [], None, text))
            return
        self.post_message(Predicted(run, name, k, results, explanation))

    def on_predicted(self, msg: Predicted) -> None:
        msg.stop()
        if msg.run is not self.run or msg.k != self.k or msg.name != self.query_one("#clf-name", Field).value.strip():
            return                       # a later name, k or run is on its way
        self.busy = False
        if msg.error:
            self.results, self.attribution, self.explanation = [], None, None
            self.query_one("#clf-probs", Static).update(Text(msg.error, style="red"))
            self.query_one("#clf-attr", Static).update("")    # not the last name's letters under the error
            return
        self.results, self.explanation = msg.results, msg.explanation
        self.attribution = (msg.explanation.label, msg.explanation.scores) if msg.explanation is not None else None
        self._refresh_view()

    def _show_info(self) -> None:
        """The line under the selectors: the run shown (it said "Loading …" while one loaded)."""
        cfg = self.run.config
        what = model_label(cfg.model, cfg.members)
        self.query_one("#clf-run-info", Static).update(
            Text(f"{run_name(self.run.path)} · {what} · {len(self.run.labels)} labels", style="dim"))

    def _refresh_view(self) -> None:
        info = self.query_one("#clf-run-info", Static)
        probs = self.query_one("#clf-probs", Static)
        attr = self.query_one("#clf-attr", Static)
        if self.run is None:
            info.update(Text(f"Loading {run_name(self.wanted)} …", style="dim") if self.wanted else
                        "No classifier run: train one on the Train pane (2) or open one from Runs (6).")
            probs.update("")
            attr.update("")
            return
        self._show_info()
        name = self.query_one("#clf-name", Field).value.strip()
        if not name:
            probs.update(Text("Type a name above; the languages update as you type.", style="dim"))
            attr.update("")
            return
        total = sum(p for _, p in self.results)
        probs.update(Group(Text(f"Top {len(self.results)} of {len(self.run.labels)} (together {100 * total:.1f}%)",
                                style="bold"), probability_table(self.results, width=30)))
        e = self.explanation
        if e is not None:
            notes = e.reading.notes() if e.reading else []
            attr.update(Group(
                Text(f"Which letters drive “{e.label}” (occlusion: the drop in its log-odds without each letter)",
                     style="bold"),
                Text.assemble("  ", attribution_text(e.text, e.scores)),
                *(Text(f"  note: {n}", style="yellow") for n in notes),
                Text.assemble(("  green", "green"), " supports it · ", ("red", "red"), " argues against · ",
                              "brighter is stronger", style="dim")))
        else:
            attr.update("")

    def _show_k(self) -> None:
        n = len(self.run.labels) if self.run is not None else 0
        self.query_one("#clf-k", Static).update(f" top {self.k}" + (f" of {n}" if n else "") + " (↑/↓)")

    # ---- actions ------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("more", "fewer"):       # ↑/↓ belong to an open run list, not to top-k
            return getattr(self.app.focused, "id", None) in ("clf-name", "clf-run-info")
        return True

    def action_more(self) -> None:
        n = len(self.run.labels) if self.run is not None else 10
        self.k = min(n, self.k + 1)
        self._show_k()
        self.predict()

    def action_fewer(self) -> None:
        self.k = max(1, self.k - 1)
        self._show_k()
        self.predict()

    def action_choose_run(self) -> None:
        select = self.query_one("#clf-run", Select)
        select.focus()
        select.expanded = True

    def action_edit_name(self) -> None:
        self.query_one("#clf-name", Field).focus()
