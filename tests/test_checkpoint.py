import os
import pickle
import shutil

import pytest
import torch

from helpers import write_names_folder
from namestudio.data import load_dataset
from namestudio.engine import runfolder as ck
from namestudio.engine.config import TrainConfig
from namestudio.engine.infer import load_run
from namestudio.engine.train import Trainer


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    ds = load_dataset(str(write_names_folder(tmp_path_factory.mktemp("tiny") / "names")))
    cfg = TrainConfig(embed=8, hidden=16, epochs=3, batch_size=16, lr=1e-2, threads=1)
    result = Trainer(cfg, tmp_path_factory.mktemp("ck"), dataset=ds).run()
    return ck.resolve_run(result.run_dir)


def copy_run(src, dst):
    shutil.copytree(src, dst)
    return dst


class Boom:
    """A pickle that runs code when loaded: it would create a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_round_trip_gives_the_same_predictions(run_dir):
    a = load_run(run_dir)
    b = load_run(run_dir.name, run_dir.parent)  # by id under the checkpoints folder
    pa, pb = a.probabilities(["Karov", "McLoto"]), b.probabilities(["Karov", "McLoto"])
    torch.testing.assert_close(pa, pb)
    stored = a.test_metrics()["test"]
    again = a.evaluate("test")
    assert again["accuracy"] == pytest.approx(stored["accuracy"])
    assert again["confusion"] == stored["confusion"]


def test_truncated_weights_give_a_one_line_error(run_dir, tmp_path):
    bad = copy_run(run_dir, tmp_path / "run")
    data = (bad / "model.safetensors").read_bytes()
    (bad / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ck.CheckpointError) as e:
        load_run(bad)
    assert "model.safetensors" in str(e.value) and "\n" not in str(e.value)


def test_corrupt_config_gives_a_one_line_error(run_dir, tmp_path):
    bad = copy_run(run_dir, tmp_path / "run")
    (bad / "config.json").write_text('{"train": {"task": ')
    with pytest.raises(ck.CheckpointError) as e:
        load_run(bad)
    assert "config.json" in str(e.value)


def test_malicious_pickle_as_weights_runs_nothing(run_dir, tmp_path):
    bad = copy_run(run_dir, tmp_path / "run")
    marker = tmp_path / "pwned"
    (bad / "model.safetensors").write_bytes(pickle.dumps(Boom(marker)))
    with pytest.raises(ck.CheckpointError):
        load_run(bad)
    assert not marker.exists()


def test_malicious_pickle_as_optimizer_state_is_refused_on_resume(run_dir, tmp_path):
    bad = copy_run(run_dir, tmp_path / "run")
    marker = tmp_path / "pwned"
    torch.save({"optimizer": Boom(marker)}, ck.resume_dir(bad) / "optim.pt")
    assert not marker.exists()
    cfg = TrainConfig.from_dict(ck.read_json(bad / "config.json")["train"])
    cfg.epochs = 5
    result = Trainer(cfg, tmp_path, resume_from=bad).run()
    assert type(result).__name__ == "Failed" and "optim.pt" in result.message
    assert result.message.startswith("refused: ") and "could run code when loaded" in result.message
    assert "weights_only" not in result.message  # never suggest the unsafe option
    assert not marker.exists()


@pytest.mark.parametrize("damage, words", [
    (lambda d: [], "a JSON list where an object belongs"),
    (lambda d: None, "a JSON null where an object belongs"),
    (lambda d: {k: v for k, v in d.items() if k != "train"}, "no 'train' settings"),
    (lambda d: {**d, "labels": "abc"}, "'labels' must be a list"),
    (lambda d: {**d, "labels": d["labels"][:1] * 2}, "'labels' must be a list of distinct names"),
    (lambda d: {**d, "vocab": 7}, "'vocab' must be a list")])
def test_a_damaged_config_is_named_in_one_line_by_every_reader(run_dir, tmp_path, damage, words):
    """load_run and train --resume: "missing field list indices must be integers…" and "KeyError: 'Italian'"
    were what a damaged config.json gave."""
    bad = copy_run(run_dir, tmp_path / "run")
    ck.atomic_write_json(bad / "config.json", damage(ck.read_json(bad / "config.json")))
    with pytest.raises(ck.RunFolderError, match="config.json") as e:
        load_run(bad)
    assert words in str(e.value) and "\n" not in str(e.value)
    cfg = TrainConfig(embed=8, hidden=16, epochs=5, batch_size=16, lr=1e-2, threads=1)
    result = Trainer(cfg, tmp_path, resume_from=bad).run()
    assert type(result).__name__ == "Failed" and words in result.message


@pytest.mark.parametrize("file, content, words", [
    ("split.json", {}, "split.json: damaged (no list of train pairs)"),
    ("split.json", {"train": [], "val": [], "test": 5}, "split.json: damaged (no list of test pairs)"),
    ("test_metrics.json", {"test": 5}, "test_metrics.json: damaged (test is not an object)")])
def test_a_damaged_split_or_test_record_is_one_line_in_eval_and_report(run_dir, tmp_path, capsys, file, content, words):
    """`eval` and `report` stopped with "KeyError: 'test' (a bug: please report it)" and "AttributeError: 'int'
    object has no attribute 'get'" where `runs` already said "damaged"."""
    from namestudio.tui.cli import main
    bad = copy_run(run_dir, tmp_path / "run")
    ck.atomic_write_json(bad / file, content)
    needs = {"split.json": "eval", "test_metrics.json": "report"}[file]   # eval tests the weights again on the
    for argv in (["eval", str(bad)], ["report", str(bad), "--out", str(tmp_path / "rep")]):   # split; report
        code = main(argv)                                                                  # reads the record
        err = capsys.readouterr().err
        assert "bug" not in err, err
        if argv[0] == needs:
            assert code != 0 and words in err and len(err.strip().splitlines()) == 1, err
        else:
            assert code == 0, err


