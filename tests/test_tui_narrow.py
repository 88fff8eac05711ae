"""80×24 (issue 12, items 9 and 10): everything that matters shows, focus is plain to see, and a snapshot of
every pane with data in it (a trained classifier and generator on the fixture data).

The two runs are trained once for the module (real `namestudio train` processes, seed 0, a few seconds),
then given fixed ids and times so that the snapshots do not depend on the clock.
"""
from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from rich.color import ColorSystem
from rich.console import Console
from textual.widgets import DataTable, Input, Tabs

from helpers import use_copy
from test_tui import fixture_app, make_app, settle, wait_for, write_fixture  # noqa: F401

NARROW = (80, 24)
RUN_IDS = {"classify": "20260101-120000-classify-lstm", "generate": "20260101-120100-generate-lstm"}
CLOCK_KEYS = {"names_per_s": 1000.0, "eta": 0.0, "train_seconds": 12.0, "started": 1767268800.0,
              "heartbeat": 1767268812.0, "created": "2026-01-01T12:00:00"}


def _fix_clock(value):
    """The same record with every clock-dependent field set to a fixed value."""
    if isinstance(value, dict):
        out = {k: (CLOCK_KEYS[k] if k in CLOCK_KEYS else _fix_clock(v)) for k, v in value.items()}
        if "elapsed" in out and "step" in out:
            out["elapsed"] = round(0.1 * out["step"], 3)
        if out.get("pid"):
            out["pid"] = 1
        if "data_source" in out:
            out["data_source"] = "names"
        return out
    if isinstance(value, list):
        return [_fix_clock(v) for v in value]
    return value


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("narrow")
    write_fixture(root / "names")
    for task in ("classify", "generate"):
        subprocess.run([sys.executable, "-m", "namestudio", "train", "--task", task, "--data", "names",
                        "--checkpoints", "ck", "--epochs", "3", "--hidden", "16", "--batch", "16", "--lr", "0.01",
                        "--seed", "0", "--json"], cwd=root, check=True, capture_output=True, timeout=300)
    for run in sorted((root / "ck").iterdir()):
        task = "classify" if "-classify-" in run.name else "generate"
        for f in run.iterdir():
            if f.suffix == ".json":
                f.write_text(json.dumps(_fix_clock(json.loads(f.read_text())), indent=1))
            elif f.suffix == ".jsonl":
                lines = [json.dumps(_fix_clock(json.loads(line))) for line in f.read_text().splitlines() if line]
                f.write_text("\n".join(lines) + "\n")
        run.rename(run.parent / RUN_IDS[task])
    return root


@pytest.fixture
def narrow_app(trained, tmp_path, monkeypatch):
    use_copy(trained, tmp_path, monkeypatch)
    import namestudio.tui.panes.generate as generate
    monkeypatch.setattr(generate, "random", random.Random(0))     # the Generate pane's samples, repeatable
    return make_app(data="names")


def run_path(app, task: str) -> str:
    """The run's path as the app lists it (the Runs pane's e/w keys use the same)."""
    return next(r["path"] for r in app.runs if r["run"] == RUN_IDS[task])


async def show_pane(pilot, pane: str) -> None:
    """Show a pane with data in it, as a user would get there."""
    app = pilot.app
    await wait_for(pilot, lambda: app.dataset is not None and len(app.runs) == 2, 30)
    for field in app.query(Input):
        field.cursor_blink = False
    if pane == "train":
        app.attach_run(run_path(app, "classify"))
        await wait_for(pilot, lambda: app.pane("train").ended is not None, 30)
    elif pane == "evaluate":
        from namestudio.tui.messages import OpenRun
        app.post_message(OpenRun(run_path(app, "classify"), "evaluate"))
        await wait_for(pilot, lambda: app.pane("evaluate").metrics and not app.pane("evaluate").follow_live, 30)
    await pilot.press({"data": "1", "train": "2", "evaluate": "3", "classify": "4", "generate": "5",
                       "runs": "6", "compare": "7"}[pane])
    if pane == "classify":
        await wait_for(pilot, lambda: app.pane("classify").run is not None, 30)
        await pilot.press(*"Uzkalug")
    if pane == "generate":       # its runs load in workers: the samples, then the classifier's checks of them
        await wait_for(pilot, lambda: app.pane("generate").samples and app.pane("generate").classifier, 30)
    await settle(pilot, app)
    for field in app.query(Input):
        field.cursor_blink = False
    await pilot.pause(0.2)


