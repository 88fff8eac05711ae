"""The Compare pane (7) and the Train pane's smoothing and x-axis keys.

Most tests use run folders written by hand (fixed metrics, written through engine/runfolder.py as a trainer
would), so what is drawn is known and the snapshots are deterministic. Two tests use a real tiny
`namestudio compare` (one epoch, tiny models), for the views that load weights: Top-3 and Samples.
"""
from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import DataTable, Select

from helpers import blend_file_as_before, write_names_folder
from namestudio.engine import experiment as ex
from namestudio.engine import runfolder as rf
from namestudio.engine.smoothing import ema
from namestudio.tui.panes.compare import parse_names, result_cell, sort_rows
from namestudio.tui.panes.runs import state_cell
from test_tui import fixture_app, make_app, settle, wait_for, wait_workers, write_fixture  # noqa: F401

SIZE = (100, 30)
LABELS = ["Alvish", "Dwarvish", "Orcish"]
# (model, params, names/s, loss noise, final accuracy, confusion of the test split, test metrics)
RUNS = {
    "rnn": (1200, 5000.0, 0.30, 0.60, [[6, 3, 1], [2, 7, 1], [1, 2, 7]], (0.667, 0.664, 0.660, 11.0)),
    "lstm": (4800, 2000.0, 0.20, 0.90, [[9, 1, 0], [0, 10, 0], [1, 0, 9]], (0.933, 0.931, 0.932, 31.0)),
    "gru": (3600, 3000.0, 0.25, 0.80, [[8, 1, 1], [1, 9, 0], [0, 1, 9]], (0.867, 0.866, 0.865, 23.0)),
}
GEN_RUNS = {"rnn": (1100, 4000.0, 2.30), "gru": (3300, 2500.0, 2.05)}
LOSS_AT_1 = {"rnn": 1.5, "lstm": 1.1, "gru": 1.3}


def write_run(run: Path, model: str, task: str = "classify", steps: int = 24, evals: int = 4,
              state: str = "done", test: bool = True, live_pid: int | None = None) -> None:
    """A run folder as a trainer leaves it: config, status, steps, evaluations, test metrics (fixed values)."""
    run.mkdir(parents=True, exist_ok=True)
    if task == "classify":
        params, rate, noise, acc, cm, t = RUNS[model]
    else:
        params, rate, nll = GEN_RUNS[model]
        noise, acc, cm, t = 0.2, None, None, None
    rf.atomic_write_json(run / rf.CONFIG, {
        "format": rf.FORMAT, "created": 1767225600.0, "data_source": "names", "labels": LABELS,
        "n_params": params, "n_train": 60,
        "train": {"task": task, "model": model, "hidden": 16, "epochs": 2, "batch_size": 16, "lr": 0.01,
                  "recipe": "modern", "seed": 0}})
    per_epoch = steps // 2
    for i in range(1, steps + 1):
        loss = LOSS_AT_1[model] - 0.03 * i + noise * (1 if i % 2 else -1)
        rf.append_jsonl(run / rf.STEPS, {"step": i, "epoch": round(i / per_epoch, 4), "loss": loss, "lr": 0.01,
                                         "names_per_s": rate, "elapsed": round(0.5 * i, 3), "eta": 0.0,
                                         "total_steps": steps})
    every = steps // evals
    for k in range(1, evals + 1):
        step = k * every
        if task == "classify":
            val = {"loss": 1.0 - 0.1 * k, "accuracy": round(acc * k / evals, 4), "macro_f1": 0.5}
            rec = {"confusion": cm, "per_class": {}}
        else:
            val = {"nll": round(nll + 0.5 / k, 4), "perplexity": 9.0}
            rec = {}
        rf.append_jsonl(run / rf.METRICS, {"step": step, "epoch": round(step / per_epoch, 4),
                                           "elapsed": round(0.5 * step, 3), "train_loss": 1.0 - 0.05 * k,
                                           "val": val, "best": True, **rec})
    now = time.time()
    st = rf.RunStatus(state=state, pid=live_pid or 4242, host=rf.HOST, started=1767225600.0,
                      heartbeat=now if live_pid else 1767225700.0, step=steps, total_steps=steps,
                      epoch=2.0, reason=None if live_pid else "finished", device="cpu")
    rf.write_status(run, st)
    if test:
        if task == "classify":
            metrics = {"accuracy": t[0], "balanced_accuracy": t[1], "macro_f1": t[2], "confusion": cm, "n": 30}
            seconds = t[3]
        else:
            metrics = {"nll": nll, "perplexity": round(math.exp(nll), 3)}
            seconds = 20.0 if model == "rnn" else 35.0
        rf.atomic_write_json(run / rf.TEST, {"test": metrics, "train_seconds": seconds, "reason": "finished",
                                             "best_step": steps, "steps": steps, "device": "cpu"})


def beat(run: Path) -> None:
    """The heartbeat a live trainer writes every 2 s."""
    st = rf.read_status(run)
    st.heartbeat = time.time()
    rf.write_status(run, st)


