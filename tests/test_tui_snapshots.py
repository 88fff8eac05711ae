"""Snapshots of every pane at 100x30 and 80x24 (pytest-textual-snapshot).

Deterministic: a fixed fixture dataset, an empty checkpoints folder, relative paths, no animation,
no cursor blink. The Evaluate pane shows a fixed 18-label confusion matrix. Update the SVGs with
`pytest tests/test_tui_snapshots.py --snapshot-update` after a deliberate change, and look at them.
"""
from __future__ import annotations

import pytest
from textual.widgets import Input

from test_tui import wait_for, wait_workers, eighteen_label_metrics, make_app, write_fixture

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
        # the panes not shown are built once torch has loaded (a message after the workers above): a field
        # built after the loop below blinked its cursor, and the snapshot caught it on or off by chance
        await wait_for(pilot, lambda: all(p.built for p in app._panes.values()), 30)
        await pilot.pause()
        for field in app.query(Input):
            field.cursor_blink = False
        await pilot.press(KEYS[pane])
        if pane == "evaluate":
            labels, metrics = eighteen_label_metrics()
            app.pane("evaluate").show_metrics(metrics, labels, "Validation · epoch 4.00")
        await wait_workers(app)
        await pilot.pause()
        assert not any(field.cursor_blink for field in app.query(Input))

    return run_before


@pytest.mark.parametrize("size", [(100, 30), (80, 24)], ids=["100x30", "80x24"])
@pytest.mark.parametrize("pane", PANES)
def test_pane_snapshot(pane, size, snap_app, snap_compare):
    assert snap_compare(snap_app, terminal_size=size, run_before=show(pane))


def synthetic_quality(labels: list[str]) -> dict:
    """Reliability data as engine.calibration.evaluate_pairs gives it, from fixed made-up predictions: an
    over-confident model (accuracy below confidence), softened by its fitted temperature."""
    import torch

    from namestudio.engine.calibration import expected_calibration_error, fit_temperature, reliability

    k, n = len(labels), 360
    conf = torch.tensor([0.3 + 0.69 * ((i * 37) % 100) / 100 for i in range(n)], dtype=torch.float64)
    pred = torch.tensor([i % k for i in range(n)])
    probs = ((1 - conf) / (k - 1))[:, None].repeat(1, k)
    probs[torch.arange(n), pred] = conf
    right = torch.tensor([(i * 53) % 100 < 100 * c - 12 for i, c in enumerate(conf.tolist())])
    y = torch.where(right, pred, (pred + 1) % k)
    t = fit_temperature(probs.log(), y)
    after = (probs.log() / t).softmax(-1)
    return {"accuracy": right.double().mean().item(), "balanced_accuracy": 0.5, "macro_f1": 0.5, "n": n,
            "temperature": t, "ece_before": expected_calibration_error(probs, y),
            "ece_after": expected_calibration_error(after, y),
            "reliability": {"bins": 15, "before": reliability(probs, y), "after": reliability(after, y)},
            "calibration": {"saved": True, "n_val": 300, "val_ece_before": 0.12, "val_ece_after": 0.03}}


@pytest.mark.parametrize("size", [(100, 30), (80, 24)], ids=["100x30", "80x24"])
def test_reliability_snapshot(size, snap_app, snap_compare):
    """The Evaluate pane's reliability view (r) of a run's test split, from fixed reliability data."""
    async def run_before(pilot) -> None:
        app = pilot.app
        await wait_workers(app)
        await pilot.press("3")
        labels, metrics = eighteen_label_metrics()
        pane = app.pane("evaluate")
        pane.quality["runs/synthetic"] = synthetic_quality(labels)     # as the worker leaves it: no worker runs
        pane.show_metrics(metrics, labels, "Test split · synthetic", run="runs/synthetic")
        await pilot.press("r")
        await wait_workers(app)
        await pilot.pause()

    assert snap_compare(snap_app, terminal_size=size, run_before=run_before)