def rows_of_our_own(app) -> None:
    """The follower stops: a test that shows rows of its own in the Runs pane keeps them (a listing of the
    checkpoints that arrived between two of its lines replaced them)."""
    app.follower.close()


# ---- snapshots of every pane with data, at 80×24 ---------------------------------------------------
@pytest.mark.parametrize("pane", ["data", "train", "evaluate", "classify", "generate", "runs"])
def test_every_pane_with_data_at_80x24(pane, narrow_app, snap_compare):
    async def run_before(pilot) -> None:
        await show_pane(pilot, pane)

    assert snap_compare(narrow_app, terminal_size=NARROW, run_before=run_before)


# ---- the key bar keeps what matters -----------------------------------------------------------------
async def test_the_key_bar_keeps_the_pane_keys_esc_f1_palette_and_quit_at_80_columns(narrow_app):
    from namestudio.tui import keys
    from namestudio.tui.widgets import KeyBar, key_label

    app = narrow_app
    async with app.run_test(size=NARROW) as pilot:
        for pane in ["data", "train", "evaluate", "classify", "generate", "runs", "compare"]:
            await show_pane(pilot, pane)
            bar = app.query_one(KeyBar)
            line = str(bar.render())
            assert len(line) <= NARROW[0], line
            shown = {bid for _, _, _, bid in bar.fitted()}
            for bid in ("help", "palette", "quit"):
                assert bid in shown, (pane, line)
            # every key of the focused pane that the footer would show, less the few that may give way
            wanted = {(b.id or "").removeprefix("namestudio.") for b in keys.BY_PANE[pane] if b.show}
            active = {(a.binding.id or "").removeprefix("namestudio.") for a in app.screen.active_bindings.values()}
            for bid in (wanted & active) - set(keys.FOOTER_DROP):
                assert bid in shown, (pane, bid, line)
            if isinstance(app.focused, Input):          # inside a field: esc (leave it) shows too
                assert "leave" in shown and f"{key_label('escape')} " in line, (pane, line)


async def test_the_key_bar_drops_theme_and_svg_before_it_shortens_anything():
    from namestudio.tui.widgets import KeyBar, _bar_width

    bar = KeyBar()
    items = [(["c"], "Counts/%", True, "eval.counts"), (["f1"], "Keys", True, "help"),
             (["ctrl+p"], "Palette", True, "palette"), (["ctrl+s"], "SVG", True, "screenshot"),
             (["ctrl+t"], "Theme", True, "theme")]
    bar.items = lambda: items
    full = bar.fitted(200)
    assert [i[3] for i in full] == [i[3] for i in items]
    no_theme = bar.fitted(_bar_width(items) - 1)
    assert "theme" not in {i[3] for i in no_theme} and ("c", "Counts/%") == (no_theme[0][0][0], no_theme[0][1])
    tight = bar.fitted(25)
    assert {"screenshot", "theme"}.isdisjoint({i[3] for i in tight}) and tight[0][1] == "%"


# ---- the Data pane, the Runs pane, the Train pane's progress line ---------------------------------
def test_name_length_headers_are_whole_at_30_columns():
    from namestudio.tui.render import summary_tables

    table = summary_tables({"length": {"min": 1, "max": 21, "mean": 7.6, "median": 7.0, "p95": 12}})[1]
    console = Console(width=30, record=True, color_system=None)
    console.print(table)
    text = console.export_text()
    assert "…" not in text
    for header in ("min", "max", "mean", "med", "p95"):
        assert header in text


def test_the_train_panes_end_line_keeps_the_run_id_of_a_long_folder_in_sight():
    """At 80 columns the status is 50 cells wide: "Best checkpoint: checkpoints/20261207-184947-classify-lstm" (58)
    wrapped to a fourth line, out of sight. The folder loses its beginning instead."""
    from namestudio.tui.render import Squeezed

    line = Squeezed("Best checkpoint: ", "checkpoints/20261207-184947-classify-lstm").lines(50).plain
    assert len(line) <= 50 and line.startswith("Best checkpoint: …") and line.endswith("20261207-184947-classify-lstm")
    assert Squeezed("Best checkpoint: ", "ck/r1").lines(50).plain == "Best checkpoint: ck/r1"