def write_experiment(root: Path, task: str = "classify", stamp: str = "20260101-120000") -> Path:
    """An experiment folder as `namestudio compare` leaves it (its runs done), with fixed metrics."""
    models = list(RUNS) if task == "classify" else list(GEN_RUNS)
    exp = root / f"exp-{stamp}-{task}"
    exp.mkdir(parents=True)
    doc = {"format": ex.FORMAT, "kind": "experiment", "id": exp.name, "created": 1767225600.0, "task": task,
           "models": models, "grid": {}, "settings": {"task": task}, "parallel": 2, "state": "done",
           "pid": None, "host": None, "heartbeat": None, "ended": 1767225700.0,
           "runs": [{"label": m, "model": m, "overrides": {}, "config": {}, "dir": m, "state": "done",
                     "error": None, "attempts": 1} for m in models]}
    rf.atomic_write_json(exp / ex.EXPERIMENT, doc)
    for m in models:
        write_run(exp / m, m, task)
    return exp


@pytest.fixture
def exp_app(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NAMESTUDIO_DATA_DIR", str(tmp_path / "userdata"))
    write_fixture(tmp_path / "names")
    exp = write_experiment(Path("ck"))         # as the app names it: relative to the working folder
    return make_app(data="names"), exp


async def show_compare(pilot, app) -> None:
    await settle(pilot, app)
    await pilot.press("7")
    pane = app.pane("compare")
    await wait_for(pilot, lambda: pane.data is not None, 20)
    await settle(pilot, app)


def lines(pane, plot: str) -> dict[str, tuple[list[float], list[float]]]:
    return {label: (xs, ys) for label, xs, ys in pane.plotted[plot]}


async def test_the_newest_experiment_is_shown_with_its_curves(exp_app):
    app, exp = exp_app
    async with app.run_test(size=SIZE) as pilot:
        await show_compare(pilot, app)
        pane = app.pane("compare")
        assert pane.source == ("exp", str(exp)) and pane.view == "curves"
        assert app.query_one("#cmp-source", Select).value == str(exp)
        assert [r["label"] for r in pane.runs()] == ["rnn", "lstm", "gru"]
        loss = lines(pane, "loss")
        assert set(loss) == {"rnn", "lstm", "gru"}
        # the default x-axis is the epoch, the default smoothing TensorBoard's 0.6, of the logged losses
        raw = [s["loss"] for s in rf.read_jsonl(exp / "lstm" / rf.STEPS)]
        assert loss["lstm"][0] == [s["epoch"] for s in rf.read_jsonl(exp / "lstm" / rf.STEPS)]
        assert loss["lstm"][1] == pytest.approx(ema(raw, 0.6))
        assert {lab: ys for lab, _, ys in pane.plotted["loss raw"]}["lstm"] == pytest.approx(raw)
        metric = lines(pane, "metric")
        assert metric["lstm"][0] == [0.5, 1.0, 1.5, 2.0]
        assert ema([0.225, 0.45, 0.675, 0.9], 0.6) == pytest.approx(metric["lstm"][1])
        legend = app.query_one("#cmp-legend", DataTable)
        assert legend.row_count == 3 and str(legend.get_cell(str(exp / "gru"), "state")) == "done"
        assert "Curves" in str(app.query_one("#cmp-views").render())


async def test_x_axis_smoothing_log_and_hide(exp_app):
    app, exp = exp_app
    async with app.run_test(size=SIZE) as pilot:
        await show_compare(pilot, app)
        pane = app.pane("compare")
        steps = rf.read_jsonl(exp / "rnn" / rf.STEPS)
        await pilot.press("t")                                   # epoch -> step
        assert pane.x_axis == "step"
        assert lines(pane, "loss")["rnn"][0] == [float(s["step"]) for s in steps]
        await pilot.press("t")                                   # step -> training time
        assert lines(pane, "loss")["rnn"][0] == [s["elapsed"] for s in steps]
        assert "time (s)" in str(app.query_one("#cmp-curves-info").render())
        raw = [s["loss"] for s in steps]
        before = lines(pane, "loss")["rnn"][1]
        await pilot.press("m")                                   # 0.6 -> 0.8
        assert pane.smoothing == 0.8
        after = lines(pane, "loss")["rnn"][1]
        assert after != before and after == pytest.approx(ema(raw, 0.8))
        for _ in range(3):                                       # 0.9, 0.95, then none: the raw values
            await pilot.press("m")
        assert pane.smoothing == 0 and lines(pane, "loss")["rnn"][1] == pytest.approx(raw)
        assert pane.plotted["loss raw"] == []                    # no faint line behind an unsmoothed one
        await pilot.press("l")
        assert lines(pane, "loss")["rnn"][1] == pytest.approx([math.log10(v) for v in raw])
        await pilot.press("l")
        # hide the run under the legend's cursor (the second row), then show it again
        legend = app.query_one("#cmp-legend", DataTable)
        assert app.focused is legend
        await pilot.press("down", "h")
        assert set(lines(pane, "loss")) == {"rnn", "gru"} and set(lines(pane, "metric")) == {"rnn", "gru"}
        assert str(legend.get_cell(str(exp / "lstm"), "swatch")) == "○"
        await pilot.press("h")
        assert set(lines(pane, "loss")) == {"rnn", "lstm", "gru"}
        await pilot.press("s")                                   # a Results key: nothing happens on Curves
        assert pane.sort is None


async def test_results_sort_and_confusion_difference(exp_app):
    app, exp = exp_app
    lstm = exp / "lstm"                     # an ensemble of 3 with the n-gram blend; the others without
    cfg = rf.read_json(lstm / rf.CONFIG)
    cfg["train"]["members"] = 3
    rf.atomic_write_json(lstm / rf.CONFIG, cfg)
    test = rf.read_json(lstm / rf.TEST)
    test["test"]["lm_blend"] = {"order": 5, "weight": 0.5, "prior_weight": 0.5}
    rf.atomic_write_json(lstm / rf.TEST, test)
    blend_file_as_before(lstm)
    async with app.run_test(size=SIZE) as pilot:
        await show_compare(pilot, app)
        pane = app.pane("compare")
        await pilot.press("v")
        assert pane.view == "results"
        table = app.query_one("#cmp-table", DataTable)
        assert table.row_count == 3 and pane.shown_order() == ["rnn", "lstm", "gru"]
        assert [str(c.label).strip() for c in table.columns.values()][1:] == [
            "run", "state", "acc", "bal acc", "F1", "n-gram", "model", "params", "time", "names/s", "ep→best"]
        assert str(table.get_cell(str(exp / "lstm"), "test_accuracy")) == "0.933"
        assert str(table.get_cell(str(lstm), "model")) == "lstm ×3"
        assert str(table.get_cell(str(lstm), "n_gram")) == "5 · w 0.5"
        rnn = str(exp / "rnn")
        assert str(table.get_cell(rnn, "model")) == "rnn" and str(table.get_cell(rnn, "n_gram")) == "–"
        assert str(table.get_cell(str(exp / "lstm"), "names_per_s")) == "2,000"
        await pilot.press("s")                                   # by test accuracy, highest first
        assert pane.sort == ("test_accuracy", True) and pane.shown_order() == ["lstm", "gru", "rnn"]
        for _ in range(5):                                       # bal acc, F1, names/s, time, params
            await pilot.press("s")
        assert pane.sort == ("params", False) and pane.shown_order() == ["rnn", "gru", "lstm"]
        at = [c.key.value for c in table.columns.values()].index("train_seconds")   # the time column's header
        await pilot.click("#cmp-table", offset=(3 + sum(c.get_render_width(table) for c in
                                                        list(table.columns.values())[:at]), 0))
        assert pane.sort[0] == "train_seconds" and pane.shown_order() == ["rnn", "gru", "lstm"]
        # h on the results table hides the run under its cursor from the curves
        table.move_cursor(row=0)
        await pilot.press("h")
        assert pane.hidden == {str(exp / "rnn")}

        await pilot.press("v")
        assert pane.view == "confusion"
        assert pane.pair == [str(exp / "rnn"), str(exp / "lstm")]
        assert app.query_one("#cmp-cm-b").display
        await pilot.press("d")
        a, b = RUNS["rnn"][4], RUNS["lstm"][4]
        want = [[a[i][j] / sum(a[i]) - b[i][j] / sum(b[i]) for j in range(3)] for i in range(3)]
        got = pane.shown_difference["matrix"]
        assert got == [pytest.approx(row) for row in want]
        assert not app.query_one("#cmp-cm-b").display
        shown = app.query_one("#cmp-cm-a").content                # the rendered table: signed points
        cells = [str(c) for c in list(shown.columns)[1]._cells]
        assert cells[0].strip() == f"{round(100 * want[0][0]):+d}"
        app.query_one("#cmp-b", Select).value = str(exp / "gru")
        await pilot.pause()
        c = RUNS["gru"][4]
        assert pane.shown_difference["matrix"][1][1] == pytest.approx(a[1][1] / 10 - c[1][1] / 10)
        await pilot.press("d")
        assert pane.shown_difference is None and app.query_one("#cmp-cm-b").display


async def test_marked_runs_and_live_curves(tmp_path, monkeypatch):
    """The runs marked on the Runs pane; a run still training (its trainer is this process, for the test)
    grows on the curves as lines are appended to its logs, without a key."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NAMESTUDIO_DATA_DIR", str(tmp_path / "userdata"))
    write_fixture(tmp_path / "names")
    ck = tmp_path / "ck"
    write_run(ck / "20260101-120000-classify-rnn", "rnn")
    live = ck / "20260101-130000-classify-gru"
    write_run(live, "gru", state="running", test=False, live_pid=os.getpid())
    write_run(ck / "20260101-140000-generate-rnn", "rnn", task="generate")
    app = make_app(data="names")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("7")
        pane = app.pane("compare")
        await wait_for(pilot, lambda: pane.experiments == [] and not pane.runs(), 20)
        await pilot.press("u")                                   # nothing marked: a warning
        assert pane.source is None and any("No runs are marked" in n.message for n in app._notifications)
        await pilot.press("6")
        runs = app.pane("runs")
        await wait_for(pilot, lambda: len(runs.runs) == 3, 20)
        table = app.query_one("#runs-table", DataTable)
        for path in runs.runs:                                   # mark all three
            table.move_cursor(row=table.get_row_index(path["path"]))
            await pilot.press("space")
        await pilot.press("7", "u")
        await wait_for(pilot, lambda: pane.data is not None and len(pane.runs()) == 2, 20)
        assert pane.source[0] == "marked" and app.query_one("#cmp-source", Select).value == "__marked__"
        assert sorted(r["label"] for r in pane.runs()) == ["gru 130000", "rnn 120000"]
        assert pane.data["skipped"] == 1                         # the generator is left out
        assert "1 training" in str(app.query_one("#cmp-views").render())
        n = len(lines(pane, "loss")["gru 130000"][0])
        done_curves = next(r for r in pane.runs() if r["label"] == "rnn 120000")["curves"]
        beat(live)
        rf.append_jsonl(live / rf.STEPS, {"step": 25, "epoch": 2.0833, "loss": 0.2, "lr": 0.01,
                                          "names_per_s": 3000.0, "elapsed": 12.5, "eta": 0.0, "total_steps": 30})
        await wait_for(pilot, lambda: len(lines(pane, "loss")["gru 130000"][0]) == n + 1, 10)
        assert lines(pane, "loss")["gru 130000"][0][-1] == 2.0833
        assert next(r for r in pane.runs() if r["label"] == "rnn 120000")["curves"] is done_curves   # not re-read
        await pilot.press("6")                                   # hidden: the pane does not look
        rf.append_jsonl(live / rf.STEPS, {"step": 26, "epoch": 2.1667, "loss": 0.2, "lr": 0.01,
                                          "names_per_s": 3000.0, "elapsed": 13.0, "eta": 0.0, "total_steps": 30})
        await pilot.pause(1.5)
        assert len(lines(pane, "loss")["gru 130000"][0]) == n + 1
        beat(live)
        await pilot.press("7")                                   # shown again: it looks at once
        await wait_for(pilot, lambda: len(lines(pane, "loss")["gru 130000"][0]) == n + 2, 10)


async def test_train_pane_smoothing_and_x_axis_keys(fixture_app):
    from namestudio.engine.events import Eval, Step

    app = fixture_app
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("2")
        pane = app.pane("train")
        losses = [1.0, 0.6, 0.9, 0.4, 0.7, 0.3]
        events = [Step(step=10 * (i + 1), epoch=0.25 * (i + 1), loss=v, names_per_s=100.0, elapsed=2.0 * (i + 1),
                       eta=0.0, total_steps=60) for i, v in enumerate(losses)]
        events += [Eval(step=30, epoch=0.75, train_loss=0.8, metrics={"loss": 0.9, "accuracy": 0.5}, best=True,
                        elapsed=6.0),
                   Eval(step=60, epoch=1.5, train_loss=0.5, metrics={"loss": 0.7, "accuracy": 0.7}, best=True,
                        elapsed=12.0)]
        pane.on_events("fake-run", events)
        await pilot.pause(0.4)                                   # the 4 Hz timer draws
        train = {label: (xs, ys) for label, xs, ys in pane.plotted["loss"]}
        assert train["train"] == ([0.25, 0.5, 0.75, 1.0, 1.25, 1.5], losses)   # no smoothing, x epoch at first
        assert set(train) == {"train", "val"}
        await pilot.press("t")
        train = {label: (xs, ys) for label, xs, ys in pane.plotted["loss"]}
        assert pane.x_axis == "step" and train["train"][0] == [10, 20, 30, 40, 50, 60] and train["val"][0] == [30, 60]
        await pilot.press("t")
        metric = {label: (xs, ys) for label, xs, ys in pane.plotted["metric"]}
        assert pane.x_axis == "elapsed" and metric["val"][0] == [6.0, 12.0]
        await pilot.press("t")
        assert pane.x_axis == "epoch"
        await pilot.press("m")
        train = {label: (xs, ys) for label, xs, ys in pane.plotted["loss"]}
        assert pane.smoothing == 0.6 and train["train"][1] == pytest.approx(ema(losses, 0.6))
        assert train["train raw"][1] == losses                   # the raw line, faint behind
        assert {label: ys for label, _, ys in pane.plotted["metric"]}["val"] == pytest.approx(ema([0.5, 0.7], 0.6))
        await pilot.press("l")                                   # log y: of the smoothed loss
        train = {label: (xs, ys) for label, xs, ys in pane.plotted["loss"]}
        assert train["train"][1] == pytest.approx([math.log10(v) for v in ema(losses, 0.6)])


def test_sort_rows_and_names():
    rows = [{"k": 2}, {"k": None}, {"k": 1}, {"k": 3}]
    assert [r["k"] for r in sort_rows(rows, "k")] == [1, 2, 3, None]
    assert [r["k"] for r in sort_rows(rows, "k", reverse=True)] == [3, 2, 1, None]   # no value: last either way
    assert parse_names(" Dovesky, Jackson,,de la Cruz ") == ["Dovesky", "Jackson", "de la Cruz"]


def test_a_stopped_run_reads_stopped_on_compare_as_on_runs():
    row = {"run": "r", "state": "stopped", "reason": "stopped"}
    assert result_cell("state", row).plain == state_cell(row).plain and "stopped" in state_cell(row).plain
    assert result_cell("state", {"state": "failed"}).plain == "failed"


# ---- a real tiny compare: the views that load weights ----------------------------------------------------------
TINY = ["--epochs", "1", "--embed", "8", "--hidden", "16", "--batch-size", "16", "--threads", "1", "--device", "cpu",
        "--log-every", "2", "--parallel", "2"]


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """Two tiny experiments made by `namestudio compare`, a classifier one and a generator one, at once."""
    root = tmp_path_factory.mktemp("compared")
    names = str(write_names_folder(root / "names"))
    ck = root / "ck"
    procs = [subprocess.Popen([sys.executable, "-m", "namestudio.tui.cli", "compare", "--data", names, "--task", task,
                               "--models", models, *TINY, "--checkpoints", str(ck / task), "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for task, models in (("classify", "rnn,gru"), ("generate", "rnn"))]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
        outs.append(json.loads(out.strip().splitlines()[-1]))
    return root, outs


async def test_top3_and_samples_of_real_runs(compared, monkeypatch):
    root, (clf, gen) = compared
    monkeypatch.chdir(root)
    monkeypatch.setenv("NAMESTUDIO_DATA_DIR", str(root / "userdata"))
    app = make_app(data="names")
    app.checkpoints = root / "ck" / "classify"
    app.follower.checkpoints = app.checkpoints
    async with app.run_test(size=SIZE) as pilot:
        await show_compare(pilot, app)
        pane = app.pane("compare")
        assert pane.source == ("exp", clf["experiment"])
        assert [r["label"] for r in pane.runs()] == ["rnn", "gru"]
        assert all(r["state"] == "done" and r["row"]["test_accuracy"] is not None for r in pane.runs())
        for _ in range(3):
            await pilot.press("v")
        assert pane.view == "topk"
        await wait_for(pilot, lambda: pane.topk and pane.topk.get("rows") is not None, 60)
        rows = pane.topk["rows"]
        assert len(rows) == 3 * 2 and [r["name"] for r in rows[:3]] == ["Dovesky", "Jackson", "Hou"]
        assert {r["label"] for r in rows} == {"rnn", "gru"}
        for r in rows:
            assert r["error"] is None and len(r["top"]) == 3
            assert all(0 <= p <= 1 for _, p in r["top"]) and sum(p for _, p in r["top"]) <= 1 + 1e-6
            assert {lang for lang, _ in r["top"]} <= {"Slavic", "Nordic", "Gaelic"}
        shown = app.query_one("#cmp-topk-out").content          # no error: the table alone
        assert shown.row_count == 3 and [c.header for c in shown.columns] == ["name", "rnn", "gru"]
        # other names, typed: Enter computes again
        app.query_one("#cmp-names").focus()
        app.query_one("#cmp-names").value = "Kalov"
        await pilot.press("enter")
        await wait_for(pilot, lambda: pane.topk.get("rows") is not None, 60)
        assert [r["name"] for r in pane.topk["rows"]] == ["Kalov", "Kalov"]
        app.query_one("#cmp-names").value = "!!, Kalov"          # a name no run can read: that name's error,
        await pilot.press("enter")                                # never the run's ("cannot load")
        await wait_for(pilot, lambda: pane.topk.get("rows") is not None, 60)
        bad = [r for r in pane.topk["rows"] if r["name"] == "!!"]
        assert len(bad) == 2 and all(r["error"] and not r["broken"] for r in bad)
        console = Console(width=200, record=True, file=io.StringIO())
        console.print(app.query_one("#cmp-topk-out").content)
        drawn = console.export_text()
        assert "cannot load" not in drawn and "!!: " in drawn and "never saw" in drawn
        app.query_one("#cmp-names").value = " , "
        await pilot.press("enter")
        assert "Type names" in pane.topk["error"]
        await pilot.press("escape", "v")
        assert pane.view == "samples"
        assert "generators" in str(app.query_one("#cmp-samples-out").render())

        # the generator experiment: samples per language, at the temperature and letters typed
        app.checkpoints = root / "ck" / "generate"
        pane.set_source(("exp", gen["experiment"]))
        await wait_for(pilot, lambda: pane.data is not None and pane.runs(), 20)
        app.query_one("#cmp-letters").value = "KM"
        app.query_one("#cmp-temp").value = "0.5"
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: pane.samples and pane.samples.get("tables") is not None, 60)
        (label, table, error), = pane.samples["tables"]
        assert label == "rnn" and error == "" and table["letters"] == ["K", "M"] and table["temperature"] == 0.5
        assert len(table["rows"]) == 3
        assert all(r["samples"]["K"][0].startswith("K") and r["samples"]["M"][0].startswith("M") for r in table["rows"])
        app.query_one("#cmp-temp").value = "hot"
        await pilot.press("ctrl+r")
        assert "not a number" in pane.samples["error"]
        app.query_one("#cmp-temp").value = "50"              # within Generate's and `sample`'s limit (was: "to 10")
        app.query_one("#cmp-letters").value = "!?"           # no letter the run can read: said, not an empty table
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: pane.samples and pane.samples.get("tables") is not None, 60)
        (label, table, error), = pane.samples["tables"]
        assert not pane.samples.get("error") and table is None and "never saw" in error, pane.samples
        await wait_workers(app)


# ---- snapshots ------------------------------------------------------------------------------------------------
def snap_show(view: str = "curves", difference: bool = False):
    async def run_before(pilot) -> None:
        app = pilot.app
        await wait_workers(app)
        await pilot.pause()
        await pilot.press("7")
        pane = app.pane("compare")
        await wait_for(pilot, lambda: pane.data is not None, 20)
        while pane.view != view:
            await pilot.press("v")
        if difference:
            await pilot.press("d")
        # the pane draws its view once it has a size (after the layout that shows it): wait for that
        await wait_for(pilot, lambda: view in pane._drawn, 20)
        await wait_workers(app)
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size, view, difference", [((80, 24), "curves", False), ((120, 36), "curves", False),
                                                     ((80, 24), "results", False), ((120, 36), "confusion", True)],
                         ids=["curves-80x24", "curves-120x36", "results-80x24", "difference-120x36"])
def test_compare_snapshot(size, view, difference, exp_app, snap_compare):
    app, _ = exp_app
    assert snap_compare(app, terminal_size=size, run_before=snap_show(view, difference))


@pytest.mark.parametrize("size", [(80, 24), (120, 30)])
async def test_the_empty_panes_hint_is_shown_whole(fixture_app, size):
    app = fixture_app
    async with app.run_test(size=size) as pilot:
        await settle(pilot, app)
        await pilot.press("7")
        await settle(pilot, app)
        info = app.query_one("#cmp-curves-info")
        note = app.pane("compare")._empty_note()
        assert note and note.startswith("No experiment yet")
        shown = "".join(str(line.text) for line in (info.render_line(y) for y in range(info.region.height)))
        assert "press u." in " ".join(shown.split())          # its end too, not cut at the first line



async def test_the_runs_pane_lists_an_experiments_runs_as_exp_slash_run(compared, monkeypatch):
    """An experiment's runs are runs like any other: listed on the Runs pane by the name every command takes
    (EXP/RUN, as `namestudio runs` lists them), offered by the Classify pane, and opened from the Runs pane."""
    root, (clf, gen) = compared
    monkeypatch.chdir(root)
    monkeypatch.setenv("NAMESTUDIO_DATA_DIR", str(root / "userdata"))
    exp = Path(clf["experiment"])
    app = make_app(data="names")
    app.checkpoints = root / "ck" / "classify"
    app.follower.checkpoints = app.checkpoints
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("6")
        runs = app.pane("runs")
        await wait_for(pilot, lambda: len(runs.runs) == 2, 20)
        assert [r["run"] for r in runs.runs] == [f"{exp.name}/rnn", f"{exp.name}/gru"]
        assert all(r["experiment"] == exp.name and r["state"] == "done" for r in runs.runs)
        assert str(exp / "gru") in [value for _, value in app.pane("classify").options]
        table = app.query_one("#runs-table", DataTable)
        table.move_cursor(row=table.get_row_index(str(exp / "gru")))
        await pilot.press("e")
        evaluate = app.pane("evaluate")
        await wait_for(pilot, lambda: evaluate.selected_run == str(exp / "gru") and evaluate.metrics, 20)
        assert evaluate.metrics["accuracy"] == pytest.approx(rf.read_json(exp / "gru" / rf.TEST)["test"]["accuracy"])
        assert evaluate.title.endswith(f"· {exp.name}/gru")


async def test_attaching_to_a_long_history_renders_only_its_last_evaluation(tmp_path, monkeypatch):
    """A run's whole metrics.jsonl arrives in one batch when the TUI attaches: the Evaluate pane renders the last
    evaluation only (each render costs milliseconds: a long history froze the screen for seconds)."""
    from namestudio.tui.panes.evaluate import EvaluatePane

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NAMESTUDIO_DATA_DIR", str(tmp_path / "userdata"))
    write_fixture(tmp_path / "names")
    live = tmp_path / "ck" / "20260101-130000-classify-gru"
    write_run(live, "gru", steps=120, evals=60, state="running", test=False, live_pid=os.getpid())
    shown = []
    real = EvaluatePane.on_live_eval
    monkeypatch.setattr(EvaluatePane, "on_live_eval", lambda self, e: (shown.append(e.step), real(self, e))[1])
    app = make_app(data="names")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await wait_for(pilot, lambda: shown, 20)
        await settle(pilot, app)
        assert shown == [120]                     # the 60th evaluation, at step 120, alone
        pane = app.pane("evaluate")
        assert pane.live is not None and "epoch 2.00" in pane.live[2]


async def open_two_runs(pilot, app):
    """The Runs pane once it lists the two runs of ``two_runs``."""
    await settle(pilot, app)
    await pilot.press("6")
    runs = app.pane("runs")
    await wait_for(pilot, lambda: len(runs.runs) == 2, 20)
    return runs


def two_runs(tmp_path, monkeypatch, weights: bool = False) -> Path:
    """A project folder with the fixture data and two finished classifier runs (rnn, gru) under ck/."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NAMESTUDIO_DATA_DIR", str(tmp_path / "userdata"))
    write_fixture(tmp_path / "names")
    ck = tmp_path / "ck"
    for run, model in (("20260101-120000-classify-rnn", "rnn"), ("20260101-130000-classify-gru", "gru")):
        write_run(ck / run, model)
        if weights:                  # listed as usable (not loaded)
            import torch
            rf.save_weights({"w": torch.zeros(1)}, ck / run / rf.WEIGHTS)
    return ck


