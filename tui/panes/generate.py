"""Generate pane: sample names from a generator run, marked new or in-training-set, optionally checked
by a classifier run (does it agree with the requested language?). On request (t), a table of novelty,
uniqueness and classifier agreement across temperatures (engine.infer.sample_quality), in a worker."""
from __future__ import annotations

import random
import shlex

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Input, Label, Select, Static
from textual.worker import get_current_worker

from namestudio.engine.config import TABLE_TEMPERATURES
from namestudio.engine.experiment import run_name

from .. import keys
from ..messages import RunLoaded, QualityProgress, SamplesReady
from ..render import Parts, counted
from ..widgets import Choice, best_run, INTEGER, NAME, NUMBER, Field, Flowing, Pane, load_failed, load_run_in_worker, \
    set_select, short_run, usable

NO_CLASSIFIER = "__none__"
TABLE_N = 200                                # names per temperature: a few seconds at most on a CPU
SHOWN_MAX = 100      # sample rows drawn: Textual draws a Rich table whole, ~1.7 ms a row (10,000 rows froze it 17 s)
NAME_MAX_LEN = 24    # the pane has no max-len field: its names end at `namestudio sample`'s default length


FIELD_LABELS = {"#gen-temp": "Temp", "#gen-topk": "Top-k", "#gen-count": "Count"}