def test_long_labels_shorten_the_bars_so_the_tables_beside_them_keep_their_columns():
    """A 12-letter label ("Scandinavian") widened the Names per label table by 2 and cut Name length's p95 at 80
    columns; 14 letters cut its median too. The bars give way, up to a point."""
    from namestudio.tui.render import summary_tables

    def width(labels: list[str]) -> int:
        table = summary_tables({"per_label": {lab: 40 - i for i, lab in enumerate(labels)}})[0]
        table.title = None
        return Console(width=200).measure(table).maximum

    usual = width(["Portuguese", "Dutch"])                 # the names data's longest label: 10 letters
    assert width(["Scandinavian", "Dutch"]) <= usual and width(["Serbo-Croatian", "Dutch"]) <= usual
    assert width(["Deutsch (Österreich)", "Dutch"]) < usual + 10      # the bars keep 8 cells: it grows, less


async def test_the_runs_table_shows_state_and_test_f1_within_80_columns(narrow_app):
    app = narrow_app
    async with app.run_test(size=NARROW) as pilot:
        await show_pane(pilot, "runs")
        table = app.query_one("#runs-table", DataTable)
        right = 0
        edges = {}
        for column in table.ordered_columns:
            right += column.get_render_width(table)
            edges[column.key.value] = right
        assert edges["status"] <= NARROW[0] - 2 and edges["f1"] <= NARROW[0] - 2, edges
        states = [str(table.get_cell(key, "status")) for key in table.rows]
        assert states == ["done", "done"]


async def test_an_empty_runs_plot_says_what_would_fill_it(fixture_app):
    app = fixture_app                          # the fixture data, an empty checkpoints folder
    async with app.run_test(size=NARROW) as pilot:
        await settle(pilot, app)
        await pilot.press("6")
        await settle(pilot, app)
        assert not app.query_one("#runs-plot").display
        note = str(app.query_one("#runs-note").render())
        assert "No curves to plot yet" in note and "Train pane (2)" in note


def test_the_progress_line_fits_its_width_and_keeps_the_eta():
    from types import SimpleNamespace

    from namestudio.tui.panes.train import progress_words

    msg = SimpleNamespace(epoch=1.93, eta=28.0, names_per_s=4835.2, step=170, total_steps=1232, loss=0.8471)
    wide = progress_words(msg, 14, 200)
    assert "step 170/1,232" in wide and "4,835 names/s" in wide
    for width in (40, 50, 60):
        text = progress_words(msg, 14, width)
        assert len(text) <= width and "ETA 0:28" in text and "1.9/14" in text, text
        assert "step 170/1,232" in text          # the bench reads the step off the screen (tui/bench/attach.py)


def test_the_status_line_fits_80_columns():
    from namestudio.tui.app import status_line

    data = "data pytorch-names (18,012 names, 18 labels)"
    train = "paused lstm classify at 24%"
    assert status_line(data, train, "ck", 200) == f" {data} │ {train} │ runs in ck"
    line = status_line(data, train, "checkpoints", 80)
    assert len(line) <= 80 and train in line and "18,012 names" in line
    # a long path: its middle goes, the training words stay whole (they lost "8.4/14" at the edge)
    data, train = "data /work/shared/data/names (18,012 rows, 18 labels)", "training lstm classify 60% · epoch 8.4/14"
    line = status_line(data, train, "checkpoints", 80)
    assert len(line) <= 80 and line.endswith(f" │ {train}") and "names (18,012 rows)" in line and "…" in line, line
    assert status_line(data, train, "ck", 44) == f" {train}"


# ---- focus --------------------------------------------------------------------------------------------
def _eight_bit(color) -> tuple[int, int, int]:
    rich = color.rich_color.downgrade(ColorSystem.EIGHT_BIT)
    return tuple(rich.get_truecolor())