async def test_a_slow_read_of_the_runs_is_waited_for_not_replaced_each_second(tmp_path, monkeypatch):
    """Reading long runs takes seconds: the pane's 1 s look waits for the read under way. It used to replace it
    each second (a thread cannot be stopped: the reads piled up) and drop each result, so nothing ever showed."""
    from namestudio.tui.panes import compare as cmp

    two_runs(tmp_path, monkeypatch)
    reads = []
    real = cmp.read_source

    def slow(*a, **kw):
        reads.append(a[0])
        time.sleep(2.5 * cmp.LOOK_EVERY)
        return real(*a, **kw)

    monkeypatch.setattr(cmp, "read_source", slow)
    app = make_app(data="names")
    async with app.run_test(size=SIZE) as pilot:
        runs = await open_two_runs(pilot, app)
        table = app.query_one("#runs-table", DataTable)
        for path in runs.runs:
            table.move_cursor(row=table.get_row_index(path["path"]))
            await pilot.press("space")
        await pilot.press("7", "u")
        pane = app.pane("compare")
        await wait_for(pilot, lambda: pane.data is not None and len(pane.runs()) == 2, 20)
        marked = [r for r in reads if r and r[0] == "marked"]
        assert len(marked) <= 2, len(marked)      # the read under way was waited for, not started again each second


