import json
import subprocess
import sys

import pytest

from helpers import write_names_folder
from namestudio.tui.cli import main

COMMANDS = ["data", "train", "eval", "classify", "sample", "runs", "bench", "tui"]


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def last_json(out):
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    data = write_names_folder(root / "names")
    ck = root / "ck"
    common = ["--data", data, "--checkpoints", ck, "--embed", 8, "--epochs", 3, "--batch-size", 16, "--lr", 0.01,
              "--threads", 1, "--json"]
    clf = main([str(a) for a in ["train", "--task", "classify", "--hidden", 16, *common]])
    gen = main([str(a) for a in ["train", "--task", "generate", "--hidden", 32, *common, "--epochs", 6]])
    assert clf == 0 and gen == 0
    runs = sorted(p for p in ck.iterdir())
    return {"data": data, "ck": ck, "clf": next(p for p in runs if "classify" in p.name),
            "gen": next(p for p in runs if "generate" in p.name)}


def test_help_for_every_command_is_fast_and_lists_commands():
    r = subprocess.run([sys.executable, "-m", "namestudio.tui.cli", "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for c in COMMANDS:
        assert c in r.stdout
    # --help must not import torch (start-up speed)
    probe = "import sys; from namestudio.tui.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip() == "False"


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    assert "usage: namestudio " + command in capsys.readouterr().out


def test_train_json_last_line_has_the_run_and_test_metrics(env, capsys):
    code, out, _ = run_cli(capsys, "train", "--data", env["data"], "--checkpoints", env["ck"], "--hidden", 8,
                           "--epochs", 1, "--threads", 1, "--json")
    assert code == 0
    res = last_json(out)
    for k in ("run_dir", "test_accuracy", "test_macro_f1", "test_balanced_accuracy", "train_seconds"):
        assert k in res
    assert 0 <= res["test_accuracy"] <= 1


def test_generator_json_reports_test_nll(env, capsys):
    code, out, _ = run_cli(capsys, "train", "--task", "generate", "--data", env["data"], "--checkpoints", env["ck"],
                           "--hidden", 8, "--epochs", 1, "--threads", 1, "--json")
    assert code == 0 and last_json(out)["test_nll"] > 0


def test_data_summary_json(env, capsys):
    code, out, _ = run_cli(capsys, "data", "--data", env["data"], "--json")
    s = last_json(out)
    assert code == 0 and s["n_labels"] == 3 and set(s["per_label"]) == {"Gaelic", "Nordic", "Slavic"}
    code, out, _ = run_cli(capsys, "data", "--data", env["data"])
    assert code == 0 and "Slavic" in out and "Cleaning" in out


def test_eval_prints_metrics_and_confusion(env, capsys):
    code, out, _ = run_cli(capsys, "eval", env["clf"], "--json")
    res = last_json(out)
    assert code == 0 and len(res["confusion"]) == 3 and {"accuracy", "macro_f1", "balanced_accuracy"} <= set(res)
    code, out, _ = run_cli(capsys, "eval", env["clf"].name, "--checkpoints", env["ck"])
    assert code == 0 and "Confusion" in out and "Gae" in out


def test_classify_top_k(env, capsys):
    code, out, _ = run_cli(capsys, "classify", env["clf"], "Karov", "McTeka", "--top", 2, "--json")
    res = last_json(out)["results"]
    assert code == 0 and [r["name"] for r in res] == ["Karov", "McTeka"]
    for r in res:
        assert len(r["top"]) == 2 and r["top"][0]["prob"] >= r["top"][1]["prob"]
        assert sum(t["prob"] for t in r["top"]) <= 1 + 1e-6


def test_sample_marks_new_and_reports_classifier_agreement(env, capsys):
    code, out, _ = run_cli(capsys, "sample", env["gen"], "--lang", "slavic", "--start", "K", "-n", 7, "--seed", 1,
                           "--classifier", env["clf"], "--json")
    res = last_json(out)
    assert code == 0 and len(res["samples"]) == 7
    for s in res["samples"]:
        assert s["name"].startswith("K") and s["lang"] == "Slavic" and isinstance(s["new"], bool)
    assert 0 <= res["classifier_agreement"] <= 1
    assert res["classifier_agreement"] == sum(s["agrees"] for s in res["samples"]) / 7


def test_runs_lists_both(env, capsys):
    code, out, _ = run_cli(capsys, "runs", "--checkpoints", env["ck"], "--json")
    rows = last_json(out)["runs"]
    names = {r["run"] for r in rows}
    assert code == 0 and env["clf"].name in names and env["gen"].name in names
    code, out, _ = run_cli(capsys, "runs", "--checkpoints", env["ck"])
    assert code == 0 and "classify" in out


# ---- bad inputs: a clear one-line error or a sensible answer, never a traceback -------------
def one_line_error(code, err):
    assert code != 0
    lines = [l for l in err.strip().splitlines() if l]
    assert len(lines) == 1 and lines[0].startswith("namestudio: error:") and "Traceback" not in err
    return lines[0]


def test_empty_name_is_a_clear_error(env, capsys):
    code, _, err = run_cli(capsys, "classify", env["clf"], "  ")
    assert "empty name" in one_line_error(code, err)


def test_name_of_only_unknown_characters_gets_an_answer(env, capsys):
    code, out, _ = run_cli(capsys, "classify", env["clf"], "ЖЖЖ☃", "--json")
    top = last_json(out)["results"][0]["top"]
    assert code == 0 and len(top) == 3


def test_ten_thousand_characters_get_an_answer(env, capsys):
    code, out, _ = run_cli(capsys, "classify", env["clf"], "a" * 10_000, "--top", 1, "--json")
    assert code == 0 and len(last_json(out)["results"][0]["top"]) == 1


def test_missing_run_is_a_clear_error(env, capsys):
    code, _, err = run_cli(capsys, "eval", "no-such-run", "--checkpoints", env["ck"])
    assert "no-such-run" in one_line_error(code, err)


def test_unknown_language_is_a_clear_error(env, capsys):
    code, _, err = run_cli(capsys, "sample", env["gen"], "--lang", "Klingon")
    msg = one_line_error(code, err)
    assert "Klingon" in msg and "Slavic" in msg


def test_wrong_run_kind_and_bad_values(env, capsys):
    assert "generate run" in one_line_error(*run_cli(capsys, "sample", env["clf"])[::2])
    assert "temperature" in one_line_error(*run_cli(capsys, "sample", env["gen"], "--temperature", 0)[::2])
    assert "--top" in one_line_error(*run_cli(capsys, "classify", env["clf"], "x", "--top", 0)[::2])


def test_bad_data_source_is_a_clear_error(tmp_path, capsys):
    code, _, err = run_cli(capsys, "data", "--data", tmp_path / "missing")
    assert "missing" in one_line_error(code, err)
    code, _, err = run_cli(capsys, "train", "--data", tmp_path / "missing", "--checkpoints", tmp_path / "ck")
    one_line_error(code, err)


def test_absent_device_is_a_clear_error(env, tmp_path, capsys):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code, _, err = run_cli(capsys, "train", "--data", env["data"], "--device", "cuda", "--checkpoints", tmp_path)
    assert "cuda" in one_line_error(code, err)


def test_subprocess_error_has_no_traceback(env):
    r = subprocess.run([sys.executable, "-m", "namestudio.tui.cli", "classify", str(env["clf"]), ""],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1


def test_piped_train_output_has_no_progress_bar_spam(env, tmp_path):
    r = subprocess.run([sys.executable, "-m", "namestudio.tui.cli", "train", "--data", str(env["data"]), "--hidden", "8",
                        "--epochs", "2", "--threads", "1", "--checkpoints", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stdout and "━" not in r.stdout and "\x1b[" not in r.stdout
    assert "run folder:" in r.stdout and r.stdout.count("epoch") == 2
