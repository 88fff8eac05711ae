"""User text (labels, names, paths, run ids, error messages) is shown as text, never read as Rich or Textual markup:
a label "[/English]" crashed `namestudio data` (MarkupError), "[bold]Scots" or a folder "[red]" vanished."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from namestudio.tui.cli import main

ODD = ["[/English]", "[bold]Scots", "[red]"]


def shown(*renderables, width: int = 160) -> str:
    """What a Rich console prints for the renderables, as plain text."""
    con = Console(file=io.StringIO(), width=width, color_system=None, legacy_windows=False)
    for r in renderables:
        con.print(r)
    return con.file.getvalue()


def write_csv(path: Path, labels: list[str], per_label: int = 4) -> Path:
    stems = ["ka", "lo", "mi", "ra", "te", "vi", "no", "sa", "pe", "du", "zo", "be"]
    rows = ["name,label"]
    for i, lab in enumerate(labels):
        rows += [f"{stems[i].capitalize()}{s}{'wen' if i == 0 else 'ug' if i == 1 else 'ik'},{lab}"
                 for s in stems[:per_label]]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def quiet_env(tmp_path, monkeypatch):
    monkeypatch.setenv("NAMESTUDIO_CACHE_DIR", "off")
    monkeypatch.setenv("NAMESTUDIO_DATA_DIR", str(tmp_path / "home"))
    return tmp_path


# ---- render.py -----------------------------------------------------------------------------------
def test_tables_show_labels_literally():
    from namestudio.tui.render import (confusion_table, difference_table, per_class_table, probability_table,
                                       summary_tables)

    labels = ["[/x]", "[b]y", "plain"]
    confusion = [[3, 1, 0], [0, 4, 0], [1, 0, 2]]
    metrics = {"per_class": {lab: {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 4} for lab in labels}}
    # the matrices abbreviate the labels to three letters: "[/x" and "[b]" (a tag, were it markup)
    for table in (confusion_table(confusion, labels), confusion_table(confusion, labels, percent=False),
                  difference_table([[0.1, -0.1, 0], [0, 0, 0], [0, 0, 0.2]], labels),
                  per_class_table(metrics, compact=True)):
        lines = shown(table).splitlines()
        assert any(line.startswith("[b]") for line in lines) and any(line.startswith("[/x") for line in lines), lines
    for table in (per_class_table(metrics), probability_table([("[/x]", 0.7), ("[b]y", 0.3)])):
        out = shown(table)
        assert "[/x]" in out and "[b]y" in out, out
    summary = {"n_pairs": 9, "n_labels": 2, "source": "/data/[red]/names.csv",
               "per_label": {"[/English]": 5, "[bold]Scots": 4},
               "length": {"min": 3, "max": 9}, "cleaning": {"kept": 9},
               "cross_label_duplicates": {"count": 1, "examples": [["[i]Smith", ["a", "b"]]]}}
    out = shown(*summary_tables(summary))
    for text in ("[/English]", "[bold]Scots", "/data/[red]/names.csv", "[i]Smith (2)"):
        assert text in out, (text, out)


def test_the_runs_table_shows_run_ids_and_errors_literally():
    from namestudio.tui.render import runs_table

    rows = [{"run": "[b]mine", "state": "done", "task": "classify", "model": "lstm"},
            {"run": "[/broken]", "error": "config.json: [red] is not JSON"}]
    out = shown(runs_table(rows, width=160, title="Runs"))
    assert "[b]mine" in out and "[/broken]" in out and "[red] is not JSON" in out, out


# ---- the CLI -------------------------------------------------------------------------------------
def test_data_prints_odd_labels_and_paths_literally(quiet_env, capsys):
    csv = write_csv(quiet_env / "[red]" / "m.csv", ["[/English]", "[bold]Scots"])
    code = main(["data", "--data", str(csv)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "[/English]" in out and "[bold]Scots" in out and "[red]/m.csv" in out, out


def test_data_on_a_folder_of_odd_label_files(quiet_env, capsys):
    folder = quiet_env / "[red]"
    folder.mkdir()
    for i, lab in enumerate(["[b]Gael", "Greek"]):
        (folder / f"{lab}.txt").write_text("\n".join(f"{s}{'an' if i else 'os'}" for s in
                                                     ["Ka", "Lo", "Mi", "Ra", "Te"]) + "\n", encoding="utf-8")
    code = main(["data", "--data", str(folder)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "[b]Gael" in out and "[red]" in out, out


@pytest.fixture(scope="module")
def odd_run(tmp_path_factory):
    """A tiny classifier trained on labels that look like markup."""
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("markup")
    mp.setenv("NAMESTUDIO_CACHE_DIR", "off")
    mp.setenv("NAMESTUDIO_DATA_DIR", str(root / "home"))
    csv = write_csv(root / "train.csv", ["[/Irish]", "[b]Gael", "Greek"], per_label=12)
    ck = root / "ck"
    code = main([str(a) for a in ["train", "--task", "classify", "--data", csv, "--checkpoints", ck, "--embed", 8,
                                  "--hidden", 16, "--epochs", 1, "--batch-size", 16, "--threads", 1]])
    assert code == 0
    yield next(ck.iterdir())
    mp.undo()


def test_eval_and_classify_show_odd_labels_literally(odd_run, capsys):
    capsys.readouterr()
    code = main(["eval", str(odd_run)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "[/Irish]" in out and "[b]Gael" in out, out
    code = main(["classify", str(odd_run), "Murphy", "[i]Kalo"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "[/Irish]" in out and "[b]Gael" in out and "[i]Kalo" in out, out


# ---- the TUI -------------------------------------------------------------------------------------
async def test_the_data_pane_shows_odd_labels_and_paths(tmp_path, monkeypatch):
    from textual.geometry import Region
    from textual.widgets import Static

    from test_tui import SIZE, make_app, settle

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NAMESTUDIO_DATA_DIR", str(tmp_path / "userdata"))
    monkeypatch.setenv("NAMESTUDIO_CACHE_DIR", "off")
    write_csv(tmp_path / "[red]" / "m.csv", ["[/English]", "[bold]Scots"])
    app = make_app(data="[red]/m.csv")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        assert app.dataset is not None
        status = str(app.query_one("#data-status", Static).render())
        assert "[red]/m.csv" in status, status
        labels = app.query_one("#data-labels", Static)
        drawn = "\n".join(strip.text for strip in labels.render_lines(Region(0, 0, *labels.size)))
        assert "[/English]" in drawn and "[bold]Scots" in drawn, drawn
        assert "[red]/m.csv" in str(app.query_one("#status-bar", Static).render())