async def test_the_runs_overlay_reads_a_runs_evaluations_again_only_when_they_change(tmp_path, monkeypatch):
    """The Runs overlay is drawn on each cursor move and each tick of a live run under the cursor: its file is
    read again only when it changed, and a new evaluation still shows."""
    from namestudio.engine import runfolder

    two_runs(tmp_path, monkeypatch, weights=True)
    import threading
    reads = []              # the UI thread's reads (the follower's listing reads the files too, in its thread)
    real = runfolder.read_jsonl

    def counted(path, *a, **kw):
        if threading.current_thread() is threading.main_thread():
            reads.append(Path(path).name)
        return real(path, *a, **kw)

    monkeypatch.setattr(runfolder, "read_jsonl", counted)
    app = make_app(data="names")
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_two_runs(pilot, app)
        await settle(pilot, app)
        table = app.query_one("#runs-table", DataTable)
        for row in (1, 0, 1, 0, 1, 0):
            table.move_cursor(row=row)
            await pilot.pause(0.05)
        await settle(pilot, app)
        assert reads.count(rf.METRICS) == 2, reads        # each run's file once, however often it was drawn
        top = Path(pane.cursor_run()["path"])
        n = len(pane._metrics(str(top)))
        rf.append_jsonl(top / rf.METRICS, {"step": 99, "epoch": 3.0, "elapsed": 50.0, "train_loss": 0.1,
                                           "val": {"loss": 0.2, "accuracy": 0.99, "macro_f1": 0.9}, "best": True})
        table.move_cursor(row=1)
        await pilot.pause(0.05)
        table.move_cursor(row=0)
        await settle(pilot, app)
        assert len(pane._metrics(str(top))) == n + 1 and reads.count(rf.METRICS) == 3


