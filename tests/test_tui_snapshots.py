"""Snapshots of every pane at 100x30 and 80x24 (pytest-textual-snapshot).

Deterministic: a fixed fixture dataset, an empty checkpoints folder, relative paths, no animation,
no cursor blink. The Evaluate pane shows a fixed 18-label confusion matrix. Update the SVGs with
`pytest tests/test_tui_snapshots.py --snapshot-update` after a deliberate change, and look at them.
"""
from __future__ import annotations

import pytest
from textual.widgets import Input

from test_tui import wait_workers, eighteen_label_metrics, make_app, write_fixture

PANES = ["data", "train", "evaluate", "classify", "generate", "runs"]
KEYS = {pid: str(i + 1) for i, pid in enumerate(PANES)}


@pytest.fixture
def snap_app(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NAMESTUDIO_DATA_DIR", str(tmp_path / "userdata"))
    write_fixture(tmp_path / "names")
    (tmp_path / "ck").mkdir()
    return make_app(data="names")


def show(pane: str):
    async def run_before(pilot) -> None:
        app = pilot.app
        await wait_workers(app)
        await pilot.pause()
        for field in app.query(Input):
            field.cursor_blink = False
        await pilot.press(KEYS[pane])
        if pane == "evaluate":
            labels, metrics = eighteen_label_metrics()
            app.pane("evaluate").show_metrics(metrics, labels, "Validation · epoch 4.00")
        await wait_workers(app)
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", [(100, 30), (80, 24)], ids=["100x30", "80x24"])
@pytest.mark.parametrize("pane", PANES)
def test_pane_snapshot(pane, size, snap_app, snap_compare):
    assert snap_compare(snap_app, terminal_size=size, run_before=show(pane))
