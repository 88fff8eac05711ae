"""The Textual app, driven with run_test/Pilot on a tiny fixture dataset."""
from __future__ import annotations

import csv
import os
import signal
import time
from pathlib import Path

import pytest
from textual import events
from textual.command import CommandList, CommandPalette
from textual.widgets import DataTable, Input, Select

from namestudio.engine import runfolder as rf
from namestudio.engine.config import TrainConfig
from namestudio.engine.infer import load_run
from namestudio.engine.process import launch_train
from namestudio.tui import keys
from namestudio.tui.app import NameStudioApp
from namestudio.tui.dialogs import QuitScreen
from namestudio.tui.widgets import HelpScreen

SIZE = (100, 30)
FAST = {"f-epochs": "3", "f-hidden": "16", "f-batch": "16", "f-lr": "0.01", "f-seed": "0"}

_STEMS = ["ka", "lo", "mi", "ra", "te", "vi", "no", "sa", "pe", "du"]


def write_fixture(root: Path) -> Path:
    """Three made-up languages x 30 distinct names, each with a clear letter pattern."""
    stems = [a + b for a in _STEMS for b in _STEMS if a != b][:90]
    patterns = {"Alvish": lambda s: s.capitalize() + "wen", "Dwarvish": lambda s: "Gr" + s + "k",
                "Orcish": lambda s: "Uz" + s + "ug"}
    root.mkdir(parents=True, exist_ok=True)
    for i, (label, make) in enumerate(patterns.items()):
        names = [make(s) for s in stems[i * 30:(i + 1) * 30]]
        (root / f"{label}.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    return root


@pytest.fixture
def fixture_app(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NAMESTUDIO_DATA_DIR", str(tmp_path / "userdata"))   # no pytorch-names on disk
    write_fixture(tmp_path / "names")
    return make_app(data="names")


def make_app(**kw) -> NameStudioApp:
    app = NameStudioApp(checkpoints="ck", **kw)
    app.animation_level = "none"     # fewer frames: faster, and nothing moves in snapshots
    return app


def busy_workers(app) -> list:
    """The app's workers that end by themselves (not the run follower, which lives as long as the app)."""
    return [w for w in app.workers if w.group != "follow"]


async def wait_workers(app) -> None:
    from textual.worker import WorkerCancelled
    for _ in range(50):
        busy = busy_workers(app)
        if not busy:                          # (an empty list would mean every worker, the follower included)
            return
        try:
            await app.workers.wait_for_complete(busy)
            return
        except WorkerCancelled:               # an exclusive worker replaced by a newer one (the app's normal way):
            continue                          # wait for that one


async def settle(pilot, app) -> None:
    """The workers done, and what their messages started (a run loaded in a worker starts a prediction or a
    sampling worker when its message arrives) done too."""
    for _ in range(20):
        await wait_workers(app)
        for _ in range(3):
            await pilot.pause()
        if not busy_workers(app):
            return


async def set_form(app, values: dict) -> None:
    for fid, value in values.items():
        app.query_one(f"#{fid}", Input).value = value


async def tap(pilot, key: str, char: str | None = None) -> None:
    """A key press that does not wait for the process to go idle (Pilot.press waits up to 2 s for that,
    and a training run keeps the process busy); the key is handled before this returns."""
    pilot.app.post_message(events.Key(key, char if char is not None else (key if len(key) == 1 else None)))
    await pilot.pause(0.05)


async def wait_for(pilot, condition, timeout: float = 60.0) -> None:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError("timed out waiting")
        await pilot.pause(0.05)


async def train(pilot, app, task: str = "classify", **form) -> None:
    """Start a run from the Train pane (a real child process) and wait until the pane shows it ended."""
    await pilot.press("2")
    app.query_one("#f-task", Select).value = task
    await pilot.pause()
    await set_form(app, {**FAST, **form})
    await pilot.press("s")
    pane = app.pane("train")
    await wait_for(pilot, lambda: pane.ended is not None, 90)
    await settle(pilot, app)
    assert not pane.running
    if pane.last_step is not None:     # the last progress words stay, with no time left to tell (no "ETA 0:38")
        def words() -> str:
            return str(app.query_one("#train-rate").render())
        await wait_for(pilot, lambda: "step" in words() and "ETA" not in words(), 10)   # drawn on the next tick
    for child in app.follower.children:
        assert child.popen.wait(30) == 0


def kill_children(app) -> None:
    """Cleanup: no child of a test outlives it."""
    for child in list(app.follower.children):
        kill(child.popen)


def kill(popen) -> None:
    if popen.poll() is None:
        try:
            os.killpg(popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        popen.wait(10)


async def test_default_source_is_builtin_without_pytorch_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NAMESTUDIO_DATA_DIR", str(tmp_path / "userdata"))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        assert app.dataset.source == "builtin"
        assert "pytorch-names is not on disk" in str(app.query_one("#data-status").render())


async def test_default_source_is_pytorch_names_when_on_disk(tmp_path, monkeypatch):
    import namestudio.data as data

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NAMESTUDIO_DATA_DIR", str(tmp_path / "userdata"))
    write_fixture(data.pytorch_names_dir())
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        assert app.dataset.source == "pytorch-names"
        assert "pytorch-names is on disk" in str(app.query_one("#data-status").render())


async def test_starts_on_given_data_says_why_and_switches_source(fixture_app, monkeypatch, tmp_path):
    import namestudio.data as data

    def fake_download(progress=None, **kw):      # no network: a download of the fixture, in 4 chunks
        for done in (0, 100, 200, 300, 400):
            progress(done, 400)
        return write_fixture(data.pytorch_names_dir())

    monkeypatch.setattr(data, "download_pytorch_names", fake_download)
    app = fixture_app
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        assert app.dataset is not None and app.dataset.labels == ["Alvish", "Dwarvish", "Orcish"]
        status = str(app.query_one("#data-status").render())
        assert "Active source: names" in status and "90 names" in status and "chosen with --data" in status
        await pilot.press("o")
        await pilot.press(*"nowhere", "enter")
        await settle(pilot, app)
        status = str(app.query_one("#data-status").render())
        assert "Could not load" in status and "Still using names" in status
        assert app.dataset.labels == ["Alvish", "Dwarvish", "Orcish"]
        await pilot.press("escape", "b")      # the field kept the focus after the error (issue 12): Esc leaves it
        await settle(pilot, app)
        assert app.dataset.source == "builtin"
        # pytorch-names is not on disk: p downloads it (with a progress bar), then uses it
        await pilot.press("p")
        await settle(pilot, app)
        bar = app.query_one("#download-bar")
        assert bar.total == 400 and bar.progress == 400 and not app.query_one("#download-row").display
        assert app.dataset.source == "pytorch-names" and "downloaded just now" in str(
            app.query_one("#data-status").render())


async def test_train_classifier_then_generator_through_the_ui(fixture_app, tmp_path):
    app = fixture_app
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await train(pilot, app, "classify")
        pane = app.pane("train")
        # the plots received points
        h = pane.history
        assert h["step_loss"] and len(h["step_loss"]) == len(h["step_epoch"])
        assert len(h["eval_epoch"]) >= 1 and all(0 <= a <= 1 for a in h["val_metric"])
        assert "Done" in str(app.query_one("#train-status").render())
        run_dir = Path(pane.run_dir)
        assert (run_dir / "model.safetensors").is_file()

        # Evaluate: 3x3 confusion with a non-empty diagonal
        await pilot.press("3")
        ev = app.pane("evaluate")
        cm = ev.metrics["confusion"]
        assert len(cm) == 3 and all(len(row) == 3 for row in cm)
        assert sum(cm[i][i] for i in range(3)) > 0
        table = app.query_one("#eval-cm").content          # the coloured Rich table on screen ...
        if hasattr(table, "columns"):
            assert len(table.columns) == 1 + 3 and table.row_count == 3
        else:                                              # ... or it drawn ahead of the switch, as styled text
            lines = [line.strip() for line in str(table).splitlines() if line.strip()]
            heads = lines[0].split()
            assert len(lines) == 1 + 3 and len(heads) == 3, lines              # a header and 3 rows
            assert [line[:3] for line in lines[1:]] == heads, lines            # each row starts with its label
        assert ev.run_path == run_dir
        await pilot.press("c")
        assert ev.percent is False

        # Classify: k probabilities that sum to at most 1, updated as you type
        await pilot.press("4")
        assert isinstance(app.focused, Input) and app.focused.id == "clf-name"
        await pilot.press(*"Grmik")
        clf = app.pane("classify")
        await wait_for(pilot, lambda: not clf.busy)          # predicted in a worker, off the UI thread
        assert len(clf.results) == 3 and sum(p for _, p in clf.results) <= 1 + 1e-6
        assert all(0 <= p <= 1 for _, p in clf.results)
        label, scores = clf.attribution
        assert label == clf.results[0][0] and len(scores) == len("Grmik")
        await pilot.press("escape", "down")
        await wait_for(pilot, lambda: not clf.busy)
        assert len(clf.results) == 2
        app.query_one("#clf-name", Input).value = "!!!"      # no letter the run knows: an error, and nothing
        await pilot.pause()                                  # left of Grmik's letters under it
        await wait_for(pilot, lambda: not clf.busy)
        assert clf.results == [] and "no letter this run knows" in str(app.query_one("#clf-probs").render())
        assert str(app.query_one("#clf-attr").render()).strip() == ""

        # a generator, then Generate
        await train(pilot, app, "generate")
        await pilot.press("5")
        gen = app.pane("generate")
        assert gen.run is not None and gen.run.task == "generate"
        assert gen.classifier is not None          # the classifier trained above checks the samples
        app.query_one("#gen-lang", Select).value = "Orcish"
        await set_form(app, {"gen-start": "Uz", "gen-count": "7"})
        await pilot.press("ctrl+r")
        await settle(pilot, app)
        assert len(gen.samples) == 7
        assert all(s["name"].startswith("Uz") and s["lang"] == "Orcish" for s in gen.samples)
        assert all("agrees" in s for s in gen.samples) and gen.agreement is not None
        assert f"classifier agrees on {100 * gen.agreement:.0f}%" in str(app.query_one("#gen-summary").render())

        # Runs: both runs listed; overlay; CSV export (Escape first: the start field refuses digits)
        await pilot.press("escape", "6")
        await settle(pilot, app)
        runs = app.pane("runs")
        table = app.query_one("#runs-table", DataTable)
        assert table.row_count == 2 and {r["task"] for r in runs.runs} == {"classify", "generate"}
        assert {Path(r["path"]).resolve() for r in runs.runs} >= {run_dir.resolve()}
        await pilot.press("space")
        assert len(runs.marked) == 1
        await pilot.press("x")
        exported = Path(runs.cursor_run()["path"]) / "metrics.csv"
        rows = list(csv.reader(exported.open()))
        assert rows[0][:3] == ["split", "step", "epoch"] and len(rows) >= 2

        # Load a run from Runs into Evaluate
        table.move_cursor(row=[i for i, r in enumerate(runs.runs) if r["task"] == "classify"][0])
        await pilot.press("e")
        await settle(pilot, app)
        assert app.query_one("#panes").active == "evaluate"
        assert Path(app.pane("evaluate").shown_run).resolve() == run_dir.resolve()
        assert app.pane("evaluate").title.startswith("Test split")

        # SVG screenshot into the loaded run's folder
        await pilot.press("ctrl+s")
        shots = list(run_dir.glob("namestudio-evaluate-*.svg"))
        assert len(shots) == 1 and shots[0].read_text().lstrip().startswith("<svg")


def status_of(pane) -> rf.RunStatus:
    return rf.read_status(Path(pane.run_dir))


async def start_long_run(pilot, app):
    """A run from the Train pane that would go on for long (no early stop), followed until it has points."""
    app.train_overrides = {"patience": 0, "eval_every": 5, "log_every": 1}
    await pilot.press("2")
    await set_form(app, {**FAST, "f-epochs": "400"})
    await pilot.press("s")
    pane = app.pane("train")
    await wait_for(pilot, lambda: pane.state == "running" and len(pane.history["step_loss"]) >= 2
                   and len(pane.history["eval_epoch"]) >= 1)
    return pane


async def test_start_pause_resume_stop_a_child_process(fixture_app):
    app = fixture_app
    async with app.run_test(size=SIZE) as pilot:
        try:
            await settle_data(pilot, app)
            pane = await start_long_run(pilot, app)
            child = app.follower.children[0]
            assert child.popen.poll() is None and Path(pane.run_dir) == child.run_dir
            assert os.getsid(child.pid) == child.pid            # its own session: it outlives the TUI
            await tap(pilot, "s")                                 # s while training: a notice says why, nothing starts
            assert any("still training" in n.message for n in app._notifications)
            assert len(app.follower.children) == 1
            assert status_of(pane).state == "running" and pane.total_steps > 0
            await tap(pilot, "p")
            await wait_for(pilot, lambda: pane.state == "paused")
            assert status_of(pane).state == "paused"             # the status file says so, not only the pane
            await wait_for(pilot, lambda: "paused" in str(app.query_one("#status-bar").render()))
            bar = str(app.query_one("#status-bar").render())
            assert "training" not in bar and "%" in bar
            await tap(pilot, "p")
            await wait_for(pilot, lambda: pane.state == "running")
            n = len(pane.history["step_loss"])
            await wait_for(pilot, lambda: len(pane.history["step_loss"]) > n)    # it trains again
            await tap(pilot, "x")
            await wait_for(pilot, lambda: pane.ended is not None)
            assert child.popen.wait(30) == 130           # stopped before its end (cli: exit 130)
            assert status_of(pane).state == "stopped" and pane.state == "stopped"
            assert "stopped" in str(app.query_one("#train-status").render())
            run = load_run(pane.run_dir)
            assert run.task == "classify" and run.test_metrics()["reason"] == "stopped"
            assert "accuracy" in run.test_metrics()["test"]
            assert run.classify(["Grmik"], 2)[0]
            # the Runs pane shows it ended, without a key press
            assert any("stopped" in n.message for n in app._notifications)    # the toast: the same words
            await pilot.press("6")
            await wait_for(pilot, lambda: any(r["path"] == str(child.run_dir) and r["state"] == "stopped"
                                              for r in app.pane("runs").runs))
            from namestudio.tui.panes.runs import state_cell
            row = next(r for r in app.pane("runs").runs if r["path"] == str(child.run_dir))
            assert str(state_cell(row)) == "stopped"
            assert str(state_cell({"state": "done", "reason": "some_new_reason"})) == "some new reason"
        finally:
            kill_children(app)


async def settle_data(pilot, app) -> None:
    await wait_for(pilot, lambda: app.dataset is not None and app.pane("train").devices)


async def test_a_run_started_elsewhere_is_followed_and_its_death_shown(fixture_app, tmp_path):
    app = fixture_app
    popen = None
    async with app.run_test(size=SIZE) as pilot:
        try:
            await settle_data(pilot, app)
            await pilot.press("6")
            cfg = TrainConfig(data="names", hidden=16, epochs=400, batch_size=16, lr=1e-2, log_every=1,
                              eval_every=5, patience=0, threads=1, seed=0, device="cpu")
            outside = launch_train(cfg, "ck")      # not through the TUI: as `namestudio train` would
            popen = outside.popen
            runs = app.pane("runs")
            row = lambda: next((r for r in runs.runs if r["path"] == str(outside.run_dir)), None)  # noqa: E731
            await wait_for(pilot, lambda: row() is not None and row()["state"] == "running" and row()["step"] > 0)
            cell = str(app.query_one("#runs-table", DataTable).get_cell(str(outside.run_dir), "status"))
            assert cell.startswith("running ") and cell.endswith("%")      # progress, updated without a key
            assert app.own_live_runs() == []                                # the TUI did not start it
            table = app.query_one("#runs-table", DataTable)
            table.move_cursor(row=table.get_row_index(str(outside.run_dir)))
            await pilot.press("w")                                          # watch it on the Train pane
            pane = app.pane("train")
            await wait_for(pilot, lambda: pane.run_dir == str(outside.run_dir) and len(pane.history["step_loss"]) >= 3)
            first = pane.history["step_loss"][0]
            assert first == rf.read_jsonl(outside.run_dir / rf.STEPS)[0]["loss"]   # filled from the log's start
            os.kill(outside.pid, signal.SIGKILL)                             # the trainer dies
            popen.wait(10)
            await wait_for(pilot, lambda: pane.state == "failed")
            await wait_for(pilot, lambda: row()["state"] == "stale")
            await pilot.press("2")
            status = str(app.query_one("#train-status").render())
            assert "trainer is gone" in status and status.startswith("Run stale:")    # as runs says: stale
            assert pane.status_text() == "last run stale"
            assert app.pane("train").check_action("start", ()) is True     # still usable
            await pilot.press("6")
            table.move_cursor(row=table.get_row_index(str(outside.run_dir)))
            await pilot.pause()
            assert runs.last_note and "stale" in runs.last_note[0]
            log = rf.last_log_lines(outside.run_dir, 4)
            assert log and runs.last_note[1:] == log                        # the last lines of its train.log
        finally:
            if popen is not None:
                kill(popen)


def test_the_train_panes_stop_words_say_what_the_stop_keeps_at_that_moment(tmp_path):
    """The Train pane's Stop said "the best checkpoint so far is kept and tested" before the first step and before
    the first evaluation, as `train`'s Ctrl-C line did; now the same words as `train`'s: what is kept now."""
    from namestudio.engine.events import Started, Step
    from namestudio.tui.panes.train import TrainPane
    pane = TrainPane()
    pane.run_dir = str(tmp_path)
    # no step reported yet (its log says one every few steps): what it keeps depends on what it trains meanwhile
    assert pane._stopping_words() == ("Stopping: no trained step reported yet: the weights it has when it stops "
                                      "are kept and tested (nothing, if it has not trained a step) …")
    pane.last_step = Step(step=20, epoch=0.1, loss=2.0, names_per_s=1.0, elapsed=1.0, eta=9.0, total_steps=100)
    assert "no checkpoint yet: the current weights are kept and tested" in pane._stopping_words()
    (tmp_path / rf.WEIGHTS).write_bytes(b"")
    assert pane._stopping_words() == "Stopping after this batch: the best checkpoint so far is kept and tested …"
    pane.last_step = None
    (tmp_path / rf.WEIGHTS).unlink()
    pane._started(Started(run_dir=str(tmp_path), config={}, labels=[], total_steps=100, steps_per_epoch=10,
                          n_train=10, device="cpu", start_step=40))     # resumed at step 40: trained before
    assert "the current weights are kept" in pane._stopping_words()


async def test_a_run_stopped_before_any_training_is_shown_untrained_and_offered_nowhere(fixture_app):
    """A run stopped as it started (step 0) was tested on its untrained weights; the TUI then offered it to the
    Classify and Evaluate panes with those figures. Now its row says "stopped, untrained", the Train pane says
    why it has no test figures, and no selector offers it."""
    import subprocess
    import sys
    app = fixture_app
    outside = None
    async with app.run_test(size=SIZE) as pilot:
        try:
            await settle_data(pilot, app)
            await pilot.press("6")
            cfg = TrainConfig(data="names", hidden=16, epochs=50, batch_size=16, threads=1, seed=0, device="cpu")
            outside = launch_train(cfg, "ck")
            stop = subprocess.run([sys.executable, "-m", "namestudio.tui.cli", "stop", str(outside.run_dir)],
                                  capture_output=True, text=True, timeout=120)
            assert stop.returncode == 0, stop.stderr
            assert outside.popen.wait(120) == 130
            runs = app.pane("runs")
            row = lambda: next((r for r in runs.runs if r["path"] == str(outside.run_dir)), None)  # noqa: E731
            await wait_for(pilot, lambda: row() is not None and row()["state"] == "stopped")
            assert row()["untested"] == rf.UNTRAINED and row()["step"] == 0
            cell = str(app.query_one("#runs-table", DataTable).get_cell(str(outside.run_dir), "status"))
            assert cell == "stopped, untrained"
            assert all(v != str(outside.run_dir) for _, v in app.pane("classify").options + app.pane("evaluate").options)
            table = app.query_one("#runs-table", DataTable)
            table.move_cursor(row=table.get_row_index(str(outside.run_dir)))
            await pilot.press("w")                                          # watch it on the Train pane
            pane = app.pane("train")
            await wait_for(pilot, lambda: pane.run_dir == str(outside.run_dir) and pane.ended is not None)
            assert pane.state == "stopped"
            status = str(app.query_one("#train-status").render())
            assert f"Run {rf.UNTRAINED}" in status and "Best checkpoint" not in status
        finally:
            if outside is not None:
                kill(outside.popen)


async def test_a_watched_run_trained_on_after_its_end_is_followed_to_its_new_end(fixture_app, tmp_path):
    """`train --resume RUN --epochs N` of a run the Train pane shows as ended: the pane follows it again (was:
    stuck at "training … 100%" with the old epoch count, and Stop answering that the run is done)."""
    import subprocess
    import sys
    app = fixture_app
    async with app.run_test(size=SIZE) as pilot:
        await settle_data(pilot, app)
        cfg = TrainConfig(data="names", hidden=16, epochs=1, batch_size=16, lr=1e-2, log_every=1, patience=0,
                          threads=1, seed=0, device="cpu")
        first = launch_train(cfg, "ck")
        assert first.popen.wait(60) == 0
        pane = app.pane("train")
        app.follower.attach(first.run_dir)
        await wait_for(pilot, lambda: pane.run_dir == str(first.run_dir) and pane.state == "done")
        ended_at = pane.ended.steps
        r = subprocess.run([sys.executable, "-m", "namestudio.tui.cli", "train", "--resume", str(first.run_dir),
                            "--epochs", "3", "--checkpoints", "ck"], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        await wait_for(pilot, lambda: pane.state == "done" and pane.ended.steps > ended_at)
        await pilot.press("2")
        status = str(app.query_one("#train-status").render())
        assert "Done" in status and "training" not in status.lower()
        assert pane.history["step_loss"] and len(pane.history["step_loss"]) == pane.ended.steps   # each step once


async def test_a_stopped_run_is_resumed_from_the_runs_pane_and_followed(fixture_app):
    app = fixture_app
    async with app.run_test(size=SIZE) as pilot:
        launched = None
        try:
            await settle_data(pilot, app)
            cfg = TrainConfig(data="names", hidden=16, epochs=400, batch_size=16, lr=1e-2, log_every=1,
                              eval_every=5, patience=0, threads=1, seed=0, device="cpu")
            first = launch_train(cfg, "ck")
            await wait_for(pilot, lambda: (first.run_dir / rf.METRICS).is_file()
                           and len(rf.read_jsonl(first.run_dir / rf.METRICS)) >= 1)
            rf.send_control(first.run_dir, "stop")
            assert first.popen.wait(60) == 130
            stopped_at = rf.read_status(first.run_dir).step
            await pilot.press("6")
            runs = app.pane("runs")
            table = app.query_one("#runs-table", DataTable)
            await wait_for(pilot, lambda: any(r["path"] == str(first.run_dir) and r["state"] == "stopped"
                                              for r in runs.runs))
            await pilot.pause()
            table.move_cursor(row=table.get_row_index(str(first.run_dir)))
            await pilot.press("s")
            launched = app.follower.children[-1]
            assert str(launched.run_dir) == str(first.run_dir)
            pane = app.pane("train")
            await wait_for(pilot, lambda: pane.run_dir == str(first.run_dir) and pane.state == "running"
                           and rf.read_status(first.run_dir).step > stopped_at)
            await tap(pilot, "6")                        # resuming it again while it trains: refused, in words
            table.move_cursor(row=table.get_row_index(str(first.run_dir)))
            children = len(app.follower.children)
            await tap(pilot, "s")
            await wait_for(pilot, lambda: any("already" in n.message for n in app._notifications))
            assert len(app.follower.children) == children
            rf.send_control(first.run_dir, "stop")
            assert launched.popen.wait(60) == 130
            steps = [s["step"] for s in rf.read_jsonl(first.run_dir / rf.STEPS)]
            assert steps == sorted(set(steps)) and steps[-1] > stopped_at      # trained on, no step twice
        finally:
            kill_children(app)


async def test_a_bad_form_value_starts_nothing(fixture_app):
    app = fixture_app
    async with app.run_test(size=SIZE) as pilot:
        await settle_data(pilot, app)
        await settle(pilot, app)          # the other panes built too: leaving mid-build upsets Textual's Select
        pane = app.pane("train")
        await pilot.press("2")
        await set_form(app, {**FAST, "f-epochs": "0"})
        await pilot.press("s")
        await pilot.pause()
        assert not pane.running and app.follower.children == [] and not Path("ck").exists() or \
            not any(Path("ck").iterdir())


@pytest.mark.parametrize("choice", ["stop", "leave"])
async def test_the_quit_dialog_stops_or_leaves_the_run(fixture_app, choice):
    app = fixture_app
    async with app.run_test(size=SIZE) as pilot:
        await settle_data(pilot, app)
        pane = await start_long_run(pilot, app)
        child = app.follower.children[0]
        await pilot.press("ctrl+q")
        assert isinstance(app.screen, QuitScreen) and app.is_running
        await pilot.press("escape")                       # cancel: nothing happens
        assert not isinstance(app.screen, QuitScreen) and app.is_running
        await pilot.press("ctrl+q")
        await pilot.press("s" if choice == "stop" else "l")
    try:
        if choice == "stop":
            assert child.popen.wait(60) == 130           # stopped before its end (cli: exit 130)
            assert rf.read_status(child.run_dir).state == "stopped"
            assert (child.run_dir / rf.TEST).is_file()
        else:
            time.sleep(0.5)
            assert child.popen.poll() is None                  # still training after the TUI quit
            st = rf.read_status(child.run_dir)
            assert st.live and st.pid == child.pid
            assert pane.run_dir == str(child.run_dir)
    finally:
        kill(child.popen)


async def test_keys_fields_help_theme_palette_and_an_18_label_matrix(fixture_app):
    app = fixture_app
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("2")
        app.query_one("#f-epochs", Input).focus()
        await pilot.press("l")                 # a pane key, not typed into the number field
        assert app.pane("train").log_scale and app.query_one("#f-epochs", Input).value == str(TrainConfig().epochs)
        await pilot.press("1")                 # digits type into number fields ...
        assert app.query_one("#f-epochs", Input).value == "1" and app.query_one("#panes").active == "train"
        await pilot.press("escape", "1", "o")  # ... and switch panes once Escape has left the field
        await pilot.press(*"b2")               # typed into the path field, not a pane switch
        assert app.query_one("#data-path", Input).value == "b2" and app.query_one("#panes").active == "data"
        await pilot.press("escape", "3")
        assert app.query_one("#panes").active == "evaluate"

        # the confusion matrix of 18 labels fits beside the per-class table at 100x30
        labels, metrics = eighteen_label_metrics()
        app.pane("evaluate").show_metrics(metrics, labels, "Validation · synthetic")
        await pilot.pause()
        cm = app.query_one("#eval-cm").region
        side = app.query_one("#eval-side").region
        pane = app.pane("evaluate").region
        assert cm.right <= side.x and side.right <= 100
        assert cm.bottom <= pane.bottom and side.bottom <= pane.bottom
        assert app.query_one("#eval-per-class").region.width >= 19

        # keys screen, theme, command palette
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        dark = app.current_theme.dark
        await pilot.press("ctrl+t")
        assert app.current_theme.dark != dark
        await pilot.press("ctrl+p")
        await pilot.press(*"svg")
        await pilot.pause(0.3)
        assert isinstance(app.screen, CommandPalette)
        hits = app.screen.query_one(CommandList)
        assert hits.option_count >= 1 and "SVG" in str(hits.get_option_at_index(0).prompt)
        await pilot.press("escape")
        await pilot.press("ctrl+p", *"go to runs")      # a command runs from the palette
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette) and "Go to Runs" in str(
            app.screen.query_one(CommandList).get_option_at_index(0).prompt) if app.screen.query(CommandList)
            and app.screen.query_one(CommandList).option_count else False, 10)
        await pilot.press("enter")
        await pilot.pause()
        assert app.query_one("#panes").active == "runs" and app.pane("runs").built


def test_every_binding_has_a_description_and_help():
    for bindings in [keys.APP, *keys.BY_PANE.values(), keys.ERROR, keys.HELP]:
        for b in bindings:
            assert b.description and b.tooltip and b.id, b


def eighteen_label_metrics():
    import torch

    from namestudio.engine.metrics import classification_report

    labels = ["Arabic", "Chinese", "Czech", "Dutch", "English", "French", "German", "Greek", "Irish", "Italian",
              "Japanese", "Korean", "Polish", "Portuguese", "Russian", "Scottish", "Spanish", "Vietnamese"]
    cm = [[(7 * i + 3 * j) % 11 + (120 if i == j else 0) for j in range(18)] for i in range(18)]
    metrics = classification_report(torch.tensor(cm), labels)
    metrics["loss"] = 0.9
    return labels, metrics


def test_a_hang_up_leaves_the_run_training(tmp_path, monkeypatch):
    """SIGHUP to the TUI's process group (a closed terminal, an SSH drop) ends the TUI, not the run it started."""
    import subprocess
    import sys

    monkeypatch.chdir(tmp_path)
    write_fixture(tmp_path / "names")
    here = str(Path(__file__).parent)
    env = {**os.environ, "NAMESTUDIO_DATA_DIR": str(tmp_path / "userdata"),
           "PYTHONPATH": here + os.pathsep + os.environ.get("PYTHONPATH", "")}
    tui = subprocess.Popen([sys.executable, os.path.join(here, "tui_hangup_probe.py")], stdout=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, env=env, start_new_session=True)   # as a terminal's session
    pid = None
    try:
        pid_text, run_dir = tui.stdout.readline().decode().split()
        pid = int(pid_text)
        deadline = time.monotonic() + 60
        while rf.read_status(Path(run_dir)).state != "running" and time.monotonic() < deadline:
            time.sleep(0.2)
        os.killpg(tui.pid, signal.SIGHUP)
        assert tui.wait(20) == -signal.SIGHUP
        steps = rf.read_status(Path(run_dir)).step
        deadline = time.monotonic() + 30
        while rf.read_status(Path(run_dir)).step <= steps + 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        status = rf.read_status(Path(run_dir))
        assert status.live and status.state == "running" and status.step > steps + 2   # it trains on
    finally:
        if tui.poll() is None:
            os.killpg(tui.pid, signal.SIGKILL)
            tui.wait()
        if pid is not None:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


async def test_every_pane_is_built_after_start_up_so_a_first_visit_is_only_a_switch(fixture_app):
    import gc

    app = fixture_app
    gc.unfreeze()                                # what earlier tests froze
    async with app.run_test(size=SIZE) as pilot:
        await settle_data(pilot, app)
        await wait_workers(app)
        assert all(app.pane(pid).built for pid, _, _ in keys.PANES)
        assert gc.get_freeze_count() > 0        # and what start-up made is out of the collector's sight


@pytest.mark.parametrize("width", [20, 46, 80])
def test_a_line_of_parts_breaks_only_between_parts(width):
    """The Train pane's end line wrapped at 80 columns as "… test acc 1.000 · bal" / "1.000 · F1 1.000": a figure
    cut from its name. render.Parts breaks only between parts, and fills each line as far as it can."""
    from namestudio.tui.render import Parts

    parts = ["Done, finished in 0:12", "test acc 0.852", "bal 0.604", "F1 0.596"]
    lines = Parts(*parts, style="bold").lines(width).plain.split("\n")
    assert [p for line in lines for p in line.split(" · ")] == parts          # every part whole, in order
    assert all(len(line) <= width or " · " not in line for line in lines)     # one part too wide: alone
    for line, following in zip(lines, lines[1:]):                             # no line could take the next part
        assert len(line) + 3 + len(following.split(" · ")[0]) > width
    assert len(lines) == {20: 3, 46: 2, 80: 1}[width]


def test_a_prerendered_table_draws_the_same_and_refuses_to_squeeze():
    from rich.console import Console

    from namestudio.tui.render import confusion_table, prerendered

    labels, metrics = eighteen_label_metrics()
    table = confusion_table(metrics["confusion"], labels, title=None, corner="")

    def text(renderable) -> str:
        console = Console(width=100, record=True, file=open(os.devnull, "w"), color_system="truecolor")
        console.print(renderable)
        return console.export_text(styles=True)

    assert text(prerendered(table, 100)) == text(table)        # the same cells and colours
    assert prerendered(table, 40) is None                      # too narrow: the table itself, which Rich squeezes


async def test_an_evaluation_that_arrives_while_evaluate_is_hidden_is_rendered_before_the_switch(fixture_app):
    from rich.text import Text

    app = fixture_app
    labels, metrics = eighteen_label_metrics()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        await pilot.press("3")                                  # laid out once
        await settle(pilot, app)
        await pilot.press("2")
        await settle(pilot, app)
        pane = app.pane("evaluate")
        pane.show_metrics(metrics, labels, "Validation · epoch 1.00")   # as a live evaluation does
        await wait_workers(app)
        await pilot.pause(0.1)
        cached = [parts for key, parts in pane._cache.items() if key[0] == id(metrics)]
        assert cached and isinstance(cached[0][1], Text)       # rendered in the worker, off the key's path
        await pilot.press("3")
        await settle(pilot, app)
        assert app.query_one("#eval-cm").content is cached[0][1] or \
            str(app.query_one("#eval-cm").content) == str(cached[0][1])
        cm = app.query_one("#eval-cm")           # laid out at the table's own width: taken for a sentence, it shared
        assert not cm.has_class("-message")      # the row with the figures and every row of the matrix wrapped
        assert cm.size.width >= max(len(line) for line in cached[0][1].plain.split("\n"))


async def test_a_followed_generator_clears_the_classifier_shown_as_live(fixture_app):
    """Evaluate followed a classifier, then the Train pane a generator: "Run: live" still showed the classifier's
    test split. The pane now says that the live run is a generator; a saved run opened (o) is never cleared."""
    from namestudio.engine.events import Done, Started

    app = fixture_app
    labels, metrics = eighteen_label_metrics()

    def started(run_dir, task):
        return Started(run_dir=run_dir, config={"task": task}, labels=labels if task == "classify" else ["x"],
                       total_steps=10, steps_per_epoch=5, n_train=100, device="cpu")

    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        await pilot.press("3")
        await settle(pilot, app)
        pane = app.pane("evaluate")
        pane.on_live_started("ck/clf", started("ck/clf", "classify"))
        pane.on_live_done(Done(run_dir="ck/clf", test_metrics=metrics, train_seconds=1.0, reason="finished"))
        await pilot.pause()
        assert pane.metrics is metrics and "Test split · clf" in str(app.query_one("#eval-title").render())
        pane.on_live_started("ck/gen", started("ck/gen", "generate"))
        await pilot.pause()
        assert pane.metrics is None and not str(app.query_one("#eval-cm").render()).strip()
        assert "The live run gen is a generator" in str(app.query_one("#eval-title").render())


async def test_the_members_field_trains_an_ensemble_or_names_itself_when_wrong(fixture_app):
    app = fixture_app
    async with app.run_test(size=SIZE) as pilot:
        await settle_data(pilot, app)
        await settle(pilot, app)          # the other panes built too: leaving mid-build upsets Textual's Select
        await pilot.press("2")
        pane = app.pane("train")
        await set_form(app, {**FAST, "f-members": "3"})
        assert pane.build_config().members == 3
        await set_form(app, {**FAST, "f-members": "0"})
        with pytest.raises(ValueError, match="members"):
            pane.build_config()


async def test_the_ngram_field_sets_the_lm_order_follows_the_task_and_names_itself_when_wrong(fixture_app):
    app = fixture_app
    async with app.run_test(size=SIZE) as pilot:
        await settle_data(pilot, app)
        await pilot.press("2")
        pane = app.pane("train")
        field = app.query_one("#f-lm")
        assert field.value == "5" and "--lm-order" in str(field.tooltip)
        app.query_one("#f-task").value = "generate"         # a field left at the default takes the task's default
        await settle(pilot, app)
        assert field.value == "6"
        await set_form(app, {**FAST, "f-lm": "0"})
        assert pane.build_config().lm_order == 0
        await set_form(app, {**FAST, "f-lm": "9"})
        with pytest.raises(ValueError, match="^N-gram: --lm-order must be in"):       # the field's label first
            pane.build_config()


def killed_run(ck: Path, heartbeat_at: int, pid: int) -> Path:
    """A run killed at step 10, written as a trainer writes it: steps 1-10 logged, evaluations (each with its
    resume point) at steps 4 and 8, its last heartbeat (status.json) at ``heartbeat_at``; 6 steps an epoch."""
    import torch
    d = ck / "20260101-000000-classify-lstm"
    d.mkdir(parents=True)
    rf.atomic_write_json(d / rf.CONFIG, {"format": 2, "train": {"task": "classify", "model": "lstm", "epochs": 5},
                                         "labels": ["Alvish", "Dwarvish", "Orcish"], "vocab": ["a", "b"]})
    for s in range(1, 11):
        rf.append_jsonl(d / rf.STEPS, {"step": s, "epoch": round(s / 6, 4), "loss": 1 / s, "total_steps": 30})
    for s in (4, 8):
        rf.append_jsonl(d / rf.METRICS, {"step": s, "epoch": round(s / 6, 4), "train_loss": 1.0, "best": True,
                                         "val": {"accuracy": 0.5, "loss": 1.0}})
        rf.save_resume_point(d, s, {"w": torch.ones(1)}, {"optimizer": {}}, {"best": 0.5}, epoch=s / 6)
        rf.save_weights({"w": torch.ones(1)}, d / rf.WEIGHTS)      # each evaluation is the best so far
    rf.write_status(d, rf.RunStatus(state="running", pid=pid, host=rf.HOST, heartbeat=time.time(),
                                    started=time.time() - 5, step=heartbeat_at, total_steps=30,
                                    epoch=round(heartbeat_at / 6, 4)))
    return d


def test_a_run_seen_dying_shows_its_resume_point_not_its_last_heartbeat(tmp_path):
    """The follower re-reads the status of a run listed live; once it is stale, its row said the step of its
    last heartbeat (6, or 10: lost steps past the resume point); it says 8, where `train --resume` continues."""
    from namestudio.tui.follow import Follower, end_event
    for heartbeat_at in (6, 10):
        ck = tmp_path / str(heartbeat_at)
        run = killed_run(ck, heartbeat_at, os.getpid())             # its trainer alive as it is listed
        follower = Follower(ck, lambda msg: None)
        follower.tick()
        assert follower.runs[0]["state"] == "running" and follower.runs[0]["step"] == heartbeat_at
        dead = subprocess_dead_pid()
        status = rf.read_json(run / rf.STATUS)
        rf.atomic_write_json(run / rf.STATUS, {**status, "pid": dead})    # then killed
        follower._statuses_of_live()
        assert (follower.runs[0]["state"], follower.runs[0]["step"]) == ("stale", 8)
        assert follower.runs[0]["epoch"] == round(8 / 6, 4)
        end = end_event(run, rf.read_status(run))
        assert end.stale and (end.resume_step, end.resume_epoch) == (8, round(8 / 6, 4))
        assert "resumes from step 8 (epoch 1.33)" in end.message.splitlines()[0]


def subprocess_dead_pid() -> int:
    import subprocess
    import sys
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.mark.parametrize("heartbeat_at", [6, 10])
async def test_a_killed_run_watched_on_the_train_pane_shows_where_it_resumes(fixture_app, heartbeat_at):
    """The Train pane's progress of a killed run was its last logged step (10: the steps past its resume point
    are lost) and the Runs pane's "stale at" its last heartbeat's: both say 8, the step `train --resume`
    continues from."""
    app = fixture_app
    run = killed_run(Path("ck"), heartbeat_at, subprocess_dead_pid())
    async with app.run_test(size=SIZE) as pilot:
        await settle_data(pilot, app)
        await pilot.press("6")
        runs = app.pane("runs")
        await wait_for(pilot, lambda: any(r["path"] == str(run) for r in runs.runs))
        table = app.query_one("#runs-table", DataTable)
        table.move_cursor(row=table.get_row_index(str(run)))
        await pilot.pause()
        assert str(table.get_cell(str(run), "status")) == "stale at 8"
        assert runs.last_note[0].endswith("s resumes it from step 8")
        await pilot.press("w")
        pane = app.pane("train")
        await wait_for(pilot, lambda: pane.run_dir == str(run) and pane.state == "failed")
        assert (pane.last_step.step, pane.last_step.epoch, pane.last_step.loss) == (8, round(8 / 6, 4), 1 / 8)
        await pilot.press("2")
        await pilot.pause(0.3)
        assert "step 8/30" in str(app.query_one("#train-rate").render())
        assert "resumes from step 8" in str(app.query_one("#train-status").render())


# ---- 80x24, the smallest terminal supported: headings on one line, every column on screen or reachable -----
NARROW = (80, 24)


async def scroll_right(pilot, table) -> None:
    """→ pressed until the table is scrolled right to its end (each press scrolls one column of cells)."""
    for _ in range(40):
        if table.scroll_x >= table.max_scroll_x:
            break
        await pilot.press("right")
    await pilot.pause()


def shown_lines(widget) -> list[str]:
    """The widget's lines as drawn on screen (its visible region), right-trimmed."""
    return [widget.render_line(y).text.rstrip() for y in range(widget.region.height)]


async def test_the_data_panes_heading_and_table_titles_are_whole_lines_at_80x24(tmp_path, monkeypatch):
    """A first start (the built-in data, pytorch-names not on disk) at 80x24. The heading wrapped mid-sentence
    ("… · chosen at start: pytorch-names is not on" / "disk (press p to download it)"), and the split table,
    narrower than its title, wrapped that ("Split by name (seed" / "0)"). Now the source and its counts make
    the first line and why it was chosen the next, whole; each table's title is one line."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NAMESTUDIO_DATA_DIR", str(tmp_path / "userdata"))
    app = make_app()
    async with app.run_test(size=NARROW) as pilot:
        await settle(pilot, app)
        assert app.dataset.source == "builtin"
        for wid, title in (("#data-lengths", "Name length"), ("#data-split", "Rows split by name (seed 0)"),
                           ("#data-dups", "Names under 2+ labels"), ("#data-cleaning", "Cleaning, by reason")):
            assert shown_lines(app.query_one(wid))[0].strip() == title, wid
        assert shown_lines(app.query_one("#data-split"))[1].split() == ["train", "┃", "val", "┃", "test"]
        heading = shown_lines(app.query_one("#data-status"))
        assert heading[0].startswith("Active source: builtin · ") and heading[0].endswith(" labels"), heading
        assert heading[1:] == ["chosen at start: pytorch-names is not on disk (press p to download it)"], heading
        # wide enough, the whole heading is one line again
        await pilot.resize_terminal(170, 30)
        await settle(pilot, app)
        heading = shown_lines(app.query_one("#data-status"))
        assert len(heading) == 1 and heading[0].endswith("labels · chosen at start: pytorch-names is not on disk "
                                                         "(press p to download it)")


async def test_the_compare_results_show_the_ngram_column_at_80x24_and_scroll_to_the_rest(tmp_path, monkeypatch):
    """Two finished runs whose test figures include an n-gram blend, at 80x24. The n-gram column came last and
    was cut at the right edge with its figures; it now stands next to the test figures it qualifies, and the
    columns past the edge (the runs' cost) are named above the table and reached with → (the run stays)."""
    from test_tui_compare import write_run         # (that module imports this one)
    from helpers import blend_file_as_before

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NAMESTUDIO_DATA_DIR", str(tmp_path / "userdata"))
    write_fixture(tmp_path / "names")
    blends = {"rnn": {"order": 5, "weight": 0.5, "prior_weight": 0.45},
              "gru": {"order": 6, "weight": 0.25, "prior_weight": 0.5}}
    for run, model in (("20260101-120000-classify-rnn", "rnn"), ("20260101-130000-classify-gru", "gru")):
        write_run(tmp_path / "ck" / run, model)
        test = rf.read_json(tmp_path / "ck" / run / rf.TEST)
        test["test"]["lm_blend"] = blends[model]
        rf.atomic_write_json(tmp_path / "ck" / run / rf.TEST, test)
        blend_file_as_before(tmp_path / "ck" / run)
    app = make_app(data="names")
    async with app.run_test(size=NARROW) as pilot:
        await settle(pilot, app)
        await pilot.press("6")
        runs = app.pane("runs")
        await wait_for(pilot, lambda: len(runs.runs) == 2, 20)
        table = app.query_one("#runs-table", DataTable)
        for row in runs.runs:                                    # mark both, compare the marked runs
            table.move_cursor(row=table.get_row_index(row["path"]))
            await pilot.press("space")
        await pilot.press("7", "u")
        pane = app.pane("compare")
        await wait_for(pilot, lambda: pane.data is not None and len(pane.runs()) == 2, 20)
        pane.show_view("results")
        await settle(pilot, app)
        results = app.query_one("#cmp-table", DataTable)
        await wait_for(pilot, lambda: results.row_count == 2 and "n-gram" in shown_lines(results)[0], 10)
        shown = shown_lines(results)
        head = shown[0]
        assert head.split()[:7] == ["run", "state", "acc", "bal", "acc", "F1", "n-gram"], head
        assert any("5 · w 0.5" in line and "rnn" in line for line in shown[1:]), shown
        assert any("6 · w 0.25" in line and "gru" in line for line in shown[1:]), shown
        assert "ep→best" not in head
        info = shown_lines(app.query_one("#cmp-results-info"))
        assert info[-1].startswith("→ scrolls to ") and info[-1].endswith("ep→best (← back)"), info
        assert app.focused is results
        await scroll_right(pilot, results)
        assert results.scroll_x == results.max_scroll_x > 0
        head = shown_lines(results)[0]
        assert head.split()[0] == "run" and head.endswith("ep→best"), head       # the run column stays
        assert all(len(line) <= results.region.width for line in shown_lines(results))


async def test_the_runs_table_names_the_columns_past_the_edge_at_80x24(tmp_path, monkeypatch):
    """The Runs table at 80x24 cut its last columns (time, params) with only a thin scroll bar to tell. Under
    the table a line names them and how to get there; → scrolls them in with the run's id kept in view."""
    from test_tui_compare import two_runs          # (that module imports this one)

    two_runs(tmp_path, monkeypatch, weights=True)
    app = make_app(data="names")
    async with app.run_test(size=NARROW) as pilot:
        await settle(pilot, app)
        await pilot.press("6")
        runs = app.pane("runs")
        await wait_for(pilot, lambda: len(runs.runs) == 2, 20)
        await settle(pilot, app)
        table = app.query_one("#runs-table", DataTable)
        more = app.query_one("#runs-more")
        assert "params" not in shown_lines(table)[0]
        assert more.display and shown_lines(more) == [str(more.content)]
        assert str(more.content).startswith("→ scrolls to ") and str(more.content).endswith("params (← back)")
        assert app.focused is table
        await scroll_right(pilot, table)
        head = shown_lines(table)[0]
        assert table.scroll_x == table.max_scroll_x > 0 and head.split()[0] == "run" and head.endswith("params")
        await pilot.resize_terminal(140, 30)                     # wide enough: nothing past the edge, no line
        await settle(pilot, app)
        await wait_for(pilot, lambda: not more.display, 10)


@pytest.mark.parametrize("width", [24, 30, 40])
def test_a_duplicate_names_example_keeps_its_count_on_its_line(width):
    """The Data pane's "Names under 2+ labels" wrapped at 80x24 as "Martin (5), Thomas" / "(5), Becker (4)": a
    count cut from its name. Each example now keeps together; the table still wraps between examples."""
    import io

    from rich.console import Console

    from namestudio.tui.render import summary_tables

    summary = {"cross_label_duplicates": {"count": 357, "examples": [
        {"name": n, "labels": ["A"] * k} for n, k in (("Martin", 5), ("Thomas", 5), ("Becker", 4), ("Abel", 3))]}}
    dups = next(t for t in summary_tables(summary) if "label" in str(getattr(t, "title", "")) and
                "more than one" in str(t.title))
    console = Console(width=width, file=io.StringIO(), color_system=None)
    console.print(dups)
    cells = [line.split("│", 1)[1].strip() for line in console.file.getvalue().splitlines() if "│" in line]
    examples = [e.strip() for c in cells for e in c.split(",") if e.strip()]
    assert examples == ["Martin (5)", "Thomas (5)", "Becker (4)", "Abel (3)"], cells
    assert all(not c.startswith("(") for c in cells) and len(cells) > 1, cells