async def test_the_focused_field_stands_out_in_256_colours(narrow_app):
    app = narrow_app
    async with app.run_test(size=NARROW) as pilot:
        await show_pane(pilot, "train")
        field = app.query_one("#f-epochs", Input)
        before = _eight_bit(field.background_colors[1])
        field.focus()
        await pilot.pause(0.2)
        assert app.focused is field
        after = _eight_bit(field.background_colors[1])
        assert sum(abs(a - b) for a, b in zip(before, after)) >= 60, (before, after)


async def test_tab_never_lands_on_the_tab_bar(narrow_app):
    app = narrow_app
    async with app.run_test(size=NARROW) as pilot:
        await show_pane(pilot, "train")
        for _ in range(25):
            await pilot.press("tab")
            assert not isinstance(app.focused, Tabs)
            assert app.focused is not None and app.pane("train") in app.focused.ancestors
        await pilot.press("shift+tab")
        assert not isinstance(app.focused, Tabs)


async def test_a_state_that_grows_in_place_widens_its_column(narrow_app):
    """A run's row is updated in place as it goes; "early stop" is wider than "running" and must not be
    cut ("early s")."""
    app = narrow_app
    async with app.run_test(size=NARROW) as pilot:
        await show_pane(pilot, "runs")
        rows_of_our_own(app)
        runs = app.pane("runs")
        row = {"run": "20260101-130000-classify-lstm", "path": "/runs/x", "task": "classify", "model": "lstm",
               "state": "running", "step": 0, "total_steps": 0}     # no total yet: "running"
        runs.set_runs([row])
        await pilot.pause()
        runs.set_runs([{**row, "state": "done", "reason": "early_stop"}])    # the same row, in place
        await pilot.pause()
        table = app.query_one("#runs-table", DataTable)
        cell = table.get_cell("/runs/x", "status")
        width = table.columns[next(k for k in table.columns if k.value == "status")].get_render_width(table)
        assert str(cell) == "early stop" and width >= len("early stop")


async def test_the_progress_line_fits_when_the_run_was_attached_while_the_pane_was_hidden(narrow_app):
    """The words under the bar are chosen for the width the line has when drawn: a run attached and drawn
    while the Train pane is hidden (no width yet) must not keep words chosen for 200 cells once shown."""
    app = narrow_app
    async with app.run_test(size=NARROW) as pilot:
        await wait_for(pilot, lambda: app.dataset is not None and len(app.runs) == 2, 30)
        await settle(pilot, app)
        pane = app.pane("train")
        app.attach_run(run_path(app, "classify"))
        await wait_for(pilot, lambda: pane.ended is not None and pane.last_step is not None, 30)
        await pilot.pause(0.3)
        pane._draw_progress()       # drawn before the line has a width (the 4 Hz timer can tick between
        pane._dirty = pane._dirty_steps = False   # the key that shows the pane and its layout), then not again
        await pilot.press("2")
        await pilot.pause(0.3)
        line = app.query_one("#train-rate")
        text = str(line.render())
        assert "step" in text and 0 < len(text) <= line.size.width, (text, line.size.width)


async def test_a_run_a_pane_cannot_use_is_said_and_the_pane_keeps_its_run(narrow_app, tmp_path):
    """Classify and Generate load runs in a worker: a generator opened in Classify, or a run whose weights are
    gone, is a notification, and the pane and its selector stay on the run they show."""
    import shutil
    from namestudio.tui.messages import OpenRun
    app = narrow_app
    async with app.run_test(size=NARROW) as pilot:
        await wait_for(pilot, lambda: app.dataset is not None and len(app.runs) == 2, 30)
        clf = app.pane("classify")
        await wait_for(pilot, lambda: clf.run is not None, 30)
        shown = str(clf.run.path)
        app.post_message(OpenRun(run_path(app, "generate"), "classify"))
        await wait_for(pilot, lambda: any("this needs a classifier" in n.message for n in app._notifications), 30)
        await settle(pilot, app)
        assert str(clf.run.path) == shown and clf.wanted is None
        assert app.query_one("#clf-run").value == shown
        broken = Path(shown).parent / "broken-classify"
        shutil.copytree(shown, broken)
        (broken / "model.safetensors").unlink()
        app.post_message(OpenRun(str(broken), "classify"))
        await wait_for(pilot, lambda: any(n.title == "Cannot load the run" and "broken-classify" in n.message
                                          for n in app._notifications), 30)
        await settle(pilot, app)
        assert str(clf.run.path) == shown and app.query_one("#clf-run").value == shown