def test_labels_of_the_split_missing_from_the_config_are_named_on_resume(run_dir, tmp_path):
    bad = copy_run(run_dir, tmp_path / "run")
    meta = ck.read_json(bad / "config.json")
    ck.atomic_write_json(bad / "config.json", {**meta, "labels": meta["labels"][:2]})
    cfg = TrainConfig.from_dict(meta["train"])
    cfg.epochs = 5
    result = Trainer(cfg, tmp_path, resume_from=bad).run()
    assert type(result).__name__ == "Failed" and "which its labels lack" in result.message


def test_damaged_best_weights_are_refused_before_a_resume_trains(run_dir, tmp_path):
    """The best weights are read at a run's end: a resume used to train on, rewrite the logs and the resume point,
    and only then fail. Now it says so first, and the run's files are as they were."""
    bad = copy_run(run_dir, tmp_path / "run")
    weights = bad / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    kept = {p.relative_to(bad): p.read_bytes() for p in bad.rglob("*")
            if p.is_file() and p.name not in ("status.json", "run.lock")}
    cfg = TrainConfig.from_dict(ck.read_json(bad / "config.json")["train"])
    cfg.epochs = 5
    result = Trainer(cfg, tmp_path, resume_from=bad).run()
    assert type(result).__name__ == "Failed" and "model.safetensors" in result.message
    assert "\n" not in result.message
    now = {p.relative_to(bad): p.read_bytes() for p in bad.rglob("*")
           if p.is_file() and p.name not in ("status.json", "run.lock")}
    assert now == kept


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temp(run_dir, tmp_path, monkeypatch):
    target = tmp_path / "model.safetensors"
    ck.save_weights({"w": torch.ones(3)}, target)
    before = target.read_bytes()

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(ck.RunFolderError, match="could not write .*model.safetensors"):
        ck.save_weights({"w": torch.zeros(3)}, target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]


def test_torn_metrics_line_is_skipped(tmp_path):
    p = tmp_path / "metrics.jsonl"
    p.write_text('{"step": 1}\n{"step": 2}\n{"step": ')
    assert [r["step"] for r in ck.read_jsonl(p)] == [1, 2]


def test_missing_and_ambiguous_runs(run_dir, tmp_path):
    with pytest.raises(ck.CheckpointError, match="no run"):
        ck.resolve_run("nope", tmp_path)
    assert ck.resolve_run(run_dir.name[:8], run_dir.parent) == run_dir