def test_marked_runs_of_both_tasks_show_the_same_task_on_runs_and_compare(tmp_path):
    """Two classifiers and a generator marked: the Runs overlay drew the classifiers (its first marked run, newest
    first) while Compare showed the generator (its first by sorted path). Both now show the task most of them
    have; on a tie, the newest one's."""
    from namestudio.engine import runfolder as rf
    from namestudio.tui.panes.compare import read_source
    from namestudio.tui.render import marked_task
    assert marked_task(["generate", "classify", "classify"]) == "classify"
    assert marked_task(["generate", "classify"]) == "generate" and marked_task([None]) is None
    paths = []
    for name, task in (("20260103-gen", "generate"), ("20260102-clf", "classify"), ("20260101-clf", "classify")):
        d = tmp_path / name
        d.mkdir()
        rf.atomic_write_json(d / rf.CONFIG, {"format": 2, "train": {"task": task, "model": "lstm"}, "labels": ["A"]})
        paths.append(str(d))
    data = read_source(("marked", tuple(paths)))                 # newest first, as the Runs pane lists them
    assert data["task"] == "classify" and data["skipped"] == 1
    assert [Path(r["path"]).name for r in data["runs"]] == ["20260102-clf", "20260101-clf"]
    # the views of the other task say that one was left out, not "these runs are classifiers"
    from types import SimpleNamespace

    from namestudio.tui.panes.compare import ComparePane
    note = ComparePane._task_note(SimpleNamespace(data=data), "generate", "Samples are", " (see Top-3)")
    assert note.startswith("Samples are for generators: Compare shows one task at a time, here the classifiers")
    assert note.endswith("to compare the 1 generator marked.")
    alone = {**data, "skipped": 0}
    assert ComparePane._task_note(SimpleNamespace(data=alone), "generate", "Samples are", " (see Top-3)") == \
        "Samples are for generators: these runs are classifiers (see Top-3)."