async def test_an_experiments_long_run_ids_leave_state_and_test_f1_within_80_columns(narrow_app):
    """An experiment's run id (exp-<date>-<time>-<task>/<model>-<key>=<value>…) is 50-odd characters: the table
    shows it short, each run still told apart, and the title shows the highlighted run's whole id."""
    app = narrow_app
    exp = "exp-20260101-130000-classify"
    labels = ["lstm-hidden=256-dropout=0.3", "lstm-hidden=512-dropout=0.3", "gru-hidden=256-lr=1e-05"]
    rows = [{"run": f"{exp}/{lab}", "path": f"/runs/{i}", "task": "classify", "model": lab.split("-")[0],
             "experiment": exp, "state": "stopped", "reason": "stopped", "test_accuracy": 0.861,
             "test_macro_f1": 0.586} for i, lab in enumerate(labels)]
    async with app.run_test(size=NARROW) as pilot:
        await show_pane(pilot, "runs")
        await settle(pilot, app)              # the app's own listing of the checkpoints arrived: it is not ours
        rows_of_our_own(app)
        runs = app.pane("runs")
        runs.set_runs(rows)
        await pilot.pause()
        table = app.query_one("#runs-table", DataTable)
        right, edges = 0, {}
        for column in table.ordered_columns:
            right += column.get_render_width(table)
            edges[column.key.value] = right
        assert edges["status"] <= NARROW[0] - 2 and edges["f1"] <= NARROW[0] - 2, edges
        cells = [str(table.get_cell(r["path"], "run")) for r in rows]
        assert len(set(cells)) == 3 and all("256" in c or "512" in c for c in cells), cells
        assert [str(table.get_cell(r["path"], "status")) for r in rows] == ["stopped"] * 3
        table.focus()
        table.move_cursor(row=1)
        title = lambda: str(app.query_one("#runs-title").render())
        await wait_for(pilot, lambda: title().startswith(f"{exp}/lstm-hidden=512-dropout=0.3 · 3 runs in"), 10)


async def test_opening_a_damaged_run_says_what_is_wrong_not_a_none_run(narrow_app):
    """g or e on a run whose weights are gone said "… is a None run; Generate needs a generator" (a damaged row has
    no task): it says the run is damaged and why, as `runs` does."""
    app = narrow_app
    async with app.run_test(size=NARROW) as pilot:
        await show_pane(pilot, "runs")
        rows_of_our_own(app)
        runs = app.pane("runs")
        runs.set_runs([{"run": "gen-x", "path": "/runs/gen-x", "error": "/runs/gen-x/model.safetensors: no such "
                                                                        "weights file"}])
        await pilot.pause()
        runs.action_open("generate")
        await pilot.pause()
        messages = [n.message for n in app._notifications]
        assert any("gen-x cannot be opened: /runs/gen-x/model.safetensors: no such weights file" in m
                   for m in messages), messages
        assert not any("None" in m for m in messages)
        # its row says "damaged" alone (the error's first 40 characters widened the state column for every run and
        # pushed the figures off screen); the note under the table says it whole
        table = app.query_one("#runs-table")
        assert str(table.get_row_at(0)[2]) == "damaged"
        assert "gen-x: damaged: /runs/gen-x/model.safetensors: no such weights file" in str(
            app.query_one("#runs-note").render())


# ---- the Evaluate pane's reliability view while the attached run trains -----------------------------
@pytest.mark.parametrize("size", [NARROW, (100, 30)])
async def test_the_still_training_reliability_message_wraps_and_keeps_the_figures(narrow_app, size):
    app = narrow_app
    async with app.run_test(size=size) as pilot:
        await show_pane(pilot, "evaluate")
        pane = app.pane("evaluate")
        # as tui/follow.py leaves it while a run trains: its live validation shown, not ended
        pane.live_run, pane.live_ended = pane.shown_run, False
        pane.live = (pane.metrics, pane.labels, "Validation, live · epoch 1.00")
        pane.action_follow_live()
        await pilot.press("r")
        await settle(pilot, app)
        cm, side = app.query_one("#eval-cm"), app.query_one("#eval-side")
        assert "still training" in str(cm.render())
        text = " ".join(line.text.strip() for line in cm.render_lines(cm.region.reset_offset))
        assert "(or open a saved run, o)." in " ".join(text.split()), text
        width = app.screen.size.width
        assert cm.region.right <= width and side.region.right <= width and side.region.width >= 20
        headline = " ".join(line.text for line in app.query_one("#eval-headline").render_lines(
            app.query_one("#eval-headline").region.reset_offset))
        assert "accuracy" in headline, headline


