"""The Textual app, driven with run_test/Pilot on a tiny fixture dataset."""
from __future__ import annotations

import asyncio
import csv
import threading
import time
from pathlib import Path

import pytest
from textual import events
from textual.command import CommandList, CommandPalette
from textual.widgets import DataTable, Input, Select

from namestudio.engine.config import TrainConfig
from namestudio.engine.infer import load_run
from namestudio.tui import keys
from namestudio.tui.app import NameStudioApp
from namestudio.tui.widgets import ErrorScreen, HelpScreen

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


async def settle(pilot, app) -> None:
    await app.workers.wait_for_complete()
    for _ in range(3):
        await pilot.pause()


async def set_form(app, values: dict) -> None:
    for fid, value in values.items():
        app.query_one(f"#{fid}", Input).value = value


async def tap(pilot, key: str, char: str | None = None) -> None:
    """A key press that does not wait for the process to go idle (Pilot.press waits up to 2 s for that,
    and a training run keeps the process busy); the key is handled before this returns."""
    pilot.app.post_message(events.Key(key, char if char is not None else (key if len(key) == 1 else None)))
    await pilot.pause(0.05)


async def wait_for(pilot, condition, timeout: float = 30.0) -> None:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError("timed out waiting")
        await pilot.pause(0.05)


async def train(pilot, app, task: str = "classify", **form) -> None:
    await pilot.press("2")
    app.query_one("#f-task", Select).value = task
    await pilot.pause()
    await set_form(app, {**FAST, **form})
    await pilot.press("s")
    await settle(pilot, app)
    pane = app.pane("train")
    assert not pane.running


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
        await pilot.press("b")
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
        table = app.query_one("#eval-cm").content          # the coloured Rich table on screen
        assert len(table.columns) == 1 + 3 and table.row_count == 3
        assert ev.run_path == run_dir
        await pilot.press("c")
        assert ev.percent is False

        # Classify: k probabilities that sum to at most 1, updated as you type
        await pilot.press("4")
        assert isinstance(app.focused, Input) and app.focused.id == "clf-name"
        await pilot.press(*"Grmik")
        await pilot.pause()
        clf = app.pane("classify")
        assert len(clf.results) == 3 and sum(p for _, p in clf.results) <= 1 + 1e-6
        assert all(0 <= p <= 1 for _, p in clf.results)
        label, scores = clf.attribution
        assert label == clf.results[0][0] and len(scores) == len("Grmik")
        await pilot.press("escape", "down")
        assert len(clf.results) == 2

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

        # Runs: both runs listed; overlay; CSV export
        await pilot.press("6")
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


async def test_stop_mid_run_cancels_and_keeps_a_loadable_checkpoint(fixture_app):
    app = fixture_app
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        app.train_overrides = {"patience": 0}           # no early stop: the run must still be going
        await pilot.press("2")
        await set_form(app, {**FAST, "f-epochs": "400"})
        await pilot.press("s")
        pane = app.pane("train")
        await wait_for(pilot, lambda: len(pane.history["eval_epoch"]) >= 1)
        assert pane.running
        await tap(pilot, "p")
        assert pane.paused and pane.trainer.paused
        await tap(pilot, "p")
        assert not pane.trainer.paused
        await tap(pilot, "x")
        await settle(pilot, app)
        assert not pane.running
        assert pane.worker.is_finished and pane.worker.state.name == "SUCCESS"
        assert "stopped by you" in str(app.query_one("#train-status").render())
        run = load_run(pane.run_dir)
        assert run.task == "classify" and run.test_metrics()["reason"] == "cancelled"
        assert run.classify(["Grmik"], 2)[0]


async def test_failures_are_messages_not_crashes(fixture_app, monkeypatch):
    from namestudio.engine import train as engine_train

    app = fixture_app
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        pane = app.pane("train")
        await pilot.press("2")
        # a bad form value: a message, nothing starts
        await set_form(app, {**FAST, "f-epochs": "0"})
        await pilot.press("s")
        await pilot.pause()
        assert not pane.running and pane.trainer is None
        # a run that fails (non-finite loss): the engine's Failed event becomes a modal message
        await set_form(app, FAST)
        real_loss = engine_train.batch_loss

        def nan_loss(*a, **kw):
            loss, logits = real_loss(*a, **kw)
            return loss * float("nan"), logits

        monkeypatch.setattr(engine_train, "batch_loss", nan_loss)
        await pilot.press("s")
        await settle(pilot, app)
        assert isinstance(app.screen, ErrorScreen) and "Training failed" in app.screen.title_text
        await pilot.press("escape")
        assert not isinstance(app.screen, ErrorScreen) and not pane.running
        # a worker that raises: a modal message too, and the pane can start again
        monkeypatch.setattr(engine_train, "batch_loss", real_loss)

        def boom(self):
            raise RuntimeError("disk on fire")

        monkeypatch.setattr(engine_train.Trainer, "run", boom)
        await pilot.press("s")
        await settle(pilot, app)
        assert isinstance(app.screen, ErrorScreen) and "disk on fire" in app.screen.message
        await pilot.press("enter")
        assert app.is_running and not pane.running and pane.check_action("start", ()) is True


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


def test_quitting_during_training_ends_the_worker_threads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NAMESTUDIO_DATA_DIR", str(tmp_path / "userdata"))
    write_fixture(tmp_path / "names")
    before = set(threading.enumerate())
    seen: dict = {}

    async def scenario():
        app = make_app(data="names")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, app)
            app.train_overrides = {"patience": 0}
            await pilot.press("2")
            await set_form(app, {**FAST, "f-epochs": "1000"})
            await pilot.press("s")
            pane = app.pane("train")
            await wait_for(pilot, lambda: len(pane.history["step_loss"]) >= 2)
            seen["running"] = pane.running
            seen["threads"] = set(threading.enumerate()) - before
            await pilot.press("ctrl+q")
        seen["run_dir"] = pane.run_dir

    runner = threading.Thread(target=lambda: asyncio.run(scenario()), name="tui-test-loop")
    runner.start()
    runner.join(timeout=60)
    assert not runner.is_alive(), "the app did not shut down"
    assert seen["running"] and seen["threads"], seen
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and set(threading.enumerate()) - before:
        time.sleep(0.05)
    assert not (set(threading.enumerate()) - before), threading.enumerate()
    assert (Path(seen["run_dir"]) / "model.safetensors").is_file()