LANGUAGES = ["Arabic", "Chinese", "Czech", "Dutch", "English", "French", "German", "Greek", "Irish", "Italian",
             "Japanese", "Korean", "Polish", "Portuguese", "Russian", "Scottish", "Spanish", "Vietnamese"]


def eighteen_languages(exp: Path) -> None:
    """The experiment's runs as if trained on the 18 languages of the names data set."""
    n = len(LANGUAGES)
    for k, run in enumerate(sorted(p for p in exp.iterdir() if p.is_dir())):
        cfg = rf.read_json(run / rf.CONFIG)
        cfg["labels"] = LANGUAGES
        rf.atomic_write_json(run / rf.CONFIG, cfg)
        cm = [[8 + k if i == j else (i + j + k) % 3 for j in range(n)] for i in range(n)]
        test = rf.read_json(run / rf.TEST)
        test["test"]["confusion"] = cm
        rf.atomic_write_json(run / rf.TEST, test)
        rows = [json.loads(line) for line in (run / rf.METRICS).read_text().splitlines() if line]
        for row in rows:
            row["confusion"] = cm
        (run / rf.METRICS).write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.mark.parametrize("size", [(80, 24), (100, 30)])
async def test_the_difference_of_18_languages_scrolls_to_every_column(exp_app, size):
    app, exp = exp_app
    eighteen_languages(exp)
    async with app.run_test(size=size) as pilot:
        await show_compare(pilot, app)
        pane = app.pane("compare")
        while pane.view != "confusion":
            await pilot.press("v")
        await pilot.press("d")
        await settle(pilot, app)
        assert pane.shown_difference is not None and len(pane.shown_difference["labels"]) == 18
        cms = app.query_one("#cmp-cms")
        info = app.query_one("#cmp-cm-info")
        width = app.screen.size.width
        seen = set()
        for _ in range(40):
            region = cms.scrollable_content_region
            x = cms.scroll_x
            table = app.query_one("#cmp-cm-a")       # its header line, as far as the view shows it now
            shown = table.render_lines(table.region.reset_offset)[0].text
            seen.update(shown[int(x):int(x) + region.width].split())
            hint = str(info.render())
            if cms.scroll_x >= cms.max_scroll_x:
                break
            assert "→ scrolls to" in hint and "Vietnamese" in hint, hint
            await pilot.press("right")
            await settle(pilot, app)
        assert cms.region.right <= width
        assert "→ scrolls to" not in str(info.render())
        assert {"Ara", "Por", "Vie"} <= seen, seen
        await pilot.press("left")
        await settle(pilot, app)
        assert cms.scroll_x < cms.max_scroll_x