async def test_the_data_paths_placeholder_is_whole_at_80_columns(narrow_app):
    app = narrow_app
    async with app.run_test(size=NARROW) as pilot:
        await show_pane(pilot, "data")
        field = app.query_one("#data-path", Input)
        field.value = ""
        await pilot.pause()
        shown = field.render_line(0).text.strip()
        assert shown == field.placeholder and shown.endswith("; Enter"), (shown, field.content_region.width)


async def test_the_key_bar_keeps_esc_f1_palette_and_quit_with_a_train_field_focused_at_80_columns(narrow_app):
    from namestudio.tui.widgets import KeyBar, key_label

    app = narrow_app
    async with app.run_test(size=NARROW) as pilot:
        await show_pane(pilot, "train")
        app.query_one("#f-epochs", Input).focus()          # as Tab into Epochs leaves it
        await pilot.pause()
        await settle(pilot, app)
        bar = app.query_one(KeyBar)
        line = str(bar.render())
        assert len(line) <= NARROW[0], line
        shown = [bid for _, _, _, bid in bar.fitted()]
        assert {"leave", "help", "palette", "quit"} <= set(shown), line
        assert line.rstrip().endswith(f"{key_label('ctrl+q')} Quit"), line
        assert "train.start" in shown and "train.stop" in shown, line   # the pane's first keys stay


def _wide_matrix_metrics(n: int = 24):
    """A classifier's metrics over ``n`` labels whose names cannot be shortened (they differ only at the end)."""
    import torch

    from namestudio.engine.metrics import classification_report

    labels = [f"Lang{i:02d}" for i in range(n)]
    cm = [[(7 * i + 3 * j) % 11 + (1200 if i == j else 0) for j in range(n)] for i in range(n)]
    return labels, classification_report(torch.tensor(cm), labels)


def _drawn(widget) -> list[str]:
    return [strip.text.rstrip() for strip in widget.render_lines(widget.region.reset_offset)]


async def test_a_matrix_wider_than_the_pane_is_shown_in_parts_and_whole_again_when_it_fits(fixture_app):
    """24 labels need 175 columns: at 80 the Evaluate pane showed the first 10 predicted columns and dropped the
    rest with no word of it (as `namestudio eval` did in a terminal before it split the matrix). Now each part
    holds a few predicted columns with every row, headed by which columns it holds."""
    app = fixture_app
    labels, metrics = _wide_matrix_metrics()
    async with app.run_test(size=NARROW) as pilot:
        await settle(pilot, app)
        await pilot.press("3")
        app.pane("evaluate").show_metrics(metrics, labels, "Validation · synthetic")
        await settle(pilot, app)
        cm = app.query_one("#eval-cm")
        lines = _drawn(cm)
        heads = [line for line in lines if line.startswith("columns ")]
        assert len(heads) >= 3 and heads[0].startswith("columns 1–") and heads[-1].endswith(" of 24"), heads
        header_words = [w for line in lines for w in line.split() if w.startswith("Lang")]
        assert all(header_words.count(label) == 1 + len(heads) for label in labels), header_words   # header + rows
        assert cm.region.right <= app.pane("evaluate").content_region.right
        assert max(len(line) for line in lines) <= cm.region.width

        await pilot.resize_terminal(200, 40)    # wide enough: the whole matrix again, beside the figures
        await settle(pilot, app)
        await pilot.pause(0.2)
        lines = _drawn(cm)
        assert not any(line.startswith("columns ") for line in lines), lines[:3]
        assert lines[0].split() == labels
        assert cm.region.right <= app.query_one("#eval-side").region.x
