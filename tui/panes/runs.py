"""Runs pane: every run in the checkpoints folder with its live state and progress (the follower,
tui/follow.py, updates them without a key press), overlaid validation curves, watch, load and export."""
from __future__ import annotations

import csv
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.widgets import DataTable, Static
from textual_plotext import PlotextPlot

from namestudio.engine import runfolder as rf
from namestudio.engine.config import model_label

from .. import keys
from ..messages import OpenRun
from ..render import counted, marked_task
from ..widgets import Anchor, Pane, ScrollTable, compact_number, duration, run_cell, scroll_hint, short_path, \
    short_run

# the state and the test figures next to the id, so that 80 columns show them (issue 12); the rest scrolls
COLUMNS = [("", "mark"), ("run", "run"), ("state", "status"), ("task", "task"), ("model", "model"),
           ("test", "test"), ("test F1", "f1"), ("best val", "best"), ("time", "time"), ("params", "params")]
COLOURS = ["cyan", "orange", "green", "magenta", "red", "blue", "yellow", "white"]


class RunsPane(Pane):
    pane_id = "runs"
    BINDINGS = keys.RUNS

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.runs: list[dict] = []
        self.marked: set[str] = set()
        self.last_note: list[str] = []
        self._evals: dict[str, tuple] = {}   # path -> (metrics.jsonl's size and mtime, its records)

    def compose_content(self) -> ComposeResult:
        yield Anchor("", id="runs-title")
        yield ScrollTable(id="runs-table", cursor_type="row", zebra_stripes=True, fixed_columns=2)  # mark, run
        yield Static("", id="runs-more")
        yield Static("", id="runs-note")
        yield PlotextPlot(id="runs-plot")

    def on_built(self) -> None:
        table = self.query_one("#runs-table", DataTable)
        for label, key in COLUMNS:
            table.add_column(label, key=key)
        self.set_runs(self.runs)
        if not self.runs:
            self._draw_overlay()              # the empty plot's message

    def focus_default(self) -> None:
        self.query_one("#runs-table", DataTable).focus()

    @property
    def run_path(self) -> Path | None:
        row = self.cursor_run() if self.built else None
        return Path(row["path"]) if row else None

    # ---- the table ----------------------------------------------------------------
    def set_runs(self, runs: list[dict]) -> None:
        old = {r["path"]: r for r in self.runs}
        same_rows = [r["path"] for r in runs] == [r["path"] for r in self.runs]
        self.runs = runs
        paths = {r["path"] for r in runs}
        self.marked &= paths
        if not self.built:
            return
        table = self.query_one("#runs-table", DataTable)
        changed = [r for r in runs if r != old.get(r["path"])]
        if same_rows and table.row_count == len(runs) and all(short_run(r) == short_run(old[r["path"]])
                                                              for r in changed):
            # the same runs, progress or states changed: update those cells in place (no rebuild)
            for r in changed:
                for (_, key), cell in zip(COLUMNS, self._cells(r)):
                    table.update_cell(r["path"], key, cell, update_width=True)  # a wider state widens it
            self._more()                      # a wider cell may push a column past the edge
            if {r["path"] for r in changed} & {r["path"] for r in self.overlay_runs()}:
                self._draw_overlay()
            elif changed:
                self._note()
            return
        cursor_key = None
        if table.row_count and 0 <= table.cursor_row < table.row_count:
            cursor_key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        table.clear(columns=True)         # columns sized afresh: a starting run's long id must not widen them
        for label, key in COLUMNS:
            table.add_column(label, key=key)
        for r in runs:
            table.add_row(*self._cells(r), key=r["path"])
        if cursor_key in paths:
            table.move_cursor(row=table.get_row_index(cursor_key))
        self._title()
        self._more()
        self._draw_overlay()

    @on(ScrollTable.Resized, "#runs-table")
    def _more(self) -> None:
        """Under the table: the columns past its right edge, and the way to them."""
        more = self.query_one("#runs-more", Static)
        hidden = self.query_one("#runs-table", ScrollTable).offscreen()
        more.display = bool(hidden)
        if hidden and str(more.content) != str(scroll_hint(hidden)):
            more.update(scroll_hint(hidden))

    def _cells(self, r: dict) -> list:
        mark = Text("●", style="bold green") if r["path"] in self.marked else Text(" ")
        if "error" in r:
            # the word alone: the error (a path and a parser's words, 100 characters) took 40 cells of the state
            # column for every run, and pushed the figures off screen; the note under the table says it whole
            return [mark, Text(run_cell(r)), Text("damaged", style="red"), "", "", "", "", "", "", ""]
        if r.get("task") == "classify":
            best = f"acc {r['best_val_accuracy']:.3f}" if "best_val_accuracy" in r else ""
            test = f"acc {r['test_accuracy']:.3f}" if "test_accuracy" in r else ""
            f1 = f"{r['test_macro_f1']:.3f}" if "test_macro_f1" in r else ""
        else:
            best = f"nll {r['best_val_nll']:.3f}" if "best_val_nll" in r else ""
            test = f"nll {r['test_nll']:.3f}" if "test_nll" in r else ""
            f1 = ""
        return [mark, Text(run_cell(r)), state_cell(r), r.get("task") or "",   # a run id is never markup
                Text(model_label(r.get("model"), r.get("members"))),
                test, f1, best,
                duration(r.get("train_seconds")) if r.get("train_seconds") is not None else "",
                compact_number(r.get("params"))]

    def _title(self) -> None:
        folder = short_path(getattr(self.app, "checkpoints", "checkpoints"))
        n = len(self.runs)
        text = f"{counted(n, 'run')} in {folder}" if n else \
            f"No runs in {folder} yet: train one on the Train pane (2)."
        row = self.cursor_run() if n else None
        if row and run_cell(row) != short_run(row):      # its id is cut in the table: the whole id here
            text = f"{row['run']} · {text}"
        self.query_one("#runs-title", Static).update(Text(text, style="bold"))

    def cursor_run(self) -> dict | None:
        table = self.query_one("#runs-table", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        return next((r for r in self.runs if r["path"] == key), None)

    @on(DataTable.RowHighlighted, "#runs-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._title()
        if not self.marked:
            self._draw_overlay()
        else:
            self._note()

    def _note(self) -> bool:
        """Under a failed or stale run: its error and the last lines of its train.log; under a damaged one, what is
        wrong with it. True if shown."""
        row = self.cursor_run()
        if row and row.get("error"):
            self.last_note = [f"{row['run']}: damaged: {row['error']}"]
            self.query_one("#runs-note", Static).update(Text(self.last_note[0], style="red"))
            return True
        if not row or row.get("state") not in ("failed", "stale"):
            return False
        from namestudio.engine.runfolder import last_log_lines, read_status

        try:
            error = read_status(Path(row["path"])).error
        except Exception:
            error = None
        why = error or ("its trainer is gone (no heartbeat, no process)" if row["state"] == "stale" else "failed")
        lines = last_log_lines(Path(row["path"]), 4)
        at = row.get("step") if row["state"] == "stale" and isinstance(row.get("step"), int) else None
        hint = (" · s resumes it" + (f" from step {at:,}" if at is not None else "")) if row.get("resumable") else ""
        self.last_note = [f"{row['run']}: {row['state']}: {why}{hint}", *lines]
        self.query_one("#runs-note", Static).update(Text("\n".join(self.last_note), style="red"))
        return True

    @on(DataTable.RowSelected, "#runs-table")
    def _selected(self, event: DataTable.RowSelected) -> None:
        row = self.cursor_run()
        if row:
            self.action_open("evaluate" if row.get("task") == "classify" else "generate")

    # ---- overlay plot -------------------------------------------------------------
    def overlay_runs(self) -> list[dict]:
        rows = [r for r in self.runs if r["path"] in self.marked] if self.marked else \
            [r for r in [self.cursor_run()] if r]
        # a run with no task failed before it wrote its config: it has no curve (it was drawn as an empty frame
        # titled "validation NLL", over its failure's note)
        rows = [r for r in rows if "error" not in r and r.get("task")]
        if rows:                                  # the same task the Compare pane shows for these marks
            task = marked_task([r.get("task") for r in rows])     # (self.runs is newest first)
            rows = [r for r in rows if r.get("task") == task]
        return rows

    def _draw_overlay(self) -> None:
        plot = self.query_one("#runs-plot", PlotextPlot)
        plt = plot.plt
        plt.clear_figure()
        plt.xlabel("epoch")
        rows = self.overlay_runs()
        note = self.query_one("#runs-note", Static)
        plot.display = bool(rows)
        if not rows:                          # no empty frame: say what would fill it (issue 12)
            if not self._note():
                note.update(Text("No curves to plot yet: train a run on the Train pane (2); its validation "
                                 "curve shows here, and space marks runs to overlay them." if not self.runs else
                                 "No curves for the run under the cursor (it could not be read).", style="dim"))
            return

        task = rows[0].get("task")
        key = "accuracy" if task == "classify" else "nll"
        plt.title(f"validation {'accuracy' if key == 'accuracy' else 'NLL'} of "
                  + (f"{len(rows)} marked run{'s' if len(rows) > 1 else ''}" if self.marked else "the run under the cursor"))
        drawn = 0
        for i, r in enumerate(rows):
            evals = [e for e in self._metrics(r["path"]) if key in e.get("val", {})]
            drawn += bool(evals)
            if evals:
                plt.plot([e["epoch"] for e in evals], [e["val"][key] for e in evals], marker="braille",
                         label=f"{r.get('model')} {overlay_label(r)}", color=COLOURS[i % len(COLOURS)])
        skipped = len([p for p in self.marked]) - len(rows) if self.marked else 0
        plot.refresh()
        if self._note():
            return
        note.update(Text(f"{skipped} marked run(s) of the other task are not drawn" if skipped > 0 else
                         "No evaluation yet: the curve starts at the first evaluation." if not drawn else
                         "space marks · e/c/g open in Evaluate/Classify/Generate · x saves CSV",
                         style="dim"))
        plot.refresh()

    def _metrics(self, path: str) -> list[dict]:
        """A run's evaluations, read again only when its metrics.jsonl changed: the overlay is drawn on every
        cursor move and whenever the run under it moves on (each follower tick of a live run), and reading a
        long run's file took 58 ms per 1,000 evaluations."""
        from namestudio.engine.runfolder import METRICS, read_jsonl   # torch: imported only once runs exist

        file = Path(path) / METRICS
        try:
            st = file.stat()
            sig = (st.st_size, st.st_mtime_ns)
        except OSError:
            sig = None
        cached = self._evals.get(path)
        if cached is not None and sig is not None and cached[0] == sig:
            return cached[1]
        records = read_jsonl(file)
        listed = {r["path"] for r in self.runs}      # runs gone from the list leave the cache
        self._evals = {p: v for p, v in self._evals.items() if p in listed}
        self._evals[path] = (sig, records)
        return records

    # ---- actions ------------------------------------------------------------------
    def action_mark(self) -> None:
        row = self.cursor_run()
        if not row:
            return
        path = row["path"]
        self.marked ^= {path}
        table = self.query_one("#runs-table", DataTable)
        table.update_cell(path, "mark", Text("●", style="bold green") if path in self.marked else Text(" "))
        self._draw_overlay()

    def action_open(self, target: str) -> None:
        row = self.cursor_run()
        if not row:
            self.app.notify("No run under the cursor.", severity="warning")
            return
        if row.get("error"):          # a damaged run has no task to check: say what is wrong with it, as `runs` does
            self.app.notify(f"{row['run']} cannot be opened: {row['error']}", severity="warning", markup=False)
            return
        need = "generate" if target == "generate" else "classify"
        if row.get("task") != need:
            self.app.notify(f"{row['run']} is a {row.get('task')} run; {target.capitalize()} needs a "
                            f"{'generator' if need == 'generate' else 'classifier'}.", severity="warning",
                            markup=False)
            return
        self.post_message(OpenRun(row["path"], target))

    def action_export(self) -> None:
        from namestudio.data.errors import NamestudioError
        row = self.cursor_run()
        if not row:
            self.app.notify("No run under the cursor.", severity="warning")
            return
        try:
            path = export_csv(Path(row["path"]))
        except (NamestudioError, OSError) as e:     # a damaged record is a message, not a crash of the app
            self.app.notify(str(e), title="Export failed", severity="error", markup=False)
            return
        self.app.notify(f"Saved {short_path(path)}", title="Metrics exported", markup=False)

    def action_watch(self) -> None:
        row = self.cursor_run()
        if not row or "error" in row:
            self.app.notify("No readable run under the cursor.", severity="warning")
            return
        self.app.attach_run(row["path"])
        self.app.notify(f"The Train pane follows {row['run']}.", markup=False)

    def action_resume_run(self) -> None:
        """`namestudio train --resume RUN` as a child in its own session (engine.process.launch_resume), followed
        on the Train pane as a run started there is."""
        from namestudio.data.errors import NamestudioError
        from namestudio.engine.process import launch_resume

        row = self.cursor_run()
        if not row or "error" in row:
            self.app.notify("No readable run under the cursor.", severity="warning")
            return
        try:
            launched = launch_resume(Path(row["path"]))
        except (NamestudioError, OSError) as e:
            self.app.notify(str(e).splitlines()[0], title="Cannot resume", severity="warning", markup=False)
            return
        self.app.run_launched(launched)
        self.app.notify(f"{row['run']} trains on from its last resume point; the Train pane follows it.",
                        title="Resumed", markup=False)
        self.app.refresh_runs()

    def action_refresh(self) -> None:
        self.app.refresh_runs()


STATE_STYLES = {"running": "bold green", "starting": "green", "paused": "bold yellow", "stopping": "yellow",
                "failed": "bold red", "stale": "bold red", "damaged": "red", rf.STOPPED: "dim", "done": ""}
# the words of every face (runfolder.REASON_WORDS: "early stop", "step limit", "stopped"), but "done" for a run
# that finished; a run stopped before its end is "stopped", as its run folder records it (runfolder.STOPPED)
REASON_WORDS = {**rf.REASON_WORDS, "finished": "done"}


def state_cell(r: dict) -> Text:
    """The run's state in words, with its progress while it is live: "running 14%", "paused 15%"."""
    state = rf.stopped_word(r.get("state") or r.get("status") or "")
    step, total = r.get("step") or 0, r.get("total_steps") or 0
    if state in ("running", "paused", "stopping", "starting"):
        text = f"{state} {100 * step / total:.0f}%" if total else state
    elif state in ("done", rf.STOPPED):
        reason = rf.stopped_word(r.get("reason"))
        text = REASON_WORDS.get(reason or "", str(reason or state).replace("_", " "))
        if text == rf.STOPPED:
            text = rf.state_words(state, r.get("untested"))   # "stopped, untrained": no test figures, and why
    elif state == "stale":
        text = f"stale at {step:,}" if step else "stale"
    else:
        text = state
    return Text(text, style=STATE_STYLES.get(state, ""))


def export_csv(run_dir: Path) -> Path:
    """metrics.jsonl as metrics.csv (one row per evaluation; val metrics flattened), plus the test metrics; the
    columns are every figure of either (a run stopped before its first evaluation has test figures alone).
    Written atomically."""
    import io

    from namestudio.engine.runfolder import METRICS, atomic_write_bytes, read_jsonl, read_test

    rows = read_jsonl(run_dir / METRICS)
    test = read_test(run_dir) or None      # {} when the run has none: no test row
    t = (test or {}).get("test") or {}
    keys: list[str] = []
    for figures in [r.get("val", {}) for r in rows] + [t]:
        for k, v in figures.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in keys:
                keys.append(k)
    f = io.StringIO(newline="")
    w = csv.writer(f)
    w.writerow(["split", "step", "epoch", "elapsed", "train_loss", *keys, "best"])
    for r in rows:
        w.writerow(["val", r.get("step"), r.get("epoch"), r.get("elapsed"), r.get("train_loss"),
                    *[r.get("val", {}).get(k, "") for k in keys], r.get("best", "")])
    if test is not None:
        w.writerow(["test", test.get("steps", ""), "", test.get("train_seconds", ""), "",
                    *[t.get(k, "") if isinstance(t.get(k), (int, float)) else "" for k in keys], ""])
    out = run_dir / "metrics.csv"
    atomic_write_bytes(out, f.getvalue().encode("utf-8"))
    return out


def overlay_label(row: dict) -> str:
    """A run's short name in the overlay's legend: its start time (HHMMSS), and for an experiment's run also
    its folder in the experiment (EXP's time/RUN), never a cut through the middle of a name."""
    run = row.get("run", "")
    if row.get("experiment"):
        stamp = "".join(ch for ch in row["experiment"] if ch.isdigit())[-6:]
        return f"{stamp}/{run.rsplit('/', 1)[-1]}"
    return short_run(row)[-6:]