def test_a_very_long_name_leaves_the_top3_run_columns_readable():
    from rich.console import Console

    from namestudio.tui.panes.compare import topk_renderable

    long = "Abcdefghij" * 10                                     # 100 letters
    top = [("Portuguese", 0.51), ("Spanish", 0.30), ("Italian", 0.10)]
    rows = [{"label": lab, "name": n, "top": top} for lab in ("rnn", "lstm", "gru") for n in (long, "Hou")]
    console = Console(width=80, record=True, color_system=None)
    console.print(topk_renderable(rows, ["rnn", "lstm", "gru"]))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80, text
    header = text.splitlines()[0].replace("┃", " ").split()
    assert header == ["name", "rnn", "lstm", "gru"], text
    assert text.count("Portuguese 0.51") == 6 and text.count("Spanish    0.30") == 6, text
    assert "Abcdefghij" in text and "…" in text, text


def test_a_long_or_wide_language_name_in_the_top3_is_cut_with_a_mark_and_the_figures_line_up():
    """"Deutsch (Österreich)" showed as "Deutsch (Ö" (no mark), and 日本語 (6 cells, 3 characters) pushed its
    probability 3 cells past the others'."""
    from rich.cells import cell_len
    from rich.console import Console

    from namestudio.tui.panes.compare import topk_renderable

    top = [("日本語", 0.87), ("Deutsch (Österreich)", 0.13), ("Dutch", 0.0)]
    console = Console(width=80, record=True, color_system=None)
    console.print(topk_renderable([{"label": "rnn", "name": "Dovesky", "top": top}], ["rnn"]))
    lines = [line for line in console.export_text().splitlines() if "0." in line]
    assert len(lines) == 3 and "Deutsch (…" in lines[1], lines
    assert len({cell_len(line.rstrip()) for line in lines}) == 1, lines        # the figures end in one column