def test_list_runs_reports_metrics(run_dir):
    rows = ck.list_runs(run_dir.parent)
    row = next(r for r in rows if r["run"] == run_dir.name)
    assert row["task"] == "classify" and row["model"] == "lstm" and row["params"] > 0
    assert 0 <= row["test_accuracy"] <= 1 and "best_val_accuracy" in row


def test_non_finite_weights_are_refused_in_one_line(run_dir, tmp_path):
    bad = copy_run(run_dir, tmp_path / "run")
    sd = ck.load_weights(bad / "model.safetensors")
    name = next(iter(sd))
    sd[name][0] = float("nan")
    ck.save_weights(sd, bad / "model.safetensors")
    with pytest.raises(ck.RunFolderError, match=f"refused: tensor {name} holds NaN") as e:
        load_run(bad)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("change", [{"layers": 3000}, {"layers": 2}, {"hidden": 17}, {"embed": 0}])
def test_config_sizes_are_checked_against_the_weights_header_before_building(run_dir, tmp_path, change):
    bad = copy_run(run_dir, tmp_path / "run")
    cfg = ck.read_json(bad / "config.json")
    cfg["train"].update(change)
    ck.atomic_write_json(bad / "config.json", cfg)
    with pytest.raises(ck.RunFolderError, match="config.json") as e:
        load_run(bad)
    assert "\n" not in str(e.value)


def test_safetensors_header_is_read_without_the_tensors(run_dir, tmp_path):
    shapes = ck.read_safetensors_header(run_dir / "model.safetensors")
    sd = ck.load_weights(run_dir / "model.safetensors")
    assert shapes == {k: list(v.shape) for k, v in sd.items()}
    (tmp_path / "w.safetensors").write_bytes((10**12).to_bytes(8, "little") + b"{}")
    with pytest.raises(ck.RunFolderError, match="bad header length"):
        ck.read_safetensors_header(tmp_path / "w.safetensors")


def test_a_full_disk_names_the_file_in_words_and_keeps_the_previous_file(tmp_path, monkeypatch):
    import errno
    target = tmp_path / "model.safetensors"
    ck.save_weights({"w": torch.ones(3)}, target)
    before = target.read_bytes()
    real_fsync = os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(ck.RunFolderError) as e:
        ck.save_weights({"w": torch.zeros(3)}, target)
    assert str(e.value) == f"could not write {target}: the disk is full"
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert target.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]


CELL_CASES = [("classify", c, m) for c in ("rnn", "lstm", "mylstm", "gru", "ngram", "hybrid") for m in (1, 2)] + \
             [("generate", c, m) for c in ("rnn", "lstm", "mylstm", "gru") for m in (1, 2)]


@pytest.mark.parametrize("task,cell,members", CELL_CASES)
def test_the_shapes_only_build_takes_the_real_weights_of_every_model(tmp_path, task, cell, members):
    """check_weights_fit builds on the meta device with the fills skipped: every model's real weights fit it, and
    one wrong size does not."""
    from namestudio.engine.models import build_model

    def build(hidden=16):
        return build_model(task, cell, 30, 5, embed=8, hidden=hidden, layers=2, bidirectional=task == "classify",
                           dropout=0.1, members=members)

    path = tmp_path / "model.safetensors"
    ck.save_weights(build().state_dict(), path)
    ck.check_weights_fit(path, build)
    with pytest.raises(ck.RunFolderError, match="do not fit"):
        ck.check_weights_fit(path, lambda: build(hidden=12))


def test_loading_a_run_imports_no_compiler(run_dir):
    """The shapes check once pulled in torch's Python meta kernels (dynamo, sympy: about a second, which froze
    the TUI when a pane loaded a run). In a fresh process, load_run must leave them unimported."""
    import subprocess
    import sys
    code = ("import sys; from namestudio.engine.infer import load_run; load_run(sys.argv[1]); "
            "print(sorted(m for m in ('torch._dynamo', 'sympy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(run_dir)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-400:]
    assert out.stdout.strip() == "[]"
