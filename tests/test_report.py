"""`namestudio report` from runs trained separately (real `train` children): links resolve to non-empty files,
the tables, curves.csv, atomic replacement; `namestudio export --tensorboard` event files."""
import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import write_names_folder
from namestudio.engine import export as tb
from namestudio.engine import runfolder as rf
from namestudio.engine import report as report_mod

TINY = ["--embed", "8", "--hidden", "16", "--batch-size", "16", "--threads", "1", "--device", "cpu",
        "--log-every", "2", "--epochs", "2", "--patience", "0"]


def cli(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "namestudio.tui.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three runs trained one by one with plain `namestudio train`: two classifiers and a generator (an ensemble
    of two)."""
    root = tmp_path_factory.mktemp("sep")
    names = str(write_names_folder(root / "names"))
    ck = root / "ck"
    out = []
    for extra in (["--model", "lstm"], ["--model", "gru"], ["--task", "generate", "--model", "gru", "--members", "2"]):
        r = cli("train", "--data", names, *TINY, *extra, "--checkpoints", str(ck), "--json")
        assert r.returncode == 0, r.stderr
        out.append(json.loads(r.stdout.strip().splitlines()[-1])["run_dir"])
    return ck, out


def links(md: str) -> list[str]:
    return re.findall(r"\]\(([^)]+)\)", md)


def test_report_from_separately_trained_runs(runs, tmp_path):
    ck, dirs = runs
    out = tmp_path / "rep"
    r = cli("report", *[Path(d).name for d in dirs], "--checkpoints", str(ck), "--out", str(out),
            "--names", "Kalov,Mcte", "--start-letters", "KM", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout.strip().splitlines()[-1])
    md = (out / "report.md").read_text()
    found = links(md)
    assert "curves.csv" in found
    for link in found:                                   # every link resolves to a non-empty file in the folder
        assert (out / link).is_file() and (out / link).stat().st_size > 0, link
    assert set(info["files"]) == set(found) | {"report.md"}
    # the tables: results (both tasks), top 3 of the names asked for, samples from the start letters, machine
    for word in ("Results: classifiers", "Results: generators", "Top 3", "Kalov", "Mcte", "Samples of",
                 "| language | K | M |", "torch (the runs)", "device", "threads", "Shared by every run"):
        assert word in md, word
    # each run's n-gram LM as its test_metrics.json records it (engine/blend.py short)
    from namestudio.engine.blend import short
    assert md.count("n-gram LM |") == 2
    for d in dirs:
        blend = json.loads((Path(d) / rf.TEST).read_text())["test"]["lm_blend"]
        assert f"| {short(blend)} |" in md
    for d in dirs:
        assert Path(d).name in md
    assert "| gru ×2 |" in md and "| lstm |" in md          # an ensemble is named as one (config.model_label)
    if report_mod._have_matplotlib():
        pngs = [link for link in found if link.endswith(".png")]
        assert "curves-classify.png" in pngs and "curves-generate.png" in pngs
        assert len([p for p in pngs if p.startswith("confusion-")]) == 2      # one per classifier
        assert all((out / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    else:
        assert report_mod.MATPLOTLIB_MISSING in r.stderr and report_mod.MATPLOTLIB_MISSING in md


def test_curves_csv_holds_every_logged_point(runs, tmp_path):
    ck, dirs = runs
    rep = report_mod.write_report(dirs, tmp_path / "rep", ck, figures=False)
    rows = list(csv.DictReader(open(rep.path / "curves.csv")))
    assert list(rows[0]) == report_mod.CSV_COLUMNS
    for d in dirs:
        steps = rf.read_jsonl(Path(d) / rf.STEPS)
        evals = rf.read_jsonl(Path(d) / rf.METRICS)
        mine = [r for r in rows if r["run"] == Path(d).name]
        assert [float(r["value"]) for r in mine if r["metric"] == "loss"] == [s["loss"] for s in steps]
        assert len([r for r in mine if r["metric"] == "train_loss"]) == len(evals) > 0
    assert not rep.notes                                   # figures=False: no note about matplotlib


def test_report_replaces_an_earlier_report_but_not_another_folder(runs, tmp_path):
    ck, dirs = runs
    out = tmp_path / "rep"
    report_mod.write_report(dirs[:1], out, ck, figures=False)
    (out / "confusion-Gone.png").write_text("old")          # a figure of the earlier report: replaced with it
    report_mod.write_report(dirs[1:2], out, ck, figures=False)
    assert not (out / "confusion-Gone.png").exists() and Path(dirs[1]).name in (out / "report.md").read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]      # no temporary folder left
    other = tmp_path / "mine"
    other.mkdir()
    (other / "thesis.tex").write_text("x")
    r = cli("report", dirs[0], "--out", str(other))
    assert r.returncode == 1 and "not a namestudio report" in r.stderr and (other / "thesis.tex").exists()
    # a folder with a report.md of its own beside the user's files was replaced whole: thesis.tex deleted
    (other / "report.md").write_text("# my notes")
    r = cli("report", dirs[0], "--out", str(other))
    assert r.returncode == 1 and "holds thesis.tex beside a report" in r.stderr
    assert (other / "thesis.tex").read_text() == "x" and (other / "report.md").read_text() == "# my notes"
    (out / "notes.txt").write_text("mine")                  # the same in a real earlier report
    r = cli("report", dirs[0], "--out", str(out), "--checkpoints", str(ck))
    assert r.returncode == 1 and "notes.txt" in r.stderr and (out / "notes.txt").exists()
    # a folder that holds the runs (or the checkpoints) read: refused, even with a report.md in it
    (ck.parent / "report.md").write_text("# a report.md beside the checkpoints")
    r = cli("report", dirs[0], "--out", str(ck.parent), "--checkpoints", str(ck))
    assert r.returncode == 1 and "which the report reads" in r.stderr and Path(dirs[0]).is_dir()
    (ck.parent / "report.md").unlink()
    r = cli("report", "no-such-run", "--out", str(tmp_path / "x"), "--checkpoints", str(ck))
    assert r.returncode == 1 and "no-such-run" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_a_run_that_cannot_be_read_is_named_not_silently_left_out(runs, tmp_path):
    """A run whose config.json is gone made an empty report and exit 0. Now: named in the report and on the
    terminal beside the others; alone, a one-line error and no report."""
    import shutil
    ck, dirs = runs
    broken = tmp_path / "broken"
    shutil.copytree(dirs[0], broken)
    (broken / rf.CONFIG).unlink()
    r = cli("report", dirs[1], str(broken), "--out", str(tmp_path / "rep"), "--checkpoints", str(ck))
    assert r.returncode == 0, r.stderr
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "left out of the report: broken" in md and "config.json" in md and Path(dirs[1]).name in md
    assert "left out of the report: broken" in r.stdout
    r = cli("report", str(broken), "--out", str(tmp_path / "rep2"), "--checkpoints", str(ck))
    assert r.returncode == 1 and "no run could be read: broken" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "rep2").exists()
    # a damaged test record in one run left out with its words, the others reported (was: no report at all)
    damaged = tmp_path / "damaged"
    shutil.copytree(dirs[0], damaged)
    rf.atomic_write_json(damaged / rf.TEST, [])
    r = cli("report", dirs[1], str(damaged), "--out", str(tmp_path / "rep3"), "--checkpoints", str(ck))
    assert r.returncode == 0, r.stderr
    said = "left out of the report: damaged: "
    assert said in r.stdout and "test_metrics.json: damaged (a JSON list where an object belongs)" in r.stdout
    assert said in (tmp_path / "rep3" / "report.md").read_text()


def test_a_run_stopped_before_any_training_is_left_out_with_a_note_not_a_row_of_errors(runs, tmp_path):
    """A run stopped before its first step (no weights, no test, no curve) went into the report: a row of dashes
    and, for each top-3 name, its whole "was stopped before any training …" error in the 1st column. It is now
    left out, with a note in the report and on the terminal; alone, it is a one-line error and no report."""
    import dataclasses
    import shutil
    ck, dirs = runs
    untrained = tmp_path / "untrained"
    shutil.copytree(dirs[0], untrained)
    for f in (rf.WEIGHTS, rf.LM, rf.CALIBRATION, rf.METRICS, rf.STEPS):
        (untrained / f).unlink(missing_ok=True)
    rf.atomic_write_json(untrained / rf.TEST, {"test": {}, "untested": rf.UNTRAINED, "reason": "stopped"})
    rf.write_status(untrained, dataclasses.replace(rf.read_status(untrained), state=rf.STOPPED, step=0))
    r = cli("report", dirs[1], str(untrained), "--out", str(tmp_path / "rep"), "--checkpoints", str(ck))
    assert r.returncode == 0, r.stderr
    md = (tmp_path / "rep" / "report.md").read_text()
    assert f"left out of the report: untrained: run untrained was {rf.UNTRAINED}" in md
    assert "left out of the report: untrained" in r.stdout
    assert md.count(rf.UNTRAINED) == 1 and "| untrained |" not in md and Path(dirs[1]).name in md
    r = cli("report", str(untrained), "--out", str(tmp_path / "rep2"), "--checkpoints", str(ck))
    assert r.returncode == 1 and f"nothing to report: untrained was {rf.UNTRAINED}" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "rep2").exists()
    # export: it wrote an event file with no curve and said "1 run exported"
    r = cli("export", dirs[1], str(untrained), "--tensorboard", str(tmp_path / "tb"), "--checkpoints", str(ck))
    assert r.returncode == 0, r.stderr
    assert f"left out untrained: it has logged no step (it was {rf.UNTRAINED})" in r.stdout
    assert "1 run exported" in r.stdout and [p.name for p in (tmp_path / "tb").iterdir()] == [Path(dirs[1]).name]
    r = cli("export", str(untrained), "--tensorboard", str(tmp_path / "tb2"), "--checkpoints", str(ck))
    assert r.returncode == 1 and "nothing to export: run untrained has logged no step" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "tb2").exists()


def test_bad_sampling_settings_and_an_unwritable_report_folder_are_refused_before_any_work(runs, tmp_path):
    ck, dirs = runs
    for bad, said in ((["--temperature", "-1"], "temperature"), (["--start-letters", "123"], "start letters")):
        r = cli("report", dirs[2], "--out", str(tmp_path / "rep"), "--checkpoints", str(ck), *bad)
        assert r.returncode == 1 and said in r.stderr and len(r.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "rep").exists()
    (tmp_path / "afile").write_text("x")
    exp_ck = tmp_path / "ck2"
    r = cli("compare", "--data", str(write_names_folder(tmp_path / "names")), "--models", "rnn", *TINY,
            "--checkpoints", str(exp_ck), "--report", str(tmp_path / "afile"))
    assert r.returncode == 1 and "is a file" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not exp_ck.exists() or not any(exp_ck.iterdir())         # nothing trained, no experiment begun
    # the checkpoints folder as the report folder: the report would replace the experiment (it failed after
    # every run had trained)
    r = cli("compare", "--data", str(tmp_path / "names"), "--models", "rnn", *TINY,
            "--checkpoints", str(exp_ck), "--report", str(exp_ck))
    assert r.returncode == 1 and "which the report reads" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not exp_ck.exists() or not any(exp_ck.iterdir())


def test_crc32c_known_value():
    assert tb.crc32c(b"123456789") == 0xE3069283          # the CRC-32C check value
    assert tb.crc32c(b"") == 0


def test_export_tensorboard_event_file(runs, tmp_path):
    ck, dirs = runs
    r = cli("export", dirs[0], dirs[2], "--tensorboard", str(tmp_path / "tb"), "--json")
    assert r.returncode == 0, r.stderr
    files = [Path(f) for f in json.loads(r.stdout.strip().splitlines()[-1])["files"]]
    assert [f.parent.name for f in files] == [Path(d).name for d in dirs[::2]]
    if tb._have_tensorboard():
        pytest.skip("torch's writer wrote these; the built-in reader below checks the built-in writer")
    events = tb.read_events(files[0])                     # frames and CRCs check out
    assert events[0]["file_version"] == "brain.Event:2"
    scalars = [(e["step"], tag, v) for e in events[1:] for tag, v in e["scalars"]]
    steps = rf.read_jsonl(Path(dirs[0]) / rf.STEPS)
    assert [(s, v) for s, tag, v in scalars if tag == "train/loss"] == \
        [(s["step"], pytest.approx(s["loss"], rel=1e-6)) for s in steps]
    assert {"train/lr", "val/accuracy", "val/macro_f1", "eval/train_loss"} <= {t for _, t, _ in scalars}
    gen = {t for e in tb.read_events(files[1])[1:] for t, _ in e["scalars"]}
    assert "val/nll" in gen
    # exporting again replaces the file (TensorBoard would otherwise show every point twice)
    again = tb.export_tensorboard(dirs[0], tmp_path / "tb", use_tensorboard=False)
    assert list(again.parent.glob("events.out.tfevents.*")) == [again]


def test_an_export_that_cannot_write_one_run_writes_and_says_the_others(runs, tmp_path):
    """A file where one run's folder goes stopped the export at that run with one error line: the runs written
    before it were left unsaid (no "wrote", no JSON), and the runs after it never written."""
    ck, dirs = runs
    names = [Path(d).name for d in dirs[:2]]
    (tmp_path / "tb").mkdir()
    (tmp_path / "tb" / names[0]).write_text("in the way")
    r = cli("export", dirs[0], dirs[1], "--tensorboard", str(tmp_path / "tb"), "--json")
    assert r.returncode == 1
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert [Path(f).parent.name for f in out["files"]] == [names[1]] and Path(out["files"][0]).is_file()
    assert [x["run"] for x in out["left_out"]] == [names[0]] and "File exists" in out["left_out"][0]["why"]
    assert f"namestudio: error: {names[0]}: could not write" in r.stderr and "File exists" in r.stderr


def test_export_of_two_runs_with_one_folder_name_keeps_both(runs, tmp_path):
    """a/run1 and b/run1 were both exported into tb/run1, the second deleting the first, and "2 runs exported"."""
    ck, dirs = runs
    for parent in ("a", "b"):
        shutil.copytree(dirs[0], tmp_path / parent / "run1")
    r = cli("export", tmp_path / "a" / "run1", tmp_path / "b" / "run1", "--tensorboard", str(tmp_path / "tb"),
            "--json")
    assert r.returncode == 0, r.stderr
    files = [Path(f) for f in json.loads(r.stdout.strip().splitlines()[-1])["files"]]
    assert [f.parent.relative_to(tmp_path / "tb").as_posix() for f in files] == ["a/run1", "b/run1"]
    assert all(f.is_file() for f in files)
    for parent in ("c", "d"):                       # folders of the same name too: refused, nothing written
        shutil.copytree(dirs[0], tmp_path / parent / "x" / "run1")
    r = cli("export", tmp_path / "c" / "x" / "run1", tmp_path / "d" / "x" / "run1", "--tensorboard",
            str(tmp_path / "tb2"))
    assert r.returncode == 1 and "two runs would be exported as 'x/run1'" in r.stderr
    assert not (tmp_path / "tb2").exists()


def test_tensorboard_reads_our_file_when_installed(runs, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    path = tb.export_tensorboard(runs[1][0], tmp_path, use_tensorboard=False)
    acc = EventAccumulator(str(path.parent))
    acc.Reload()
    assert "train/loss" in acc.Tags()["scalars"]


def test_a_stopped_experiments_report_names_the_runs_that_never_started(runs, tmp_path):
    """A report of an experiment stopped part-way showed its finished runs only, as if they were the plan."""
    import shutil
    from namestudio.engine import experiment as ex
    ck, dirs = runs
    exp = tmp_path / "ck" / "exp-20260101-000000-classify"
    exp.mkdir(parents=True)
    shutil.copytree(dirs[0], exp / "lstm")
    rf.atomic_write_json(exp / ex.EXPERIMENT, {"task": "classify", "state": "stopped", "runs": [
        {"dir": "lstm", "model": "lstm", "state": "done"}, {"dir": "gru", "model": "gru", "state": "pending"},
        {"dir": "rnn", "model": "rnn", "state": "pending"}]})
    rep = report_mod.write_report([exp.name], tmp_path / "rep", tmp_path / "ck", figures=False)
    said = (f"experiment {exp.name} is stopped: 2 of its 3 runs have not started (gru, rnn) and are in no "
            f"table; `namestudio compare --resume {rf.as_arg(exp)}` trains them")
    assert said in rep.notes and said in (tmp_path / "rep" / "report.md").read_text()
    shutil.copytree(dirs[1], exp / "gru")                                  # one left: "1 of its 3 runs has"
    (exp / ex.EXPERIMENT).write_text((exp / ex.EXPERIMENT).read_text().replace('"gru", "state": "pending"',
                                                                               '"gru", "state": "done"'))
    assert report_mod._unstarted(exp)[0].startswith(f"experiment {exp.name} is stopped: 1 of its 3 runs has not "
                                                    "started (rnn) and is in no table")


def test_a_killed_writers_temporary_folders_are_swept_by_the_next_report(runs, tmp_path):
    """kill -9 (or a signal after compare restored its handlers) while a report was written left hidden
    .rep.*.tmp / .rep.old-PID folders beside it for ever."""
    import os
    import time
    ck, dirs = runs
    stale = [tmp_path / ".rep.abc123.tmp", tmp_path / ".rep.old-4242"]
    fresh = tmp_path / ".rep.now99.tmp"                     # a writer at work now: kept
    other = tmp_path / ".notes.abc.tmp"                      # not a report's: kept
    for d in (*stale, fresh, other):
        d.mkdir()
        (d / "report.md").write_text("half")
    for d in (*stale, other):
        os.utime(d, (time.time() - 7200, time.time() - 7200))
    report_mod.write_report(dirs[:1], tmp_path / "rep", ck, figures=False)
    assert not any(d.exists() for d in stale) and fresh.exists() and other.exists()
    assert (tmp_path / "rep" / "report.md").is_file()


def test_runs_share_data_only_with_the_same_resolved_source_and_split_and_the_table_says_its_test_set(runs, tmp_path):
    """`--data names2` typed for two runs, with languages deleted from names2 between them, was listed as "data |
    'names2'" under "Shared by every run", and their test accuracies (other labels, another test set) side by side
    with nothing said. Now: the data as resolved, the labels and the split decide; the table says its data and
    split, and warns in one line when its runs were tested on different test sets."""
    import shutil
    ck, dirs = runs
    names = tmp_path / "names2"
    write_names_folder(names)
    made = []
    for run in ("r1", "r2"):
        r = subprocess.run([sys.executable, "-m", "namestudio.tui.cli", "train", "--data", "names2", *TINY,
                            "--model", "rnn", "--run-dir", f"c/{run}"], capture_output=True, text=True, timeout=180,
                           cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        made.append(tmp_path / "c" / run)
        shutil.rmtree(names)                                # the same typed path, other names: one language gone
        write_names_folder(names)
        sorted(names.iterdir())[0].unlink()
    rep = report_mod.write_report([str(d) for d in made], tmp_path / "rep", ck, figures=False)
    md = (rep.path / "report.md").read_text()
    shared = md.split("Shared by every run:")[1].split("Varying:")[0]
    assert "'names2'" not in md and f"| data | {str(names.resolve())!r} |" in shared   # as resolved, not as typed
    varying = md.split("Varying:")[1]
    assert "| labels | 3: " in varying and "| split (train/val/test) | 96/12/12 | 64/8/8 |" in varying
    table = md.split("## Results: classifiers")[1].split("### Curves")[0]
    warning = [line for line in table.splitlines() if "different test sets" in line]
    assert len(warning) == 1 and "labels, split sizes differ" in warning[0]
    assert "- r1: " in table and "train 96 / val 12 / test 12 rows (name, label)" in table and "test 8 rows" in table
    assert any("different test sets" in n for n in rep.notes)           # and on the terminal
    # the runs of one data and split: one line with the data, the split sizes and the test n; no warning
    rep = report_mod.write_report(dirs[:2], tmp_path / "rep2", ck, figures=False)
    md = (rep.path / "report.md").read_text()
    table = md.split("## Results: classifiers")[1].split("### Curves")[0]
    counts = json.loads((Path(dirs[0]) / rf.CONFIG).read_text())["split_counts"]
    assert (f"Data: `{json.loads((Path(dirs[0]) / rf.CONFIG).read_text())['data_source']}`, 3 labels, split seed 0: "
            f"train {counts['train']} / val {counts['val']} / test {counts['test']} rows (name, label); test n = "
            f"{counts['test']}"
            in table)
    assert "different test sets" not in md and not rep.notes


def test_the_curves_say_they_are_the_network_alone_and_the_table_gives_the_kept_models_validation(runs, tmp_path,
                                                                                                   monkeypatch):
    """curves-generate.png's validation NLL ended at 2.289 where the results table said test NLL 1.797 (the kept
    model: the network with its n-gram mix, 1.795 on validation), and curves.csv's val_accuracy was 0.748 beside a
    best_val of 0.821 with the blend; nothing said the curves were the network alone. Now the figures' titles,
    report.md and the results table say which is which."""
    import sys as _sys
    from unittest import mock
    from namestudio.engine import experiment as ex
    ck, dirs = runs
    gen = Path(dirs[2])
    blend = json.loads((gen / rf.TEST).read_text())["test"]["lm_blend"]
    kept = rf.blend_val(blend, "nll")
    assert kept is not None and kept == blend["val_nll_after"]          # the tiny generator keeps its mix
    rep = report_mod.write_report(dirs, tmp_path / "rep", ck, figures=False)
    md = (rep.path / "report.md").read_text()
    for task, mix, col in (("classifiers", "blend", "val accuracy (kept model)"),
                           ("generators", "mix", "val NLL (kept model)")):
        part = md.split(f"## Results: {task}")[1].split("## Results")[0].split("## Settings")[0]
        assert report_mod.NETWORK_ALONE.format(mix=mix) in part and "network alone" in part
        header = next(line for line in part.splitlines() if line.startswith("| run |"))
        assert col in header.split(" | ")
    row = next(line for line in md.splitlines() if line.startswith(f"| {gen.name} |"))
    assert f"| {kept:.3f} |" in row                                       # the mix's validation NLL, not the network's
    for d in dirs[:2]:                                                    # the classifiers: blend's, or the network's
        test = json.loads((Path(d) / rf.TEST).read_text())["test"]
        best = [e for e in rf.read_jsonl(Path(d) / rf.METRICS) if e.get("best")][-1]["val"]["accuracy"]
        want = rf.blend_val(test.get("lm_blend"), "accuracy")
        line = next(line for line in md.splitlines() if line.startswith(f"| {Path(d).name} |"))
        assert f"| {(best if want is None else want):.3f} |" in line
    # the figure (drawn with a stand-in for matplotlib): its validation titles say "network alone", and the kept
    # figure is marked at the best step
    axes = [mock.MagicMock() for _ in range(3)]
    plt = mock.MagicMock()
    plt.subplots.return_value = (mock.MagicMock(), axes)
    mpl = mock.MagicMock(pyplot=plt)
    monkeypatch.setitem(_sys.modules, "matplotlib", mpl)
    monkeypatch.setitem(_sys.modules, "matplotlib.pyplot", plt)
    report_mod._curves_figure([(gen.name, gen)], "generate", tmp_path / "c.png")
    titles = [c.kwargs.get("title", "") for ax in axes for c in ax.set.call_args_list]
    assert report_mod.curve_name("generate") in titles[1] and "network alone (before the n-gram mix)" in titles[2]
    marks = [c for c in axes[1].plot.call_args_list if report_mod.KEPT_MARK in c.kwargs.get("label", "")]
    best = [e for e in ex.curves(gen)["evals"] if e["best"]][-1]
    assert len(marks) == 1 and list(marks[0].args) == [[best["epoch"]], [kept]]
    assert "network alone (before the n-gram blend)" in report_mod.curve_name("classify")


def test_report_out_dot_is_refused_in_one_clear_line_and_dot_dot_and_a_trailing_slash_work(runs, tmp_path):
    """`report RUN --out .` in an empty folder said ".: holds …/checkpoints, which the report reads" (a checkpoints
    folder that does not exist), and with --checkpoints elsewhere ".: Device or resource busy" (the current folder
    renamed away). Now: a checkpoints folder that does not exist holds nothing; the current folder (or one that
    holds it: "..") is refused in one line asking for a new folder name, nothing written; "../rep/" and "rep/."
    are the folders they name."""
    ck, dirs = runs
    here = tmp_path / "emp"
    (here / "sub").mkdir(parents=True)

    def report(out, cwd, *more):
        return subprocess.run([sys.executable, "-m", "namestudio.tui.cli", "report", dirs[0], "--out", out, *more],
                              capture_output=True, text=True, timeout=180, cwd=cwd)
    for more in ((), ("--checkpoints", str(ck))):
        r = report(".", here, *more)
        assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert ".: is the current folder" in r.stderr and "give a new folder name" in r.stderr
        assert "checkpoints" not in r.stderr and "busy" not in r.stderr
    r = report("..", here / "sub")
    assert r.returncode == 1 and "..: holds the current folder" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in here.iterdir()) == ["sub"] and not any((here / "sub").iterdir())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    # an empty folder named from inside another: written there; then replaced as an earlier report, named with a
    # trailing slash; no checkpoints folder in the current folder needed
    (here / "rep").mkdir()
    for out in ("../rep", "../rep/"):
        r = report(out, here / "sub")
        assert r.returncode == 0, (out, r.stderr)
        assert (here / "rep" / "report.md").is_file() and Path(dirs[0]).name in (here / "rep" / "report.md").read_text()
    assert sorted(p.name for p in here.iterdir()) == ["rep", "sub"]      # no temporary folder left beside it
    rep = report_mod.write_report(dirs[:1], here / "rep" / ".", ck, figures=False)
    assert rep.path == here / "rep" and (here / "rep" / "report.md").is_file()