class GeneratePane(Pane):
    pane_id = "generate"
    BINDINGS = keys.GENERATE

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.run = None            # generator LoadedRun
        self.classifier = None     # classifier LoadedRun or None
        self.samples: list[dict] = []
        self.start_notes: tuple[str, ...] = ()   # how the samples' start was read ("read Ω as O"), or nothing
        self.start_read = ""                     # that start, as typed
        self.agreement: float | None = None
        self.error = ""            # why the last sampling failed, shown until samples come (or the run changes)
        self.gens: list[tuple[str, str]] = []   # generator runs to choose from
        self.clfs: list[tuple[str, str]] = []   # classifier runs to check with
        self.pending_run: str | None = None     # runs to load once the pane is built
        self.pending_clf: str | None = None
        self.wanted: dict[str, str | None] = {"run": None, "classifier": None}   # asked for, in a worker
        self.auto = False                       # the runs were chosen for the user (best_run), not by them
        self._lang = None          # the language of the last samples
        # the temperature table (t): rows of engine.infer.sample_quality, for the settings in table_key
        self.table_rows: list[dict] = []
        self.table_key: tuple | None = None     # (run, language, classifier, start, top-k) it was computed for
        self.table_shown = False
        self.table_busy = False
        self.table_error = ""
        self.table_notes: tuple = ()          # how its start was read, as the summary says it

    def compose_content(self) -> ComposeResult:
        with Horizontal(classes="toolbar"):
            yield Label("Run:", classes="field-label")
            yield Choice([], prompt="no generator run yet", allow_blank=True, compact=True, id="gen-run")
        with Horizontal(classes="toolbar"):
            yield Label("Language:", classes="field-label")
            yield Choice([], prompt="any", allow_blank=True, compact=True, id="gen-lang")
        with Horizontal(classes="toolbar"):
            yield Label("Check with:", classes="field-label")
            yield Choice([("no classifier", NO_CLASSIFIER)], value=NO_CLASSIFIER, allow_blank=False, compact=True,
                         id="gen-clf")
        with Horizontal(classes="toolbar", id="gen-params"):
            yield Label("Start:", classes="field-label")
            yield Field("", placeholder="letters", accept=NAME, id="gen-start")
            yield Label("Temp:", classes="field-label")
            yield Field("0.8", accept=NUMBER, id="gen-temp")
            yield Label("Top-k:", classes="field-label")
            yield Field("0", accept=INTEGER, id="gen-topk")
            yield Label("Count:", classes="field-label")
            yield Field("10", accept=INTEGER, id="gen-count")
        yield Flowing("", id="gen-summary")
        yield Static("", id="gen-quality")
        yield Static("", id="gen-samples")

    def on_built(self) -> None:
        self._apply_options()
        if self.pending_clf:
            self.load_classifier(self.pending_clf, quiet=True)
        if self.pending_run:
            self.load_run(self.pending_run, quiet=True)
        self._refresh_view()

    def focus_default(self) -> None:
        self.query_one("#gen-start", Field).focus()

    # ---- runs ---------------------------------------------------------------------
    def set_runs(self, runs: list[dict]) -> None:
        self.gens = [(f"{short_run(r)} {r.get('model')}" + (f" · NLL {r['test_nll']:.2f}" if "test_nll" in r else ""),
                      r["path"]) for r in runs if r.get("task") == "generate" and usable(r)]
        self.clfs = [(f"{short_run(r)} {r.get('model')}", r["path"])
                     for r in runs if r.get("task") == "classify" and usable(r)]
        if self.classifier is not None and str(self.classifier.path) not in [v for _, v in self.clfs]:
            self.classifier = None
        if self.built:
            self._apply_options()
        if self.run is None and self.pending_run is None and self.wanted["run"] is None and self.gens:
            self._choose_for_the_user(runs)
        elif self.classifier is None and self.pending_clf is None and self.wanted["classifier"] is None and self.clfs:
            self.load_classifier(best_run(runs, "classify", self._gen_data(runs))["path"], quiet=True)

    def _gen_data(self, runs: list[dict]) -> str | None:
        """The data source of the generator shown (or to be shown): a classifier that checks its names should
        know its languages."""
        path = str(self.run.path) if self.run is not None else self.wanted["run"] or self.pending_run
        row = next((r for r in runs if r.get("path") == path), None)
        return row.get("data") if row else self.app.data_source()

    def _choose_for_the_user(self, runs: list[dict]) -> None:
        """The best finished generator of the data loaded, and the best classifier of that generator's data."""
        gen = best_run(runs, "generate", self.app.data_source())
        self.load_run(gen["path"], quiet=True)
        clf = best_run(runs, "classify", gen.get("data"))
        if clf is not None and self.classifier is None and self.wanted["classifier"] is None:
            self.load_classifier(clf["path"], quiet=True)
        self.auto = True

    def data_changed(self, runs: list[dict]) -> None:
        """The data loaded: runs chosen for the user and not shown yet are chosen again for that data."""
        if self.auto and self.run is None and self.pending_run is not None:
            self.pending_run, self.pending_clf = None, None
            self._choose_for_the_user(runs)

    def _apply_options(self) -> None:
        set_select(self.query_one("#gen-run", Select), self.gens,
                   str(self.run.path) if self.run is not None else None)
        keep = str(self.classifier.path) if self.classifier is not None else NO_CLASSIFIER
        set_select(self.query_one("#gen-clf", Select), [("no classifier", NO_CLASSIFIER)] + self.clfs, keep)

    def users_run(self) -> str | None:
        """The generator the user chose here (shown, loading or waiting for the pane), or None: none, or one chosen
        for them (``auto``), which a run trained since may replace."""
        if self.auto:
            return None
        return self.wanted["run"] or (str(self.run.path) if self.run is not None else None) or self.pending_run

    @on(Select.Changed, "#gen-run")
    def _run_chosen(self, event: Select.Changed) -> None:
        value = event.select.value
        if value == Select.NULL and self.run is not None and self.wanted["run"] is None:   # the blank entry
            set_select(event.select, value=str(self.run.path))
        elif value != Select.NULL and not (self.run is not None and str(self.run.path) == value) \
                and value != self.wanted["run"]:
            self.load_run(str(value))

    @on(Select.Changed, "#gen-clf")
    def _clf_chosen(self, event: Select.Changed) -> None:
        value = event.select.value
        current = str(self.classifier.path) if self.classifier is not None else NO_CLASSIFIER
        if value == current or value == Select.NULL or value == self.wanted["classifier"]:
            return
        if value == NO_CLASSIFIER:
            self.classifier = None
            self.wanted["classifier"] = None    # a load under way is not wanted now
            self.check_samples()
        else:
            self.load_classifier(str(value))

    @on(Select.Changed, "#gen-lang")
    def _lang_chosen(self, event: Select.Changed) -> None:
        chosen = None if event.select.value == Select.NULL else str(event.select.value)   # blank: any language
        if self.run is not None and chosen != self._lang:
            self.action_resample()

    def load_run(self, path: str, quiet: bool = False) -> bool:
        """Load the generator in a worker; the pane shows it when it arrives (``on_run_loaded``)."""
        self.auto = self.auto and quiet      # a run the user chose stays chosen
        if not self.built:
            self.pending_run = str(path)     # loaded when the pane is first shown
            return True
        self.pending_run = None
        self.wanted["run"] = str(path)
        if self.run is None:
            self.query_one("#gen-summary", Flowing).say(Text(f"Loading {run_name(path)} …", style="dim"))
        load_run_in_worker(self, "run", str(path), "generate", quiet)
        return True

    def load_classifier(self, path: str, quiet: bool = False) -> bool:
        """Load the classifier that checks the samples, in a worker (``on_run_loaded``)."""
        if not self.built:
            self.pending_clf = str(path)
            return True
        self.pending_clf = None
        self.wanted["classifier"] = str(path)
        load_run_in_worker(self, "classifier", str(path), "classify", quiet)
        return True

    def on_run_loaded(self, msg: RunLoaded) -> None:
        msg.stop()
        if msg.path != self.wanted.get(msg.slot):
            return                           # another run was asked for since
        self.wanted[msg.slot] = None
        if msg.slot == "classifier":
            self._classifier_loaded(msg)
            return
        run = msg.run
        if run is None:
            load_failed(self, msg, "#gen-run")
            return
        self.run = run
        self.samples, self.agreement = [], None     # the previous run's samples are not this run's
        set_select(self.query_one("#gen-run", Select), value=str(run.path))
        lang = self.query_one("#gen-lang", Select)
        previous = lang.value
        set_select(lang, [(lab, lab) for lab in run.labels],
                   previous if previous in run.labels else (run.labels[0] if run.labels else None))
        if not msg.quiet:
            self.app.notify(f"Generate uses {run_name(run.path)}.", markup=False)
        self.action_resample()

    def _classifier_loaded(self, msg: RunLoaded) -> None:
        if msg.run is None:
            if not msg.quiet:
                self.app.notify(f"{run_name(msg.path)}: not a readable classifier run",
                                title="Cannot load the classifier", severity="error", markup=False)
            keep = str(self.classifier.path) if self.classifier is not None else NO_CLASSIFIER
            set_select(self.query_one("#gen-clf", Select), value=keep)
            return
        self.classifier = msg.run
        set_select(self.query_one("#gen-clf", Select), value=str(msg.run.path))
        self.check_samples()

    # ---- sampling -----------------------------------------------------------------
    def settings(self) -> dict:
        """The fields' values, checked as `namestudio sample` checks them; ValueError names the field."""
        from namestudio.engine.infer import InferenceError, check_sampling

        def num(fid, kind, default):
            text = self.query_one(fid, Field).value.strip()
            try:
                return kind(text) if text else default
            except ValueError:
                raise ValueError(f"{FIELD_LABELS[fid]}: {text!r} is not a number") from None

        lang = self.query_one("#gen-lang", Select).value
        out = {"lang": None if lang == Select.NULL else str(lang),
               "start": self.query_one("#gen-start", Field).value.strip(),
               "temperature": num("#gen-temp", float, 0.8), "top_k": num("#gen-topk", int, 0),
               "n": num("#gen-count", int, 10)}
        try:
            check_sampling(out["temperature"], out["top_k"], out["n"])
        except InferenceError as e:     # the engine's words, with the field's label for its option's name
            said = str(e)
            field = "Top-k" if said.startswith("top-k") else "Count" if said.startswith("n ") else "Temp"
            raise ValueError(f"{field} {said.split(' ', 1)[1]}") from None   # (was: "Count: n must be …")
        return out

    def _ready_settings(self) -> dict | None:
        """The pane's settings when there is a generator to use them with; else None, and the user is told why."""
        if self.run is None:
            self.app.notify("No generator run: train one (task generate) or open one from Runs (6).",
                            severity="warning")
            return None
        try:
            return self.settings()
        except ValueError as e:
            self._show_error(str(e))
            return None

    def action_resample(self) -> None:
        settings = self._ready_settings()
        if settings is None:
            return
        self._lang = settings["lang"]
        self._sample_worker(self.run, self.classifier, settings, None)

    def check_samples(self) -> None:
        """Ask the classifier (if any) about the samples shown, again (after the classifier changed)."""
        if self.samples:
            self._sample_worker(None, self.classifier, {}, [dict(s) for s in self.samples])
        else:
            self._refresh_view()

    @work(thread=True, exclusive=True, group="sample", exit_on_error=False)
    def _sample_worker(self, run, classifier, settings: dict, samples: list[dict] | None) -> None:
        """Sampling (up to 10,000 names) and the classifier check run here, off the UI thread."""
        notes, start = None, ""
        try:
            if samples is None:
                start = settings["start"]      # how it is read, as `sample --start` says (before the samples)
                notes = tuple(run.read_start(start)[1]) if start else ()
                samples = run.sample(lang=settings["lang"], start=settings["start"], n=settings["n"],
                                     temperature=settings["temperature"], top_k=settings["top_k"],
                                     max_len=NAME_MAX_LEN, seed=random.randrange(2 ** 31))
            agreement = None
            for s in samples:
                s.pop("classifier", None)
                s.pop("agrees", None)
            if classifier is not None and samples:
                from namestudio.engine.infer import classifier_agreement

                agreement = classifier_agreement(samples, classifier)   # the engine's one definition
        except Exception as e:   # InferenceError and the like: a message, not a crash
            self.post_message(SamplesReady([], None, _said(e) or repr(e)))
            return
        if not get_current_worker().is_cancelled:
            self.post_message(SamplesReady(samples, agreement, checked_by=classifier,
                                           start=start, notes=notes))

    def on_samples_ready(self, msg: SamplesReady) -> None:
        msg.stop()
        if msg.error:
            self.samples = []
            self._show_error(msg.error)
            return
        self.samples, self.agreement, self.error = msg.samples, msg.agreement, ""
        if msg.notes is not None:                    # fresh samples (not the same ones checked again)
            self.start_read, self.start_notes = msg.start, msg.notes
        if msg.checked_by is not self.classifier:    # the classifier arrived (it loads in a worker) or changed
            self.check_samples()                     # while these were sampled: ask the one chosen now
            return
        self._refresh_view()

    def _show_error(self, text: str) -> None:
        self.error = text
        self.query_one("#gen-summary", Flowing).say(Text(text, style="red"))
        self.query_one("#gen-samples", Static).update("")

    # ---- the temperature table (t) ------------------------------------------------
    def _table_key(self, settings: dict) -> tuple:
        return (str(self.run.path) if self.run is not None else None, settings.get("lang"),
                str(self.classifier.path) if self.classifier is not None else None,
                settings.get("start", ""), settings.get("top_k", 0))

    def action_quality_table(self) -> None:
        if self.run is not None and self.table_busy:
            self.app.notify("The temperature table is being computed …")
            return
        settings = self._ready_settings()
        if settings is None:
            return
        key = self._table_key(settings)
        if self.table_shown and key == self.table_key and not self.table_error:
            self.table_shown = False           # up to date and shown: t hides it
            self._render_table()
            return
        self.table_shown, self.table_busy, self.table_error = True, True, ""
        self.table_key, self.table_rows, self.table_notes = key, [], ()
        self._render_table()
        self._table_worker(self.run, self.classifier, settings, key)

    @work(thread=True, exclusive=True, group="quality", exit_on_error=False)
    def _table_worker(self, run, classifier, settings: dict, key: tuple) -> None:
        """One temperature at a time (the same seed for each), so that the table fills in as it goes."""
        from namestudio.engine.infer import sample_quality

        worker = get_current_worker()
        rows: list[dict] = []
        notes: tuple = ()
        try:
            notes = tuple(run.read_start(settings["start"])[1]) if settings["start"] else ()
            for t in TABLE_TEMPERATURES:
                if worker.is_cancelled:
                    return
                rows += sample_quality(run, [t], n=TABLE_N, classifier=classifier, seed=0, lang=settings["lang"],
                                       start=settings["start"], top_k=settings["top_k"], max_len=NAME_MAX_LEN)
                self.post_message(QualityProgress(key, list(rows), len(TABLE_TEMPERATURES),
                                                  done=len(rows) == len(TABLE_TEMPERATURES), notes=notes))
        except Exception as e:   # a start the run cannot read and the like: one line, not a crash
            self.post_message(QualityProgress(key, rows, len(TABLE_TEMPERATURES), _said(e) or type(e).__name__,
                                              done=True))

    def on_quality_progress(self, msg: QualityProgress) -> None:
        msg.stop()
        if msg.key != self.table_key:
            return                             # an older table's rows
        self.table_rows, self.table_error, self.table_notes = msg.rows, msg.error, msg.notes
        self.table_busy = not msg.done
        self._render_table()

    def worker_failed(self, worker) -> None:
        if worker.group == "quality":
            self.table_busy = False

    def _render_table(self) -> None:
        out = self.query_one("#gen-quality", Static)
        if not self.table_shown:
            out.update("")
            return
        run, lang, clf, start, top_k = self.table_key or (None,) * 5
        what = [f"{TABLE_N} names each", lang or "any language"]
        if start:
            what.append(f"start {start}")
        if top_k:
            what.append(f"top-k {top_k}")
        what.append(f"checked with {run_name(clf)}" if clf else "no classifier")
        head = Text.assemble(("Temperature table", "bold"), " · " + " · ".join(what))
        try:
            current = self._table_key(self.settings()) == self.table_key
        except ValueError:
            current = False
        if self.table_busy:
            head.append(f"\ncomputing … {len(self.table_rows)} of {len(TABLE_TEMPERATURES)} temperatures",
                        style="yellow")
        elif self.table_error:
            head.append(f"\n{self.table_error}", style="red")
        elif not current:
            head.append(f"\nfor {run_name(run) if run else '?'} with the settings before: t computes it again",
                        style="yellow")
        else:
            head.append("  (t hides it)", style="dim")
        for note in self.table_notes:       # as the samples' summary and `sample --table --start` say it
            head.append("\nnote: ", style="yellow")
            head.append(f"start {start!r}: {note}")
        if not self.table_rows:
            out.update(head)
            return
        t = Table(box=None, padding=(0, 2, 0, 0), header_style="bold", show_edge=False)
        for col in ("temperature", "new", "unique") + (("classifier agrees",) if clf else ()):
            t.add_column(col, justify="right", no_wrap=True)
        pct = lambda v: "–" if v is None else f"{100 * v:.0f}%"
        from namestudio.engine.infer import agreement_cell   # loaded with the run already (torch)
        for r in self.table_rows:
            t.add_row(f"{r['temperature']:.1f}", pct(r["novelty"]), pct(r["uniqueness"]),
                      *((agreement_cell(r["agreement"], r["judged"], r["n"]),) if clf else ()))
        grid = Table.grid()
        grid.add_row(head)
        grid.add_row(t)
        grid.add_row(Text("new: not in the training data, not a repeat · unique: distinct names"
                          + (" · agrees: the classifier gives the sampled language" if clf else ""), style="dim"))
        out.update(grid)

    def _refresh_view(self) -> None:
        self._render_table()
        summary = self.query_one("#gen-summary", Flowing)
        table_w = self.query_one("#gen-samples", Static)
        if self.run is None:
            summary.say(Text(f"Loading {run_name(self.wanted['run'])} …", style="dim") if self.wanted["run"] else
                           "No generator run: train one on the Train pane (2) with task generate, "
                           "or open one from Runs (6).")
            table_w.update("")
            return
        if not self.samples:
            summary.say(Text(self.error, style="red") if self.error
                        else Text(f"{run_name(self.run.path)}: press r to sample.", style="dim"))
            table_w.update("")
            return
        new = sum(bool(s.get("new")) for s in self.samples)
        seen = sum(bool(s.get("in_training")) for s in self.samples)
        repeats = sum(bool(s.get("repeat")) and not s.get("in_training") for s in self.samples)
        prefix = len(self.samples) - new - seen - repeats   # neither: only the start letters (novelty_cell's words)
        parts = [f"{counted(len(self.samples), 'sample')} from {run_name(self.run.path)}",
                 f"{new} new, {seen} in the training set" + (f", {repeats} repeated" if repeats else "")
                 + (f", {prefix} only the prefix" if prefix else "")]   # (was: 9 new, 0 in the training set of 10)
        if self.classifier is not None:
            from namestudio.engine.infer import agreement_words, judged   # loaded with the run already (torch)
            parts.append(agreement_words(self.agreement, judged(self.samples), len(self.samples)))
        notes = Text("\n").join(Text.assemble(("note: ", "yellow"), f"start {self.start_read!r}: {note}")
                                 for note in self.start_notes)   # the words of `namestudio sample --start`
        summary.flow(Parts(*parts, style="bold"), notes if self.start_notes else None)   # broken between parts
        t = Table(box=None, padding=(0, 2, 0, 0), header_style="bold", show_edge=False)
        t.add_column("name", no_wrap=True)
        t.add_column("language", no_wrap=True)
        t.add_column("", no_wrap=True)
        if self.classifier is not None:
            t.add_column("classifier", no_wrap=True)
        for s in self.samples[:SHOWN_MAX]:
            row = [Text(s["name"] or "∅"), Text(str(s["lang"])), novelty_cell(s)]
            if self.classifier is not None:
                mark = {True: ("✓", "green"), False: ("✗", "red"), None: ("?", "dim")}[s.get("agrees")]
                row.append(Text.assemble((mark[0] + " ", mark[1]), s.get("classifier") or "cannot read it"))
            t.add_row(*row)
        hidden = len(self.samples) - SHOWN_MAX
        if hidden > 0:   # the counts above cover them all; the note gives the command that samples a list
            grid = Table.grid()
            grid.add_row(t)
            grid.add_row(Text(f"… and {hidden:,} more, not drawn here (the counts above include them); "
                              f"`{self._sample_command()}` writes as many to a file", style="dim"))
            t = grid
        table_w.update(t)

    def _sample_command(self) -> str:
        """`namestudio sample` with this pane's settings (fresh names, as many as shown here)."""
        try:
            st = self.settings()
        except ValueError:
            st = {"lang": None, "start": "", "temperature": 0.8, "top_k": 0}
        q = shlex.quote     # each argument as a shell reads it: o' or a language with a space pastes whole
        parts = ["namestudio sample", q(run_name(self.run.path)), f"-n {len(self.samples)}",
                 f"--temperature {st['temperature']:g}"]
        parts += [f"--top-k {st['top_k']}"] if st["top_k"] else []
        parts += [f"--lang {q(st['lang'])}"] if st["lang"] else []
        parts += [f"--start {q(st['start'])}"] if st["start"] else []
        return " ".join(parts + ["--out names.txt"])

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_resample()

    def action_choose_run(self) -> None:
        select = self.query_one("#gen-run", Select)
        select.focus()
        select.expanded = True


def _said(e: Exception) -> str:
    """A sampling error in one line, as this pane says it. A start too long for its names is told the longest
    start this pane takes: the engine's words ("raise max-len to 25") name an option the pane has not."""
    from namestudio.engine.infer import StartTooLong

    if isinstance(e, StartTooLong) and e.max_len == NAME_MAX_LEN:
        return (f"start {e.shown!r} is {counted(e.length, e.kind)}: a start here may be at most "
                f"{counted(NAME_MAX_LEN - 1, e.kind)}, one less than the {NAME_MAX_LEN} a name here may have")
    text = str(e).strip()
    return text.splitlines()[0] if text else ""


def novelty_cell(s: dict) -> Text:
    """From the sample's own keys (engine.infer.mark_novelty): new, in the training set, a repeat, or the prefix."""
    if s.get("in_training"):
        return Text("in training set", style="dim")
    if s.get("repeat"):
        return Text("repeat", style="yellow")
    if s.get("new"):
        return Text("new", style="green")
    return Text("only the prefix", style="dim")     # as `namestudio sample` says it