@pytest.mark.parametrize("eighteen", [False, True])
async def test_the_two_matrices_sit_side_by_side_only_when_both_fit(exp_app, eighteen):
    """The pane puts A and B side by side when both tables fit the width, else one above the other. It guessed
    their width from the label lengths; it now measures the tables, whose cells widen when a cell reads 100%."""
    app, exp = exp_app
    if eighteen:
        eighteen_languages(exp)
    async with app.run_test(size=(100, 30)) as pilot:
        await show_compare(pilot, app)
        pane = app.pane("compare")
        while pane.view != "confusion":
            await pilot.press("v")
        await settle(pilot, app)
        a, b = app.query_one("#cmp-cm-a"), app.query_one("#cmp-cm-b")
        assert b.display and pane.difference is False
        stacked = app.query_one("#cmp-cms").has_class("-stacked")
        assert stacked == eighteen
        if stacked:                                  # one above the other: B starts below A
            assert b.region.y >= a.region.bottom
        else:                                        # side by side, both whole on the screen
            assert b.region.x >= a.region.right and b.region.right <= app.screen.size.width


async def test_unmarking_every_run_empties_the_marked_view(tmp_path, monkeypatch):
    """Compare showed the runs marked before under "runs marked on the Runs pane (0)" once all were unmarked."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NAMESTUDIO_DATA_DIR", str(tmp_path / "userdata"))
    write_fixture(tmp_path / "names")
    ck = tmp_path / "ck"
    write_run(ck / "20260101-120000-classify-rnn", "rnn")
    write_run(ck / "20260101-130000-classify-gru", "gru")
    app = make_app(data="names")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("6")
        runs = app.pane("runs")
        await wait_for(pilot, lambda: len(runs.runs) == 2, 20)
        table = app.query_one("#runs-table", DataTable)

        async def toggle_all():
            for path in [r["path"] for r in runs.runs]:
                table.move_cursor(row=table.get_row_index(path))
                await pilot.press("space")
        await toggle_all()
        await pilot.press("7", "u")
        pane = app.pane("compare")
        await wait_for(pilot, lambda: pane.data is not None and len(pane.runs()) == 2, 20)
        await pilot.press("6")
        await toggle_all()                                       # unmarked again
        assert not runs.marked
        await pilot.press("7")
        await settle(pilot, app)
        assert pane.source == ("marked", ()) and not pane.runs()
        assert pane._empty_note().startswith("No runs are marked")
