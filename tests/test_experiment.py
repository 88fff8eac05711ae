"""`namestudio compare`: every run as a real child process, the JSON of the issue, the grid, resume, stop;
the tutorial recipe; the data functions of the comparison views."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers import blend_file_as_before, write_names_folder
from namestudio.engine import experiment as ex
from namestudio.engine import runfolder as rf
from namestudio.engine.config import TrainConfig, apply_recipe

TINY = ["--embed", "8", "--hidden", "16", "--batch-size", "16", "--threads", "1", "--device", "cpu", "--log-every", "2"]


@pytest.fixture(scope="module")
def names(tmp_path_factory):
    return str(write_names_folder(tmp_path_factory.mktemp("tiny") / "names"))


def cli(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "namestudio.tui.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def compared(names, tmp_path_factory):
    """One real compare: two models, two epochs, two at a time, with --json."""
    ck = tmp_path_factory.mktemp("ck")
    r = cli("compare", "--data", names, "--models", "rnn,gru", "--epochs", "2", *TINY, "--parallel", "2",
            "--checkpoints", str(ck), "--json")
    assert r.returncode == 0, r.stderr
    return ck, json.loads(r.stdout.strip().splitlines()[-1]), r


def test_compare_trains_every_run_and_prints_the_json(compared):
    ck, out, proc = compared
    assert set(out) == {"experiment", "state", "report", "runs"} and out["report"] is None and out["state"] == "done"
    exp = Path(out["experiment"])
    assert exp.parent == ck and (exp / ex.EXPERIMENT).is_file()
    assert [r["model"] for r in out["runs"]] == ["rnn", "gru"]
    for r in out["runs"]:
        assert set(r) == {"label", "model", "run", "state", "error", "params", "train_seconds", "names_per_s",
                          "test_accuracy", "test_balanced_accuracy", "test_macro_f1"}
        assert r["label"] == r["model"] and r["state"] == "done" and r["error"] is None
        run = Path(r["run"])
        assert run.parent == exp
        st = rf.read_status(run)
        assert st.state == "done" and st.pid and not st.live         # a child process trained it, and ended
        test = rf.read_json(run / rf.TEST)
        assert r["test_accuracy"] == test["test"]["accuracy"] and 0 <= r["test_accuracy"] <= 1
        assert r["params"] == rf.read_json(run / rf.CONFIG)["n_params"] > 0
        assert r["train_seconds"] > 0 and r["names_per_s"] > 0
        assert rf.read_json(run / rf.CONFIG)["train"]["model"] == r["model"]
    # one data source, one split, one seed: the runs' splits are identical
    splits = [rf.read_json(Path(r["run"]) / rf.SPLIT) for r in out["runs"]]
    assert splits[0] == splits[1]
    doc = ex.read_experiment(exp)
    assert doc["state"] == "done" and not doc["live"] and [r["state"] for r in doc["runs"]] == ["done", "done"]
    # the "done" line's validation figure is that of the model the run keeps, as `runs` lists it
    said = dict(line.split(": done · val acc ") for line in (proc.stdout + proc.stderr).splitlines() if ": done · val acc " in line)
    listed = {row["run"]: row["best_val_accuracy"] for row in rf.list_runs(exp)}
    assert said and all(float(said[k]) == round(listed[k], 3) for k in said), (said, listed)


def test_compares_table_keeps_every_run_name_and_header_whole_in_80_columns(names, tmp_path):
    """A grid's runs differ only at the end of their names: the table cut rnn-hidden=16 and rnn-hidden=24 both to
    "rnn-hid…", and the header to "macro-…". Names and headers are whole now, and the table fits 80 columns."""
    env = {**os.environ, "COLUMNS": "80"}
    r = subprocess.run([sys.executable, "-m", "namestudio.tui.cli", "compare", "--data", names, "--models", "rnn",
                        "--set", "hidden=16,24", "--epochs", "1", "--max-steps", "2", "--checkpoints",
                        str(tmp_path / "ck")], capture_output=True, text=True, timeout=180, env=env)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    head = next(line for line in lines if line.lstrip().startswith("run "))
    assert head.split() == ["run", "state", "params", "train", "s", "names/s", "test", "acc", "bal", "acc", "macro-F1"]
    rows = [line.split()[0] for line in lines[lines.index(head):] if line.lstrip().startswith("rnn-")]
    assert rows == ["rnn-hidden=16", "rnn-hidden=24"], r.stdout
    assert all(len(line) <= 80 for line in lines[lines.index(head):]), r.stdout
    # names too long for 80 columns: Rich dropped whole columns (state, bal acc, macro-F1) to fit; now every column
    # is there, on lines as wide as they need
    r = subprocess.run([sys.executable, "-m", "namestudio.tui.cli", "compare", "--data", names, "--models", "rnn",
                        "--set", "hidden=16,24", "--set", "batch_size=64", "--set", "log_every=3", "--set", "eval_every=2",
                        "--epochs", "1", "--max-steps", "2", "--checkpoints", str(tmp_path / "ck2")],
                       capture_output=True, text=True, timeout=180, env=env)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    head = next(line for line in lines if line.lstrip().startswith("run "))
    assert head.split() == ["run", "state", "params", "train", "s", "names/s", "test", "acc", "bal", "acc", "macro-F1"]
    rows = [line.split() for line in lines[lines.index(head):] if line.lstrip().startswith("rnn-")]
    assert [row[:2] for row in rows] == [["rnn-hidden=16-batch_size=64-log_every=3-eval_every=2", "done"],
                                         ["rnn-hidden=24-batch_size=64-log_every=3-eval_every=2", "done"]], r.stdout
    assert all(len(row) == 8 for row in rows), r.stdout


def test_runs_lists_an_experiments_runs_by_a_name_every_command_takes(compared):
    ck, out, _ = compared
    exp = Path(out["experiment"])
    r = cli("runs", "--checkpoints", str(ck), "--json")
    assert r.returncode == 0, r.stderr
    rows = {row["run"]: row for row in json.loads(r.stdout.strip().splitlines()[-1])["runs"]}
    assert {f"{exp.name}/rnn", f"{exp.name}/gru"} <= set(rows) and rows[f"{exp.name}/rnn"]["state"] == "done"
    r = cli("eval", f"{exp.name}/gru", "--checkpoints", str(ck), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["run"] == f"{exp.name}/gru"     # named as it was asked for
    (ck.parent / "a-file").write_text("x")
    r = cli("runs", "--checkpoints", str(ck.parent / "a-file"))
    assert r.returncode == 2 and "is a file" in r.stderr and r.stderr.count("\n") == 1


def test_export_keeps_an_experiments_runs_apart_from_another_experiments(compared, tmp_path):
    ck, out, _ = compared
    exp = Path(out["experiment"])
    r = cli("export", str(exp), "--tensorboard", str(tmp_path / "tb"), "--json")
    assert r.returncode == 0, r.stderr
    files = [Path(f) for f in json.loads(r.stdout.strip().splitlines()[-1])["files"]]
    assert sorted(f.parent.relative_to(tmp_path / "tb").as_posix() for f in files) == [f"{exp.name}/gru",
                                                                                        f"{exp.name}/rnn"]


def test_resume_keeps_done_runs(compared):
    ck, out, _ = compared
    exp = Path(out["experiment"])
    before = {r["run"]: (Path(r["run"]) / rf.TEST).stat().st_mtime_ns for r in out["runs"]}
    r = cli("compare", "--resume", exp.name, "--checkpoints", str(ck), "--json")
    assert r.returncode == 0, r.stderr
    again = json.loads(r.stdout.strip().splitlines()[-1])
    assert [x["test_accuracy"] for x in again["runs"]] == [x["test_accuracy"] for x in out["runs"]]
    assert {k: (Path(k) / rf.TEST).stat().st_mtime_ns for k in before} == before   # nothing retrained
    r = cli("compare", "--resume", exp.name, "--checkpoints", str(ck), "--threads", "1")   # a setting: refused, and
    assert r.returncode == 1 and "drop --threads (only --parallel, --nice, --report and --names may be given" \
        in r.stderr, r.stderr                                                  # what may be given is said


def test_view_data_for_the_tui(compared):
    _, out, _ = compared
    exp = Path(out["experiment"])
    runs = ex.run_dirs(exp)
    rows = ex.results_rows(runs)
    assert [r["label"] for r in rows] == ["rnn", "gru"] and rows[0]["epochs_to_best"] is not None
    loss = ex.series(runs[0][1], "loss", "step")
    assert loss and all(b[0] > a[0] for a, b in zip(loss, loss[1:]))
    acc = ex.series(runs[0][1], "val_accuracy", "elapsed")
    assert len(acc) == 2 and all(0 <= y <= 1 for _, y in acc)
    smooth = ex.series(runs[0][1], "loss", "step", smoothing=0.9)
    assert smooth[0] == loss[0] and len(smooth) == len(loss)
    cm = ex.confusion(runs[0][1])
    assert cm["split"] == "test" and len(cm["matrix"]) == len(cm["labels"]) == 3
    diff = ex.confusion_difference(cm, ex.confusion(runs[1][1]))
    assert all(abs(sum(row)) < 1e-9 for row in diff["matrix"])         # rows of two normalised matrices
    top = ex.topk_table(runs, ["Kalov", "Mcvi"], 3)
    assert len(top) == 4 and all(len(t["top"]) == 3 and t["error"] is None for t in top)
    s = ex.settings(runs)
    assert s.varying == {"model": {"rnn": "rnn", "gru": "gru"}} and s.common["hidden"] == 16
    assert [e["id"] for e in ex.list_experiments(exp.parent)] == [exp.name]


def test_grid_over_settings(names, tmp_path):
    grid = ex.parse_grid(["hidden=8,12", "lr=0.01"])
    assert grid == {"hidden": [8, 12], "lr": [0.01]}
    with pytest.raises(ex.ExperimentError, match=r"^--set model: the models to compare are listed with --models"):
        ex.parse_grid(["model=rnn,gru"])      # (was: "every run shares one task, data source and split")
    with pytest.raises(ex.ExperimentError, match="--set task: every run of an experiment shares one task"):
        ex.parse_grid(["task=generate"])
    runs = ex.plan_runs({"data": names, "epochs": 1}, ["rnn", "lstm"], grid)
    assert [r["label"] for r in runs] == ["rnn-hidden=8-lr=0.01", "rnn-hidden=12-lr=0.01",
                                          "lstm-hidden=8-lr=0.01", "lstm-hidden=12-lr=0.01"]
    assert [r["config"]["hidden"] for r in runs] == [8, 12, 8, 12]
    close = ex.plan_runs({"data": names, "epochs": 1}, ["rnn"], {"lr": [0.005, 0.005000001], "dropout": [0.0, 1e-05]})
    assert [r["label"] for r in close] == ["rnn-lr=0.005-dropout=0", "rnn-lr=0.005-dropout=1e-05",   # each its own
                                           "rnn-lr=0.005000001-dropout=0", "rnn-lr=0.005000001-dropout=1e-05"]
    with pytest.raises(ex.ExperimentError, match="two runs would both be named rnn-lr=0.01 "):
        ex.plan_runs({"data": names, "epochs": 1}, ["rnn", "rnn"], {"lr": [0.01]})   # one folder, two trainers
    # what `train` refuses for the task, --set refuses (generators were trained alike under labels that differed)
    for key, values, said in (("bidirectional", [True, False], "--set bidirectional=true: bidirectional is for "
                               "classifiers only; this experiment trains generators (--task generate)"),
                              ("class_weighting", [1.0], "--set class_weighting=1: class_weighting is for classifiers")):
        with pytest.raises(ex.ExperimentError, match=re.escape(said)):
            ex.plan_runs({"data": names, "epochs": 1, "task": "generate"}, ["gru"], {key: values})
    assert len(ex.plan_runs({"data": names, "epochs": 1, "task": "generate"}, ["gru"], {"bidirectional": [False]})) == 1
    with pytest.raises(ex.ExperimentError, match="label_init is for generators only; this experiment trains classifiers"):
        ex.plan_runs({"data": names, "epochs": 1}, ["gru"], {"label_init": [True, False]})
    r = cli("compare", "--data", names, "--models", "rnn", "--set", "hidden=8,12", "--max-steps", "3", *TINY[4:],
            "--checkpoints", str(tmp_path), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert [rf.read_json(Path(x["run"]) / rf.CONFIG)["train"]["hidden"] for x in out["runs"]] == [8, 12]


@pytest.mark.parametrize("argv, words", [
    (["--set", "hidden=0,8"], "--hidden must be"),
    (["--set", "hiden=8"], "no such setting"),
    (["--set", "data=x,y"], "share"),
    (["--set", "hidden"], "KEY=V1,V2"),
    (["--set", "lr=fast"], "'fast' is not a number"),
    (["--set", "hidden=abc"], "'abc' is not a whole number"),
    (["--models", "lstm,cnn"], "unknown model 'cnn'"),
    (["--model", "lstm"], "--models"),
    (["--parallel", "0"], "--parallel"),
    (["--resume", "nope"], "no experiment"),
    (["--set", "hidden=64", "--hidden", "128"], "--hidden and --set hidden=… are both given"),   # one was dropped
    (["--set", "max-steps=3", "--max-steps", "2"], "--max-steps and --set max-steps=… are both given"),
])
def test_bad_command_lines_are_one_line_errors(argv, words, tmp_path):
    r = cli("compare", *argv, "--checkpoints", str(tmp_path))
    assert r.returncode == 1 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not list(tmp_path.glob("exp-*"))                # nothing created for a bad command line


def test_ctrl_c_stops_every_child_and_resume_finishes(names, tmp_path):
    p = subprocess.Popen([sys.executable, "-m", "namestudio.tui.cli", "compare", "--data", names, "--models",
                          "rnn,lstm", "--epochs", "400", "--eval-every", "5", "--patience", "0", *TINY, "--parallel", "2",
                          "--checkpoints", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        end = time.time() + 90
        while time.time() < end:                       # both runs have logged steps: they are training
            exps = list(tmp_path.glob("exp-*"))
            if exps and all(any(rf.read_jsonl(d / rf.METRICS)) for d in (exps[0] / "rnn", exps[0] / "lstm")):
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the runs did not start")
        exp = exps[0]
        pids = [rf.read_status(exp / m).pid for m in ("rnn", "lstm")]
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130 and "--resume" in out + err
    for pid in pids:
        assert not rf.pid_alive(pid)                   # no child left behind
    doc = ex.read_experiment(exp)
    assert doc["state"] == "stopped" and [r["state"] for r in doc["runs"]] == ["stopped", "stopped"]
    said = ex.compare_json(exp)           # --json says so too (its figures were a stopped run's, with no word)
    assert said["state"] == "stopped" and [(r["label"], r["state"]) for r in said["runs"]] == [
        ("rnn", "stopped"), ("lstm", "stopped")]
    for m in ("rnn", "lstm"):
        assert rf.read_status(exp / m).reason == "stopped" and rf.resume_dir(exp / m) is not None
    # resumed with fewer epochs left to go: --max-steps is not an experiment setting, so shrink via the config
    doc = rf.read_json(exp / ex.EXPERIMENT)
    step = max(rf.read_status(exp / m).step for m in ("rnn", "lstm"))
    for m in ("rnn", "lstm"):                          # make the resumed runs end soon: lower their epochs
        cfg = rf.read_json(exp / m / rf.CONFIG)
        cfg["train"]["epochs"] = step // 6 + 2         # 96 training names / batch 16 = 6 steps an epoch
        rf.atomic_write_json(exp / m / rf.CONFIG, cfg)
    r = cli("compare", "--resume", str(exp), "--json")
    assert r.returncode == 0, r.stderr
    doc = ex.read_experiment(exp)
    assert doc["state"] == "done" and all(x["state"] == "done" for x in doc["runs"])
    for m in ("rnn", "lstm"):
        steps = [s["step"] for s in rf.read_jsonl(exp / m / rf.STEPS)]
        assert steps == sorted(set(steps))             # resumed, not restarted: no step twice, none lost
        assert steps[-1] > 0 and "--resume" in (exp / m / rf.LOG).read_text()


def test_tutorial_recipe_is_config_choices():
    c = TrainConfig(**apply_recipe({"recipe": "tutorial"}))
    assert (c.embed, c.batch_size, c.optimizer, c.lr, c.schedule, c.clip, c.bidirectional) == \
        (0, 1, "sgd", 0.005, "none", 0.0, False)
    assert TrainConfig(**apply_recipe({"recipe": "tutorial", "batch_size": 8})).batch_size == 8   # given wins
    g = TrainConfig(**apply_recipe({"recipe": "tutorial", "task": "generate"}))
    assert (g.model, g.embed, g.label_init, g.dropout) == ("rnn", 0, False, 0.1)
    assert TrainConfig(**apply_recipe({})) == TrainConfig()
    from namestudio.engine.config import ConfigError
    with pytest.raises(ConfigError, match="--model rnn"):
        TrainConfig(**apply_recipe({"recipe": "tutorial", "task": "generate", "model": "gru"})).validate()


def test_tutorial_generator_trains_through_the_one_loop_and_samples(names, tmp_path):
    import torch

    from namestudio.engine.infer import load_run
    from namestudio.engine.models import TutorialGenerator, build_model
    m = build_model("generate", "rnn", 10, 3, embed=0, hidden=6, layers=1, bidirectional=False, dropout=0.1,
                    recipe="tutorial")
    assert isinstance(m, TutorialGenerator) and {"i2h.weight", "i2o.weight", "o2o.weight"} <= set(m.state_dict())
    m.eval()
    ids, labels = torch.tensor([[1, 4, 5, 6]]), torch.tensor([2])
    full, _ = m(ids, labels)
    _, h = m(ids[:, :2], labels)
    rest, _ = m(ids[:, 2:], labels, state=h)           # stepping with the state = running the whole name
    assert torch.allclose(full[:, 2:], rest, atol=1e-6)
    r = cli("train", "--recipe", "tutorial", "--task", "generate", "--data", names, "--max-steps", "30",
            "--threads", "1", "--checkpoints", str(tmp_path), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    cfg = rf.read_json(Path(out["run_dir"]) / rf.CONFIG)["train"]
    assert (cfg["recipe"], cfg["optimizer"], cfg["batch_size"], cfg["embed"]) == ("tutorial", "sgd", 1, 0)
    run = load_run(out["run_dir"])
    assert isinstance(run.model, TutorialGenerator)
    table = ex.samples_table(out["run_dir"], 0.8, "KMQ")   # no name of the fixture has a Q
    assert table["letters"] == ["K", "M"] and "Q" in table["notes"][0]
    assert len(table["rows"]) == 3 and all(r["samples"]["K"][0].startswith("K") for r in table["rows"])


def test_launch_compare_and_stop_it_as_the_tui_would(names, tmp_path):
    base = {"data": names, "epochs": 400, "eval_every": 5, "patience": 0, "embed": 8, "hidden": 16,
            "batch_size": 16, "threads": 1, "device": "cpu", "log_every": 2}
    exp, popen = ex.launch_compare(tmp_path, base, ["rnn"], parallel=1)
    try:
        assert ex.read_experiment(exp)["runs"][0]["state"] in ("pending", "running")   # followable at once
        end = time.time() + 90
        while time.time() < end and not rf.read_jsonl(exp / "rnn" / rf.STEPS):
            time.sleep(0.2)
        doc = ex.read_experiment(exp)
        assert doc["live"] and doc["state"] == "running" and doc["pid"] == popen.pid
        ex.stop_experiment(exp)
        assert popen.wait(60) == 130
    finally:
        if popen.poll() is None:
            popen.kill()
            popen.wait()
    doc = ex.read_experiment(exp)
    assert doc["state"] == "stopped" and not doc["live"] and doc["runs"][0]["state"] == "stopped"
    with pytest.raises(ex.ExperimentError, match="not running"):
        ex.stop_experiment(exp)
    # the stopped trainer's hint names a folder `train --resume` finds from here (it said `--resume rnn`)
    import re
    import shlex
    hint = re.search(r"stopped: `namestudio train --resume (.+)` continues it", (exp / "rnn" / rf.LOG).read_text())
    assert hint and rf.resolve_run(shlex.split(hint.group(1))[0]).resolve() == (exp / "rnn").resolve()


def test_curve_points_redraws_curves_read_once(tmp_path):
    """curve_points: the same points as series, from curves already read (any x-axis, any smoothing)."""
    from namestudio.engine.smoothing import ema

    run = tmp_path / "run"
    run.mkdir()
    for i, loss in enumerate([2.0, 1.0, 1.5, 0.5]):
        rf.append_jsonl(run / rf.STEPS, {"step": 10 * (i + 1), "epoch": 0.5 * (i + 1), "elapsed": 1.5 * (i + 1),
                                         "loss": loss, "lr": 0.01, "names_per_s": 100.0})
    rf.append_jsonl(run / rf.METRICS, {"step": 20, "epoch": 1.0, "elapsed": 3.0, "train_loss": 1.5,
                                       "val": {"accuracy": 0.5, "loss": 1.2}, "best": True})
    rf.append_jsonl(run / rf.STEPS, {"step": 50, "epoch": 2.5, "loss": "nan?"})       # not a number: left out
    c = ex.curves(run)
    for x in ex.X_AXES:
        for y in ("loss", "val_accuracy", "train_loss"):
            for w in (0.0, 0.6):
                assert ex.curve_points(c, y, x, w) == ex.series(run, y, x, w)
    assert [p[0] for p in ex.curve_points(c, "loss", "elapsed")] == [1.5, 3.0, 4.5, 6.0]
    assert [p[1] for p in ex.curve_points(c, "loss", "step", 0.8)] == ema([2.0, 1.0, 1.5, 0.5], 0.8)
    assert ex.curve_points(c, "val_accuracy", "epoch") == [(1.0, 0.5)]
    assert ex.curve_points({}, "loss", "step") == []
    with pytest.raises(ValueError, match="step, epoch or elapsed"):
        ex.curve_points(c, "loss", "wall")


def _orphan(names, tmp_path):
    """A `compare` killed (kill -9) while its one run trains: (experiment folder, run folder, its status)."""
    p = subprocess.Popen([sys.executable, "-m", "namestudio.tui.cli", "compare", "--data", names, "--models", "gru",
                          "--epochs", "300", "--eval-every", "5", "--patience", "0", *TINY,
                          "--checkpoints", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        end = time.time() + 90
        while time.time() < end:
            exps = list(tmp_path.glob("exp-*"))
            if exps and (exps[0] / "gru" / rf.METRICS).is_file() and rf.read_jsonl(exps[0] / "gru" / rf.METRICS):
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the run did not start")
    finally:
        p.kill()
        p.wait()
    st = rf.read_status(exps[0] / "gru")
    assert st.live, "the run ended before its controller was killed: give it more epochs"
    return exps[0], exps[0] / "gru", st


def test_resume_follows_a_run_its_dead_controller_left_training(names, tmp_path):
    """`compare` killed (kill -9): its children train on (each in its own session). `compare --resume` waits for
    such a run through its run folder, as for its own children, instead of refusing it or training it twice."""
    exp, run, st = _orphan(names, tmp_path)
    try:
        r = cli("compare", "--resume", str(exp), "--json")
    finally:
        if rf.pid_alive(st.pid):
            os.kill(st.pid, signal.SIGKILL)
    assert r.returncode == 0, r.stderr
    assert rf.read_status(run).state == "done"   # it ended its own run: status done, then the process exits
    doc = ex.read_experiment(exp)
    assert doc["state"] == "done" and doc["runs"][0]["state"] == "done" and doc["runs"][0]["attempts"] == 1
    assert "--resume" not in (run / rf.LOG).read_text()           # followed, never started again
    assert json.loads(r.stdout.strip().splitlines()[-1])["runs"][0]["test_accuracy"] is not None


def test_stop_exp_stops_the_runs_its_dead_controller_left_training(names, tmp_path):
    exp, run, st = _orphan(names, tmp_path)
    try:
        r = cli("stop", exp.name, "--checkpoints", str(tmp_path))
        assert r.returncode == 0 and "its 1 live run (its compare is gone)" in r.stdout, r.stderr
        end = time.time() + 60
        while rf.read_status(run).live and time.time() < end:
            time.sleep(0.2)
    finally:
        if rf.pid_alive(st.pid) and rf.read_status(run).live:
            os.kill(st.pid, signal.SIGKILL)
    assert rf.read_status(run).state == "stopped" and rf.resume_dir(run) is not None   # stopped cleanly


def test_a_run_stopped_as_it_started_is_stopped_and_a_silent_failure_says_how_it_ended(names, tmp_path):
    exp = ex.new_experiment(tmp_path, {"data": names, "epochs": 1}, ["gru", "rnn"], {}, 1)
    ctl = ex.Controller(exp)
    for label in ("gru", "rnn"):
        (exp / label).mkdir(exist_ok=True)
        (exp / label / rf.LOG).write_text("$ -m namestudio.tui.cli train --model gru\n")   # all the launcher wrote
    ctl.launched["gru"] = time.time()       # ... with its "starting" status (the launcher's), read stale after
    rf.write_status(exp / "gru", rf.RunStatus(state="starting", pid=dead_pid(), host=rf.HOST, started=time.time()))
    ctl.stopping = True                     # Ctrl-C while the child was still importing torch: SIGTERM killed it
    ctl._ended("gru", -signal.SIGTERM)
    gru = ctl._entry("gru")
    assert gru["state"] == "stopped" and gru["error"] is None
    assert rf.read_status(exp / "gru").state == rf.STOPPED   # the run folder says so too (`runs` read it stale)
    ctl.stopping = False
    ctl._ended("rnn", 1)                    # died before it said why: how it ended, never the launch command
    rnn = ctl._entry("rnn")
    assert rnn["state"] == "failed" and rnn["error"] == "the trainer exited with code 1 before it wrote a word"


def test_a_run_named_by_its_own_name_alone_is_found_in_its_experiment_and_stop_takes_an_experiment(compared, tmp_path):
    ck, out, _ = compared
    exp = Path(out["experiment"])
    assert rf.resolve_run("gru", ck) == exp / "gru"          # one experiment holds a gru: that is the run meant
    other = tmp_path / "ck2"
    for e in ("exp-1", "exp-2"):
        (other / e / "gru").mkdir(parents=True)
        rf.atomic_write_json(other / e / "gru" / rf.CONFIG, {"format": 2, "train": {}})
    with pytest.raises(rf.RunFolderError, match=r"'gru' is ambiguous: exp-2/gru, exp-1/gru; give EXP/RUN"):
        rf.resolve_run("gru", other)
    # EXP/RUN takes a unique piece of the experiment's id, as `stop EXP` does (was: the whole id only)
    assert rf.resolve_run("p-2/gru", other) == other / "exp-2" / "gru"
    assert rf.resolve_run(f"{exp.name[:-9]}/gru", ck) == exp / "gru"   # without its -classify tail
    with pytest.raises(rf.RunFolderError, match=r"'exp/gru' is ambiguous: exp-2/gru, exp-1/gru"):
        rf.resolve_run("exp/gru", other)
    with pytest.raises(rf.RunFolderError, match="no run 'exp-3/gru'"):
        rf.resolve_run("exp-3/gru", other)
    # an experiment's id where a run is asked for (`eval EXP`): said, with the EXP/RUN it takes (was: "no run")
    with pytest.raises(rf.RunFolderError, match=r"'p-2' is an experiment \(exp-2\), not a run: give EXP/RUN, "
                                                r"e.g. exp-2/gru"):
        rf.resolve_run("p-2", other)
    with pytest.raises(rf.NotARun, match=r"is a folder of runs, not a run: give one of its runs, "
                                          r"e.g. .*exp-2/gru"):          # its path (was: "no run …")
        rf.resolve_run(str(other / "exp-2"), other)
    # a run of its own whose id also holds the piece: ambiguous, named both (it silently took the piece)
    (other / "20260101-000000-classify-gru").mkdir()
    rf.atomic_write_json(other / "20260101-000000-classify-gru" / rf.CONFIG, {"format": 2, "train": {}})
    with pytest.raises(rf.RunFolderError, match=r"'gru' is ambiguous: 20260101-000000-classify-gru, exp-2/gru, "
                                                r"exp-1/gru; give more of the id, or EXP/RUN"):
        rf.resolve_run("gru", other)
    assert rf.resolve_run("classify-gru", other) == other / "20260101-000000-classify-gru"
    (other / "exp-20260101").mkdir()                          # an experiment whose id holds the piece too
    (other / "exp-20260101" / ex.EXPERIMENT).write_text('{"runs": []}')
    with pytest.raises(ex.ExperimentError, match=r"'0101' names both run 20260101-000000-classify-gru and "
                                                 r"experiment exp-20260101; give more of the id"):
        ex.collect_runs(["0101"], other)
    (other / "exp-20260101-b").mkdir()                        # two experiments hold it: as ambiguous (it took the run)
    (other / "exp-20260101-b" / ex.EXPERIMENT).write_text('{"runs": []}')
    with pytest.raises(ex.ExperimentError, match=r"'0101' names both run 20260101-000000-classify-gru and "
                                                 r"experiments exp-20260101, exp-20260101-b; give more of the id"):
        ex.collect_runs(["0101"], other)
    with pytest.raises(ex.ExperimentError, match=r"experiment 'p-2026' is ambiguous: exp-20260101, exp-20260101-b"):
        ex.collect_runs(["p-2026"], other)                   # no run holds it: the experiments' ambiguity
    shutil.rmtree(other / "exp-20260101-b")
    # ... where stop/pause/resume take the one run it names ("any unique part of the run id": a run's date is in
    # a same-day experiment's id too)
    r = cli("pause", "0101", "--checkpoints", str(other))
    assert "names both" not in r.stderr and "20260101-000000-classify-gru" in r.stdout + r.stderr, r.stderr
    # stop/pause/resume read an id as report does: a piece ambiguous among runs is never taken for the one
    # experiment whose id holds it too (`stop 2026` stopped an experiment where two runs' ids held 2026)
    (other / "20260101-000001-classify-lstm").mkdir()
    rf.atomic_write_json(other / "20260101-000001-classify-lstm" / rf.CONFIG, {"format": 2, "train": {}})
    r = cli("stop", "0101", "--checkpoints", str(other))
    assert r.returncode == 1 and "'0101' names both runs and experiment exp-20260101; give more of the id" in \
        r.stderr, r.stderr
    r = cli("stop", "classify", "--checkpoints", str(other))    # no experiment holds it: the runs' ambiguity
    assert r.returncode == 1 and "run 'classify' is ambiguous: 20260101-000000-classify-gru, " in r.stderr, r.stderr
    assert not list(other.rglob(rf.CONTROL))
    r = cli("pause", exp.name, "--checkpoints", str(ck))
    assert r.returncode == 1 and f"{exp.name} is an experiment: pause its runs one by one" in r.stderr
    r = cli("stop", exp.name, "--checkpoints", str(ck))        # it ended long ago: nothing to stop
    assert r.returncode == 1 and "is not running here (it is done)" in r.stderr
    r = cli("pause", f"{exp.name}/gru", "--checkpoints", str(ck))     # its run, by the name that finds it (was:
    assert r.returncode == 1 and f"run {exp.name}/gru is not running: it is done" in r.stderr, r.stderr  # "run gru")


def test_a_runs_kept_validation_figure_is_the_same_in_results_rows_and_runs(compared):
    """The Compare legend's "best" reads results_row's val_kept: with an n-gram blend, the blend's validation
    figure, as `runs` and the Runs pane show it (was: the network's best alone, a different number)."""
    ck, out, _ = compared
    exp = Path(out["experiment"])
    listed = {r["path"]: r for r in rf.list_runs(exp)}
    blended = 0
    for r in out["runs"]:
        row = ex.results_row(Path(r["run"]))
        if row["n_gram"]:
            blended += 1
            assert row["val_kept"] == listed[r["run"]]["best_val_accuracy"]
        else:
            assert row["val_kept"] is None
    assert blended, "no run of the fixture chose a blend: this test checks nothing"


def test_a_run_whose_trainer_vanished_says_so_and_how_to_resume(names, tmp_path):
    exp = ex.new_experiment(tmp_path, {"data": names, "epochs": 1}, ["gru"], {}, 1)
    ctl = ex.Controller(exp)
    (exp / "gru").mkdir(exist_ok=True)
    (exp / "gru" / rf.LOG).write_text("epoch  1.00 step   1396 · train loss 1.319 · val accuracy 0.678\n")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    rf.write_status(exp / "gru", rf.RunStatus(state="running", pid=dead.pid, host=rf.HOST, heartbeat=time.time(),
                                              step=1396))
    ctl._ended("gru", 0)                    # a followed run polls 0 once its status is no longer live
    gru = ctl._entry("gru")
    assert gru["state"] == "failed"
    assert gru["error"].startswith(f"its trainer (pid {dead.pid}) is gone (killed?) at step 1,396")
    assert f"compare --resume {rf.as_arg(exp)}" in gru["error"] and "train loss" not in gru["error"]


def test_a_vanished_run_with_a_resume_point_says_the_step_it_resumes_from(names, tmp_path):
    """Its last heartbeat said step 1,396, before its resume point at 1,400 (killed just after it was saved): the
    error said "gone at step 1,396"; it says the step `compare --resume` goes on from."""
    import torch
    exp = ex.new_experiment(tmp_path, {"data": names, "epochs": 1}, ["gru"], {}, 1)
    ctl = ex.Controller(exp)
    (exp / "gru").mkdir(exist_ok=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    rf.write_status(exp / "gru", rf.RunStatus(state="running", pid=dead.pid, host=rf.HOST, heartbeat=time.time(),
                                              step=1396))
    rf.save_resume_point(exp / "gru", 1400, {"w": torch.ones(1)}, {"optimizer": {}}, {"best": None}, epoch=1.0)
    ctl._ended("gru", 0)
    gru = ctl._entry("gru")
    assert gru["error"] == (f"its trainer (pid {dead.pid}) is gone (killed?); `namestudio compare --resume "
                            f"{rf.as_arg(exp)}` resumes it from step 1,400")


def test_a_paused_run_of_an_experiment_shows_as_paused(names, tmp_path):
    exp = ex.new_experiment(tmp_path, {"data": names, "epochs": 1}, ["gru"], {}, 1)
    ctl = ex.Controller(exp)
    (exp / "gru").mkdir(exist_ok=True)
    rf.write_status(exp / "gru", rf.RunStatus(state="paused", pid=os.getpid(), host=rf.HOST, heartbeat=time.time(),
                                              step=7, total_steps=20))
    ctl.active["gru"] = ex._Followed(exp / "gru", os.getpid())
    ctl._refresh()
    assert ctl.views["gru"].state == "paused" and ctl.views["gru"].step == 7


def test_stopping_a_followed_run_signals_its_trainer_alone_and_only_while_it_is_live(tmp_path):
    """A trainer started by hand in a shell leads its job's process group (`namestudio train … | tee log`): a stop
    must not reach the rest of the pipeline; and a run that is no longer live gets no signal (its pid may be
    another process's by now)."""
    run = tmp_path / "gru"
    run.mkdir()
    p = subprocess.Popen(["sleep", "30"], preexec_fn=os.setpgrp)                     # the trainer, leading its group
    q = subprocess.Popen(["sleep", "30"], preexec_fn=lambda: os.setpgid(0, p.pid))   # `tee`, in the same job
    try:
        rf.write_status(run, rf.RunStatus(state="stopped", pid=p.pid, host=rf.HOST))
        ex._Followed(run, p.pid).signal(signal.SIGTERM)                 # not live: nothing is signalled
        time.sleep(0.2)
        assert p.poll() is None
        rf.write_status(run, rf.RunStatus(state="running", pid=p.pid, host=rf.HOST, heartbeat=time.time()))
        ex._Followed(run, p.pid).signal(signal.SIGTERM)
        assert p.wait(5) == -signal.SIGTERM
        time.sleep(0.2)
        assert q.poll() is None                                         # the rest of the pipeline lives on
    finally:
        for x in (p, q):
            if x.poll() is None:
                x.kill()
                x.wait()


def test_a_live_run_reports_no_test_figures_of_an_earlier_end(tmp_path):
    """A run resumed after a stop kept its earlier test_metrics.json until it ends again: the report showed those
    figures, train time and confusion matrix as the run's while other weights were training."""
    import os
    d = tmp_path / "rnn"
    d.mkdir()
    rf.atomic_write_json(d / rf.CONFIG, {"format": 2, "train": {"task": "classify", "model": "rnn"},
                                         "labels": ["A", "B"], "n_params": 10})
    rf.atomic_write_json(d / rf.TEST, {"test": {"accuracy": 0.9, "macro_f1": 0.8, "confusion": [[1, 0], [0, 1]]},
                                       "train_seconds": 12.0, "reason": "stopped"})
    rf.append_jsonl(d / rf.METRICS, {"step": 5, "best": True, "val": {"accuracy": 0.5}, "confusion": [[1, 1], [1, 1]]})
    rf.write_status(d, rf.RunStatus(state="stopped", pid=os.getpid(), host=rf.HOST))
    ended = ex.results_row(d)
    assert (ended["test_accuracy"], ended["train_seconds"], ex.confusion(d)["split"]) == (0.9, 12.0, "test")
    rf.write_status(d, rf.RunStatus(state="running", pid=os.getpid(), host=rf.HOST, heartbeat=time.time()))
    with rf.RunLock(d):                                       # resumed: its trainer (this process) holds the lock
        live = ex.results_row(d)
        assert live["state"] == "running"
        assert live["test_accuracy"] is None and live["train_seconds"] is None
        assert ex.confusion(d) == {"labels": ["A", "B"], "matrix": [[1, 1], [1, 1]], "split": "val"}


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_resume_that_dies_before_its_trainer_writes_is_failed_not_the_earlier_ends_cancelled(tmp_path):
    """`compare --resume` of a stopped run whose trainer failed at once (a damaged config): the run folder still
    held the earlier stop's status, so the run read "stopped", the experiment exit 130 and said to resume,
    which failed the same way every time."""
    exp = tmp_path / "exp-1"
    (exp / "rnn").mkdir(parents=True)
    rf.atomic_write_json(exp / ex.EXPERIMENT, {"task": "classify", "runs": [{"dir": "rnn", "model": "rnn",
                                                                           "state": "stopped", "config": {}}]})
    rf.write_status(exp / "rnn", rf.RunStatus(state="stopped", pid=dead_pid(), host=rf.HOST,
                                              started=time.time() - 600))
    (exp / "rnn" / rf.LOG).write_text("namestudio: error: rnn/config.json: --epochs must be ≥ 1 (got -1)\n")
    c = ex.Controller(exp)
    c.launched["rnn"] = time.time()                          # this controller started a child just now ...
    c._ended("rnn", 1)                                       # ... which exited 1 without a status of its own
    entry = ex._read_doc(exp)["runs"][0]
    assert entry["state"] == "failed" and "--epochs must be" in entry["error"]
    rf.write_status(exp / "rnn", rf.RunStatus(state="stopped", pid=dead_pid(), host=rf.HOST,
                                              started=time.time()))
    c._ended("rnn", 0)                                       # a child that did write its own end: that end
    assert ex._read_doc(exp)["runs"][0]["state"] == "stopped"


def test_a_stop_while_a_run_is_being_started_stops_that_run_too(tmp_path, monkeypatch):
    """A Ctrl-C between a child's launch and its entry in the controller's table was lost: that run trained on."""
    from types import SimpleNamespace
    exp = tmp_path / "exp-1"
    (exp / "rnn").mkdir(parents=True)
    rf.atomic_write_json(exp / ex.EXPERIMENT, {"task": "classify", "runs": [{"dir": "rnn", "model": "rnn",
                                                                           "state": "stopped", "config": {}}]})
    c = ex.Controller(exp)
    children = []

    def launch(run_dir, nice=10, check=True):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
        children.append(child)
        c.stop()                                             # the signal handler runs now, before _start goes on
        return SimpleNamespace(popen=child)
    monkeypatch.setattr(ex, "launch_resume", launch)
    c._start(ex._read_doc(exp)["runs"][0], "resume")
    try:
        assert children[0].wait(timeout=20) == -signal.SIGTERM
    finally:
        children[0].kill()


def test_an_experiment_entry_without_settings_is_a_one_line_error_and_its_folder_stays(tmp_path):
    """A damaged experiment.json entry with no config ended in a KeyError (the "a bug" line), after the restart
    had already deleted the run's folder."""
    exp = tmp_path / "exp-1"
    (exp / "rnn").mkdir(parents=True)
    (exp / "rnn" / "notes.txt").write_text("kept")
    rf.atomic_write_json(exp / ex.EXPERIMENT, {"task": "classify", "runs": [{"dir": "rnn", "model": "rnn"}]})
    c = ex.Controller(exp)
    with pytest.raises(ex.ExperimentError, match=r"experiment\.json: damaged \(run rnn has no settings"):
        c._start(ex._read_doc(exp)["runs"][0], "restart")
    assert (exp / "rnn" / "notes.txt").exists() and not c.active


def test_settings_name_the_data_source_a_run_took_by_default(tmp_path):
    """A run trained without --data records data null in its settings and the source it resolved beside them; the
    report's settings table said "data | None" (the walkthrough): it names the source."""
    runs = []
    for name, source in (("a", "builtin"), ("b", "builtin"), ("c", "/data/names")):
        d = tmp_path / name
        d.mkdir()
        train = {"data": None if name != "c" else source, "hidden": 16}
        rf.atomic_write_json(d / rf.CONFIG, {"train": train, "data_source": source})
        runs.append((name, d))
    assert ex.settings(runs[:2]).common["data"] == "builtin"
    assert ex.settings(runs).varying["data"] == {"a": "builtin", "b": "builtin", "c": "/data/names"}


def test_a_second_stop_asks_the_children_again_and_only_a_third_kills_them(tmp_path):
    """compare's second Ctrl-C killed its children (SIGKILL): they wrote no end and read as stale. Now it asks
    again (SIGTERM: a `train` that is asked twice stops at once, "stopped, untested"); a third call kills."""
    exp = tmp_path / "exp-1"
    (exp / "rnn").mkdir(parents=True)
    rf.atomic_write_json(exp / ex.EXPERIMENT, {"task": "classify", "runs": [{"dir": "rnn", "model": "rnn"}]})
    log = tmp_path / "signals.txt"
    ready = tmp_path / "ready"
    child = subprocess.Popen([sys.executable, "-c", (
        "import signal, time, pathlib\n"
        f"log = pathlib.Path({str(log)!r})\n"
        "signal.signal(signal.SIGTERM, lambda s, f: log.open('a').write('TERM\\n'))\n"
        f"pathlib.Path({str(ready)!r}).touch()\n"
        "while True: time.sleep(0.05)\n")], start_new_session=True)
    try:
        deadline = time.time() + 30
        while not ready.exists() and time.time() < deadline:
            time.sleep(0.05)
        c = ex.Controller(exp)
        c.active["rnn"] = child
        for n in (1, 2):
            c.stop()
            while (log.read_text().count("TERM") if log.exists() else 0) < n and time.time() < deadline:
                time.sleep(0.05)
            assert log.read_text().count("TERM") == n and child.poll() is None   # asked, not killed
        c.stop()
        assert child.wait(timeout=20) == -signal.SIGKILL
    finally:
        child.kill()


def test_an_ended_runs_figure_is_that_of_the_model_it_keeps_as_runs_gives_it(tmp_path):
    """compare's "rnn: done · val acc 0.790" (on resume) and "stopped · val acc 0.763" were the last evaluations;
    `runs` gave the kept model's 0.830 / 0.846: the best evaluation, or the n-gram blend's when it takes part."""
    exp = tmp_path / "exp-1"
    for label in ("rnn", "gru"):
        (exp / label).mkdir(parents=True)
        rf.atomic_write_json(exp / label / rf.CONFIG, {"format": 2, "train": {"task": "classify", "model": label}})
        for step, acc in ((10, 0.7), (20, 0.8), (30, 0.75)):
            rf.append_jsonl(exp / label / rf.METRICS, {"step": step, "val": {"accuracy": acc}})
    rf.atomic_write_json(exp / ex.EXPERIMENT, {"task": "classify", "runs": [
        {"dir": "rnn", "model": "rnn", "error": None}, {"dir": "gru", "model": "gru", "error": None}]})
    blend = {"weight": 0.5, "prior_weight": 0.0, "val_after": {"accuracy": 0.83}}
    rf.atomic_write_json(exp / "rnn" / rf.TEST, {"test": {"accuracy": 0.8}, "reason": "stopped"})
    rf.save_weights({"w": torch.zeros(2)}, exp / "rnn" / rf.WEIGHTS)   # tested: it has weights (else: damaged)
    rf.atomic_write_json(exp / "gru" / rf.TEST, {"test": {"accuracy": 0.8, "lm_blend": blend}, "reason": "finished"})
    blend_file_as_before(exp / "gru")     # its n-gram LM, as saved before the file said what was chosen
    rf.write_status(exp / "rnn", rf.RunStatus(state=rf.STOPPED, reason=rf.STOPPED, pid=dead_pid(), host=rf.HOST,
                                              started=time.time()))
    c = ex.Controller(exp)
    c._ended("rnn", 0)
    assert c.views["rnn"].metric == 0.8                      # its best evaluation, not the last (0.75)
    c._fill_done_view("gru")                                 # kept from an earlier compare: the blend's figure
    assert c.views["gru"].metric == 0.83
    rows = {r["run"]: r for r in rf.list_runs(exp)}          # the same figure `runs` gives
    assert rows["rnn"]["best_val_accuracy"] == c.views["rnn"].metric


def _names_here(root: Path, n_labels: int) -> Path:
    """``root/names3``: a folder of ``n_labels`` languages, as `compare --data names3` would read it from root."""
    folder = write_names_folder(root / "names3")
    for extra in sorted(folder.glob("*.txt"))[n_labels:]:
        extra.unlink()
    return folder


def test_an_experiment_records_its_data_resolved_and_a_resume_elsewhere_trains_on_it(tmp_path, monkeypatch):
    """experiment.json kept --data as typed (a relative path; null for the default source), and a resume resolved
    it again: from another folder with its own names3/ (or after `data download`) the runs left trained on other
    data, exit 0. Each run's config now records the source resolved when the experiment is made."""
    here, there = tmp_path / "here", tmp_path / "there"
    made = _names_here(here, 3)
    _names_here(there, 2)
    monkeypatch.setenv("NAMESTUDIO_DATA_DIR", str(tmp_path / "userdata"))     # nothing downloaded: builtin
    monkeypatch.chdir(here)
    small = {"epochs": 1, "max_steps": 2, "embed": 8, "hidden": 8, "threads": 1, "device": "cpu"}
    exp = ex.new_experiment(tmp_path / "ck", {**small, "data": "names3"}, ["rnn"], {}, 1)
    doc = rf.read_json(exp / ex.EXPERIMENT)
    assert doc["runs"][0]["config"]["data"] == str(made) and doc["settings"]["data"] == str(made)
    default = ex.new_experiment(tmp_path / "ck", {"epochs": 1}, ["rnn", "gru"], {}, 1)
    assert {r["config"]["data"] for r in rf.read_json(default / ex.EXPERIMENT)["runs"]} == {"builtin"}
    write_names_folder(tmp_path / "userdata" / "pytorch-names" / "names")   # `data download` after it was made
    assert rf.read_json(default / ex.EXPERIMENT)["runs"][1]["config"]["data"] == "builtin"   # still what it reads
    monkeypatch.chdir(there)                      # resumed from a folder with another names3/ (2 languages)
    doc = ex.Controller(exp).run()
    assert doc["state"] == "done", doc["runs"][0]["error"]
    meta = rf.read_config(exp / "rnn")
    assert meta["data_source"] == str(made) and len(meta["labels"]) == 3


def _old_experiment(tmp_path, made: Path, data, trained_on: str) -> Path:
    """An experiment as made before the fix (``data`` as typed in every run's config), whose rnn trained (its
    config.json saying ``trained_on``) and whose gru is still to start."""
    exp = ex.new_experiment(tmp_path / "ck", {"data": str(made), "epochs": 1},
                            ["rnn", "gru"], {}, 1)
    doc = rf.read_json(exp / ex.EXPERIMENT)
    for r in doc["runs"]:
        r["config"]["data"] = data
    doc["settings"]["data"] = data
    rf.atomic_write_json(exp / ex.EXPERIMENT, doc)
    (exp / "rnn").mkdir()
    rf.atomic_write_json(exp / "rnn" / rf.CONFIG, {"train": {**doc["runs"][0]["config"]}, "labels": ["A", "B"],
                                                   "vocab": ["a"], "data_source": trained_on})
    return exp


def test_an_old_experiment_resumes_on_its_own_data_or_is_refused_in_one_line(tmp_path, monkeypatch):
    """An experiment made before runs recorded their data resolved still resumes: its --data is resolved once and
    recorded in every run's config; where that is not what its runs trained on (another folder's names3/, or the
    default source after `data download`), the resume is refused in one line naming both, nothing changed."""
    here, there = tmp_path / "here", tmp_path / "there"
    made = _names_here(here, 3)
    _names_here(there, 2)
    monkeypatch.setenv("NAMESTUDIO_DATA_DIR", str(tmp_path / "userdata"))
    exp = _old_experiment(tmp_path, made, "names3", str(made))
    before = (exp / ex.EXPERIMENT).read_text()
    monkeypatch.chdir(there)
    with pytest.raises(ex.ExperimentError) as e:
        ex.Controller(exp).run()
    assert str(made) in str(e.value) and str(there / "names3") in str(e.value) and "\n" not in str(e.value)
    assert (exp / ex.EXPERIMENT).read_text() == before
    r = cli("compare", "--resume", str(exp))
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and str(made) in r.stderr, r.stderr
    monkeypatch.chdir(here)                       # where it was made: the same data, recorded resolved from now on
    ctl = ex.Controller(exp)
    ctl._pin_data()
    doc = rf.read_json(exp / ex.EXPERIMENT)
    assert [r["config"]["data"] for r in doc["runs"]] == [str(made)] * 2 and doc["settings"]["data"] == str(made)

    old = _old_experiment(tmp_path / "default", made, None, "builtin")     # trained on the default: builtin then
    write_names_folder(tmp_path / "userdata" / "pytorch-names" / "names")   # then `data download`
    with pytest.raises(ex.ExperimentError, match=r"its runs trained on builtin \(rnn\), but its data \(the default "
                                                 r"source\) reads pytorch-names here"):
        ex.Controller(old).run()


def test_settings_are_the_fields_every_run_shares_when_a_grid_point_changes_others(names, tmp_path):
    """--set recipe=modern,tutorial: the tutorial run trains with embed 0, sgd, batch 1, no schedule, clip 0, but
    experiment.json's settings ("every config field the runs share") took them from the first run (modern):
    embed 64, adamw, batch 128, cosine, clip 5.0. They are now the fields every run's config holds alike."""
    exp = ex.new_experiment(tmp_path, {"data": names, "epochs": 1, "max_steps": 2}, ["gru"],
                            ex.parse_grid(["recipe=modern,tutorial"]), 1)
    doc = rf.read_json(exp / ex.EXPERIMENT)
    configs = [r["config"] for r in doc["runs"]]
    assert [c["recipe"] for c in configs] == ["modern", "tutorial"] and configs[0]["embed"] != configs[1]["embed"]
    settings = doc["settings"]
    for key in ("embed", "optimizer", "batch_size", "schedule", "clip", "recipe", "model"):
        assert key not in settings, key
    shared = {k: v for k, v in configs[0].items() if k not in ("model", "recipe") and configs[1][k] == v}
    assert settings == shared and settings["epochs"] == 1 and settings["max_steps"] == 2


def test_compares_ctrl_c_says_what_the_stop_keeps_for_each_run_at_that_moment(names, tmp_path, capsys, monkeypatch):
    """compare's Ctrl-C said "stopping every run: the best weights are kept and tested" whatever the runs were
    at: runs done long ago, runs that had not trained a step, runs not begun. It says, per run, what the stop
    keeps at that moment (as `train`'s Ctrl-C does: runfolder.stop_keeps), the runs done kept as they are, and
    the runs not begun not started."""
    from namestudio.tui.cli import main
    seen = {}

    def run(self):            # the moment of the Ctrl-C: one run done, three in training, two not begun
        self._save(state="running")
        runs = [r["dir"] for r in self.doc["runs"]]
        done, best, current, fresh = runs[:4]
        for label in runs[1:4]:
            (self.exp / label).mkdir(exist_ok=True)
        (self.exp / best / rf.WEIGHTS).write_bytes(b"")          # evaluated once: it has a best checkpoint
        rf.write_status(self.exp / best, rf.RunStatus(state="running", step=5, pid=dead_pid(), host=rf.HOST))
        rf.write_status(self.exp / current, rf.RunStatus(state="running", step=3, pid=dead_pid(), host=rf.HOST))
        for r in self.doc["runs"]:
            r["state"] = {done: "done", best: "running", current: "running", fresh: "running"}.get(r["dir"], "pending")
        for label in (best, current, fresh):
            self.active[label] = ex._Followed(self.exp / label, dead_pid())
        seen["runs"] = runs
        signal.raise_signal(signal.SIGINT)
        for r in self.doc["runs"]:
            r["state"] = "done" if r["dir"] == done else rf.STOPPED
        self.active.clear()
        self._save(state=rf.STOPPED)
        return self.doc

    monkeypatch.setattr(ex.Controller, "run", run)
    code = main(["compare", "--data", names, "--models", "rnn,lstm,gru", "--set", "hidden=8,16", "--epochs", "1",
                 *TINY[:2], *TINY[4:], "--parallel", "3", "--checkpoints", str(tmp_path)])
    out, err = capsys.readouterr()
    done, best, current, fresh, *pending = seen["runs"]
    line = next(line for line in (out + err).splitlines() if line.startswith("stopping"))
    assert code == 130 and line == (
        f"stopping: {best}: the best checkpoint so far is kept and tested · {current}: no checkpoint yet: the "
        f"current weights are kept and tested · {fresh}: no trained step reported yet: the weights it has when it "
        f"stops are kept and tested (nothing, if it has not trained a step) · "
        f"{done}: done, kept as it is · {', '.join(pending)}: not begun, and not started now (asked again: they "
        f"stop at once, untested; a third time: they are killed)"), out + err
    assert "best weights are kept and tested" not in out + err

    exp = ex.new_experiment(tmp_path / "b", {"data": names, "epochs": 1}, ["rnn", "gru", "lstm", "mylstm"], {}, 1)
    assert ex.Controller(exp).stop_keeps() == "4 runs: not begun, and not started now"   # before any run began
    said = ex.compare_json(exp)                   # pending, not "damaged: config.json missing"
    assert said["state"] == "pending" and {(r["state"], r["error"]) for r in said["runs"]} == {("pending", None)}


def test_compare_json_gives_a_run_that_failed_before_its_settings_as_it_failed(tmp_path):
    """`compare --json` said "damaged: config.json: missing" of a run whose trainer refused its device at once
    (no settings written), where the table and experiment.json said failed and why."""
    exp = tmp_path / "exp-20260101-000000-classify"
    (exp / "rnn-device=cuda").mkdir(parents=True)
    why = "device 'cuda' was asked for but is not available here"
    rf.atomic_write_json(exp / ex.EXPERIMENT, {"task": "classify", "state": "failed", "runs": [
        {"dir": "rnn-device=cuda", "model": "rnn", "state": "failed", "error": why},
        {"dir": "gru", "model": "gru", "state": "pending"}]})
    runs = {r["label"]: r for r in ex.compare_json(exp)["runs"]}
    assert (runs["rnn-device=cuda"]["state"], runs["rnn-device=cuda"]["error"]) == ("failed", why)
    assert (runs["gru"]["state"], runs["gru"]["error"]) == ("pending", None)


def test_a_resume_whose_data_changed_is_refused_before_a_run_left_reads_it(tmp_path):
    """`compare --resume` trained the runs not begun on the data folder as it was then (names removed, a language
    added) and set their figures beside the others' with no word; the data's digest, recorded at the start, now
    refuses that in one line (put back, the data is taken again)."""
    from helpers import write_names_folder
    names = write_names_folder(tmp_path / "names")
    exp = ex.new_experiment(tmp_path / "ck", {"data": str(names), "epochs": 1}, ["rnn", "gru"], {}, 1)
    assert len(rf.read_json(exp / ex.EXPERIMENT)["data_digest"]) == 64
    (exp / "rnn").mkdir()
    rf.atomic_write_json(exp / "rnn" / rf.CONFIG, {"format": 2, "train": {}})     # rnn began, gru not yet
    ex.Controller(exp)._check_data_unchanged()                                    # the same data: nothing to say
    first = next(names.iterdir())
    kept = first.read_text()
    first.write_text("\n".join(kept.splitlines()[5:]) + "\n")
    with pytest.raises(ex.ExperimentError, match=r"its data \(.*\) changed since it began: gru would split other "
                                                 r"names than rnn trained on; put the data back"):
        ex.Controller(exp)._check_data_unchanged()
    first.write_text(kept)
    ex.Controller(exp)._check_data_unchanged()
