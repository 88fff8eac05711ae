import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import hold_at, write_names_folder
from namestudio.tui.cli import build_parser, main

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
    out = capsys.readouterr().out
    assert "usage: namestudio " + command in out
    first = out.split("\n\n")[1].strip()          # after the usage lines: what the command does, in words
    assert first and not first.startswith(("positional arguments", "options")), out[:400]


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


@pytest.mark.parametrize("task, line", [("classify", "n-gram blend (order 5): "), ("generate", "n-gram mix (order 6): ")])
def test_the_n_gram_line_goes_with_the_other_progress_lines(env, capsys, tmp_path, task, line):
    """`train > log` kept run, epoch and test lines but not the n-gram blend's (on stderr): the log showed the
    validation figure jump to the test figure with no word why. Now it is on stdout with them, before the test
    line; with --json all of them are on stderr, and stdout is the JSON alone."""
    argv = ["train", "--task", task, "--data", env["data"], "--checkpoints", tmp_path, "--hidden", 8, "--epochs", 1,
            "--threads", 1]
    code, out, err = run_cli(capsys, *argv)
    assert code == 0 and line not in err, err
    lines = out.splitlines()
    said = next(i for i, l in enumerate(lines) if l.startswith(line))
    assert lines[said + 1].startswith("test ") and lines[0].startswith("run ")
    code, out, err = run_cli(capsys, *argv, "--json")
    assert code == 0 and line in err and err.index(line) < err.index("\ntest ")
    assert all(json.loads(l) for l in out.splitlines())        # stdout: JSON only


def test_train_refuses_a_run_dir_holding_the_users_files_and_writes_nothing_there(env, capsys, tmp_path):
    """`train --run-dir DATA` (a folder of <Label>.txt) trained and wrote config.json, model.safetensors,
    resume-N/ and split.json among the user's files. Now: one line, and the folder stays as it was."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "English.txt").write_text("Smith\n")
    argv = ["train", "--data", env["data"], "--checkpoints", tmp_path / "ck", "--hidden", 8, "--epochs", 1,
            "--threads", 1, "--run-dir"]
    msg = one_line_error(*run_cli(capsys, *argv, data)[::2])
    assert "holds files that are not a run's (English.txt)" in msg and "--run-dir takes a new or empty" in msg
    assert [p.name for p in data.iterdir()] == ["English.txt"]
    code, out, _ = run_cli(capsys, *argv, tmp_path / "fresh")
    assert code == 0 and (tmp_path / "fresh" / "config.json").is_file()
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    helped = " ".join(capsys.readouterr().out.split())          # --help says which folders it takes
    assert "--run-dir DIR train into this folder: a new or empty one" in helped and "holding other files" in helped


def test_data_summary_json(env, capsys):
    code, out, _ = run_cli(capsys, "data", "--data", env["data"], "--json")
    s = last_json(out)
    assert code == 0 and s["n_labels"] == 3 and set(s["per_label"]) == {"Gaelic", "Nordic", "Slavic"}
    code, out, _ = run_cli(capsys, "data", "--data", env["data"])
    assert code == 0 and "Slavic" in out and "Cleaning" in out


def test_data_summary_counts_a_name_under_two_labels_as_two_rows_and_one_name(tmp_path, capsys):
    """The title said "5 names" for 5 (name, label) rows of 4 names; the TUI's status bar and Data pane too."""
    from namestudio.tui.render import name_counts

    (tmp_path / "English.txt").write_text("Ann\nBower\nCarla\n", encoding="utf-8")
    (tmp_path / "Scottish.txt").write_text("Bower\nDougal\n", encoding="utf-8")
    code, out, _ = run_cli(capsys, "data", "--data", tmp_path, "--json")
    s = last_json(out)
    assert code == 0 and (s["n_pairs"], s["n_names"]) == (5, 4)
    assert name_counts(s) == ["5 rows", "4 unique names"]
    code, out, _ = run_cli(capsys, "data", "--data", tmp_path)
    assert code == 0 and out.splitlines()[0].startswith("5 rows · 4 unique names · 2 labels · source "), out
    (tmp_path / "Scottish.txt").write_text("Dougal\n", encoding="utf-8")     # each name under one label
    code, out, _ = run_cli(capsys, "data", "--data", tmp_path)
    assert code == 0 and out.splitlines()[0].startswith("4 names · 2 labels · source "), out
    (tmp_path / "Scottish.txt").unlink()                                     # one label: not "1 labels"
    code, out, _ = run_cli(capsys, "data", "--data", tmp_path)
    assert code == 0 and out.splitlines()[0].startswith("3 names · 1 label · source "), out


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
    assert res["classifier_judged"] == 7          # every sample is in a language the classifier knows


def test_runs_lists_both(env, capsys):
    code, out, _ = run_cli(capsys, "runs", "--checkpoints", env["ck"], "--json")
    rows = last_json(out)["runs"]
    names = {r["run"] for r in rows}
    assert code == 0 and env["clf"].name in names and env["gen"].name in names
    code, out, _ = run_cli(capsys, "runs", "--checkpoints", env["ck"])
    assert code == 0 and "classify" in out


def test_sample_start_letters_gives_one_name_per_letter(env, capsys):
    code, out, _ = run_cli(capsys, "sample", env["gen"], "--start-letters", "KMS", "--seed", 3, "--json")
    res = last_json(out)
    assert code == 0 and [s["name"][0] for s in res["samples"]] == ["K", "M", "S"]
    code, out, _ = run_cli(capsys, "sample", env["gen"], "--start-letters", "KM", "-n", 3, "--seed", 3, "--json")
    assert [s["name"][0] for s in last_json(out)["samples"]] == ["K"] * 3 + ["M"] * 3
    with pytest.raises(SystemExit):     # a prefix and start letters do not go together
        main(["sample", str(env["gen"]), "--start", "K", "--start-letters", "KM"])
    capsys.readouterr()


def test_sample_zero_temperature_is_greedy(env, capsys):
    names = []
    for seed in (1, 2):
        code, out, _ = run_cli(capsys, "sample", env["gen"], "--lang", "Slavic", "--temperature", 0, "-n", 4,
                               "--seed", seed, "--json")
        assert code == 0
        names.append([s["name"] for s in last_json(out)["samples"]])
    assert names[0] == names[1] and len(set(names[0])) == 1        # the same likeliest name, whatever the seed
    res = last_json(out)
    assert res["unique_fraction"] == 0.25 and sum(s["new"] for s in res["samples"]) <= 1
    assert [s["repeat"] for s in res["samples"]] == [False, True, True, True]


def test_sample_counts_uniqueness_and_a_repeat_is_not_new(env, capsys):
    code, out, _ = run_cli(capsys, "sample", env["gen"], "-n", 60, "--seed", 0, "--temperature", 0.5, "--json")
    res = last_json(out)
    names = [s["name"] for s in res["samples"]]
    assert res["unique_fraction"] == len(set(names)) / 60
    new_names = [s["name"] for s in res["samples"] if s["new"]]
    assert len(new_names) == len(set(new_names))                     # a name is new at most once
    assert res["new_fraction"] == len(new_names) / 60
    code, out, _ = run_cli(capsys, "sample", env["gen"], "-n", 5, "--seed", 0)
    assert "% unique" in out


def test_sample_out_writes_the_names(env, tmp_path, capsys):
    target = tmp_path / "names.txt"
    code, out, _ = run_cli(capsys, "sample", env["gen"], "-n", 6, "--seed", 4, "--out", target, "--json")
    res = last_json(out)
    assert code == 0 and res["out"] == str(target)
    assert target.read_text(encoding="utf-8").splitlines() == [s["name"] for s in res["samples"]]
    assert [p.name for p in tmp_path.iterdir()] == ["names.txt"]
    code, _, err = run_cli(capsys, "sample", env["gen"], "--out", tmp_path / "no" / "x.txt")
    assert "no such folder" in one_line_error(code, err)


def test_sample_table_across_temperatures(env, capsys):
    from namestudio.engine.infer import load_run, sample_quality
    code, out, _ = run_cli(capsys, "sample", env["gen"], "--table", "--temperatures", "0,0.8,1.5", "-n", 40,
                           "--classifier", env["clf"], "--seed", 2, "--json")
    res = last_json(out)
    assert code == 0 and [r["temperature"] for r in res["table"]] == [0, 0.8, 1.5]
    for r in res["table"]:
        assert r["n"] == 40 and all(0 <= r[k] <= 1 for k in ("novelty", "uniqueness", "agreement"))
    assert res["table"][0]["uniqueness"] < res["table"][2]["uniqueness"]   # greedy repeats itself
    # the CLI's figures are the engine's (one implementation of agreement, shared with the TUI)
    assert res["table"] == sample_quality(load_run(env["gen"]), [0, 0.8, 1.5], n=40,
                                          classifier=load_run(env["clf"]), seed=2)
    code, out, _ = run_cli(capsys, "sample", env["gen"], "--table", "-n", 20)
    assert code == 0 and "temperature" in out and "unique" in out and "classifier" not in out.split("\n")[1]
    code, _, err = run_cli(capsys, "sample", env["gen"], "--table", "--temperatures", "hot")
    assert "--temperatures" in one_line_error(code, err)
    code, _, err = run_cli(capsys, "eval", env["gen"], "--counts")
    assert "--counts is for a classifier's confusion matrix" in one_line_error(code, err)   # (was: ignored)
    code, _, err = run_cli(capsys, "sample", env["gen"], "--table", "--temperatures", "0.5,0.50")
    assert "a temperature is listed twice" in one_line_error(code, err)     # (was: the same row sampled twice)
    code, out, err = run_cli(capsys, "sample", env["gen"], "--table", "-n", 5, "--start-letters", "KLM", "--json")
    assert code == 0 and all(r["n"] == 15 for r in last_json(out)["table"])     # 5 for each of 3 letters
    assert "15 samples per temperature (5 for each start letter)" in " ".join((out + err).split())


RUN_ROWS = [
    {"run": "20261123-080613-classify-lstm-with-a-long-name", "task": "classify", "model": "lstm", "params": 123456,
     "state": "done", "reason": "early_stop", "best_val_accuracy": 0.84, "test_accuracy": 0.83, "test_macro_f1": 0.6,
     "train_seconds": 61.2},
    {"run": "20261123-080827-generate-gru-0123456789", "task": "generate", "model": "gru", "params": 9999,
     "state": "running", "step": 1200, "total_steps": 5000, "best_val_nll": 2.1},
    {"run": "20261123-090000-classify-rnn", "task": "classify", "model": "rnn", "status": "finished",
     "test_accuracy": 0.5, "test_macro_f1": 0.4},
    {"run": "20261123-100000-broken-run-folder", "error": "config.json: not valid JSON at line 3 column 1"},
]


def test_runs_table_never_cuts_an_id_at_80_columns():
    import io

    from rich.console import Console

    from namestudio.tui.render import runs_table
    for width in (80, 60):
        con = Console(width=width, file=io.StringIO(), color_system=None)
        con.print(runs_table(RUN_ROWS, width))
        text = con.file.getvalue()
        assert all(len(line) <= width for line in text.splitlines())
        for r in RUN_ROWS:
            assert r["run"] in text                         # whole, on one line
        assert "…" not in text
        assert "running" in text and "1200/5000" in text    # state, then progress of the live run
        assert "early_stop" not in text
        if width == 80:
            assert "running 1200/5000 24%" in text and "done (early stop)" in text


def test_runs_in_a_terminal_at_80_columns(env, capsys, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.delenv("NO_COLOR", raising=False)
    code, out, _ = run_cli(capsys, "runs", "--checkpoints", env["ck"])
    import re
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out)
    assert code == 0 and all(len(line) <= 80 for line in plain.splitlines())
    for p in env["ck"].iterdir():
        assert p.name in plain


def test_runs_piped_are_tab_separated_whole_rows(env, capsys):
    code, out, _ = run_cli(capsys, "runs", "--checkpoints", env["ck"])
    lines = out.strip().splitlines()
    header = lines[0].split("\t")
    assert code == 0 and header[:2] == ["run", "state"]
    ids = {p.name for p in env["ck"].iterdir()}
    assert {line.split("\t")[0] for line in lines[1:]} == ids
    assert all(len(line.split("\t")) == len(header) for line in lines)
    assert "\x1b[" not in out and "…" not in out and "━" not in out


def test_runs_state_and_progress_cells():
    from namestudio.tui.render import run_cells, runs_tsv
    cells = [run_cells(r) for r in RUN_ROWS]
    assert cells[0]["state"] == "done (early stop)" and cells[0]["progress"] == ""
    assert cells[1]["state"] == "running" and cells[1]["progress"].startswith("1200/5000")
    assert cells[2]["state"] == "done"                     # older rows: status only
    assert cells[3]["state"].startswith("damaged: config.json")
    assert run_cells({"run": "x", "state": "failed", "resumable": True})["state"] == "failed · resumable"
    assert run_cells({"run": "x", "state": "stale", "step": 5, "total_steps": 10})["progress"] == "5/10 50%"
    tsv = runs_tsv(RUN_ROWS)
    assert tsv[2].split("\t")[:3] == [RUN_ROWS[1]["run"], "running", "1200/5000 24%"]


# ---- bad inputs: a clear one-line error or a sensible answer, never a traceback -------------
def one_line_error(code, err):
    assert code != 0
    lines = [l for l in err.strip().splitlines() if l]
    assert len(lines) == 1 and lines[0].startswith("namestudio: error:") and "Traceback" not in err
    return lines[0]


def test_empty_name_is_a_clear_error(env, capsys):
    code, _, err = run_cli(capsys, "classify", env["clf"], "  ")
    assert "empty name" in one_line_error(code, err)


def test_name_whose_letters_fold_to_known_ones_gets_an_answer(env, capsys):
    code, out, _ = run_cli(capsys, "classify", env["clf"], "ЖЖЖ☃", "--json")
    top = last_json(out)["results"][0]["top"]
    assert code == 0 and len(top) == 3


def test_ten_thousand_characters_get_an_answer_and_a_note_that_the_name_was_cut(env, capsys):
    code, out, _ = run_cli(capsys, "classify", env["clf"], "a" * 10_000, "--top", 1, "--json")
    res = last_json(out)["results"][0]
    assert code == 0 and len(res["top"]) == 1
    assert res["truncated"] is True and res["length"] == 10_000 and len(res["read_as"]) == res["max_len"]
    code, out, _ = run_cli(capsys, "classify", env["clf"], "a" * 300)
    assert code == 0 and "note:" in out and "64 of 300" in out
    code, out, _ = run_cli(capsys, "classify", env["clf"], "Karov", "--json")
    assert last_json(out)["results"][0]["truncated"] is False


def test_unknown_characters_are_named_in_a_note_and_in_json(env, capsys):
    code, out, _ = run_cli(capsys, "classify", env["clf"], "KarƄv", "--json")
    res = last_json(out)["results"][0]
    assert code == 0 and res["unknown_chars"] == ["Ƅ"] and len(res["top"]) == 3
    code, out, _ = run_cli(capsys, "classify", env["clf"], "KarƄv")
    assert code == 0 and "note:" in out and "never saw Ƅ" in out
    code, out, _ = run_cli(capsys, "classify", env["clf"], "Karov", "--json")
    assert last_json(out)["results"][0]["unknown_chars"] == []


def test_a_letter_the_run_never_saw_is_read_folded(env, capsys):
    # the fixture has no accented letters: "Kärov" is read as "Karov" and gets Karov's answer
    _, out, _ = run_cli(capsys, "classify", env["clf"], "Kärov", "Karov", "--json")
    folded, plain = last_json(out)["results"]
    assert folded["read_as"] == "Karov" and folded["unknown_chars"] == ["ä"]
    assert folded["top"] == plain["top"]


def test_a_name_with_a_newline_or_tab_is_shown_quoted_with_how_it_was_read(env, capsys):
    """'Bob\nSmith' printed raw as two lines ("Bob" a name with no answer), read as "Bob Smith" with no word."""
    code, out, _ = run_cli(capsys, "classify", env["clf"], "Bob\nSmith", "Kar\tov", "--top", "1")
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("'Bob\\nSmith'") and "(read as Bob Smith)" in lines[0], out
    assert not any(line.strip() == "Bob" for line in lines)
    assert any(line.startswith("'Kar\\tov'") and "(read as Kar ov)" in line for line in lines), out


def test_an_apostrophe_the_run_never_saw_is_one_unknown_character(env, capsys):
    """The fixture's names have no apostrophe: "Mc'Karov" got the note "read as unknown characters" for one."""
    code, out, _ = run_cli(capsys, "classify", env["clf"], "Mc'Karov")
    assert code == 0 and "note: this run never saw ': read as an unknown character" in out, out
    code, _, err = run_cli(capsys, "sample", env["gen"], "--start-letters", "K'")
    assert "start character \"'\": no letter this run knows (it never saw ')" in one_line_error(code, err)


def test_sample_counts_of_one_are_said_in_the_singular(env, capsys, tmp_path):
    """sample -n 1 said "1 of 1 names reached --max-len ... ended them", "wrote 1 names", "1 samples per
    temperature", and --start K --max-len 1 "start 'K' is 1 letters"."""
    out_file = tmp_path / "one.txt"
    code, out, _ = run_cli(capsys, "sample", env["gen"], "-n", 1, "--max-len", 1, "--seed", 0, "--out", out_file)
    said = " ".join(out.split())
    assert code == 0 and "1 of 1 name reached --max-len 1 before the model ended it: cut there" in said, out
    assert "(a higher --max-len lets it end)" in said and f"wrote 1 name to {out_file}" in said
    code, out, _ = run_cli(capsys, "sample", env["gen"], "-n", 2, "--max-len", 1, "--seed", 0)
    assert "2 of 2 names reached --max-len 1 before the model ended them" in " ".join(out.split())
    code, out, _ = run_cli(capsys, "sample", env["gen"], "--table", "-n", 1, "--temperatures", "0.5", "--max-len", 3)
    assert code == 0 and "1 sample per temperature" in " ".join(out.split()), out
    code, _, err = run_cli(capsys, "sample", env["gen"], "--start", "K", "--max-len", 1)
    assert "start 'K' is 1 letter: max-len 1 leaves no room" in one_line_error(code, err)


def test_a_start_sampling_refuses_is_an_error_with_no_note_before_it(env, capsys):
    """A 70-letter --start printed "note: … cut to its first 64 of 70 characters" and then the error that counts
    70: the note spoke of a sampling that never came."""
    code, out, err = run_cli(capsys, "sample", env["gen"], "--start", "K" + "a" * 69, "-n", 1)
    assert "is 70 letters: a start may be at most 63 letters" in one_line_error(code, err) and "note" not in out, out
    code, out, err = run_cli(capsys, "sample", env["gen"], "--start-letters", "KLM", "--max-len", 1)
    assert "max-len 1 leaves no room" in one_line_error(code, err) and out == "", out


def test_names_cut_at_the_highest_max_len_are_not_told_to_raise_it(env, capsys, monkeypatch):
    """Names cut at --max-len 64 got "(a higher --max-len lets them end)", though 64 is the highest."""
    from namestudio.engine.infer import LoadedRun
    sample = LoadedRun.sample
    monkeypatch.setattr(LoadedRun, "sample", lambda self, *a, **k: [dict(s, cut=True) for s in sample(self, *a, **k)])
    code, out, _ = run_cli(capsys, "sample", env["gen"], "-n", 2, "--max-len", 64, "--seed", 0)
    said = " ".join(out.split())
    assert code == 0 and "2 of 2 names reached --max-len 64 before the model ended them: cut there" in said, out
    assert "(64 is the highest --max-len)" in said and "a higher --max-len" not in said


def test_a_name_with_no_known_letter_is_a_per_name_error(env, capsys):
    code, out, _ = run_cli(capsys, "classify", env["clf"], "😀☃", "Karov", "--json")
    bad, good = last_json(out)["results"]
    assert code == 0 and "no letter" in bad["error"] and "top" not in bad and len(good["top"]) == 3


def test_one_bad_name_does_not_fail_the_others(env, capsys):
    code, out, err = run_cli(capsys, "classify", env["clf"], "", "Karov")
    assert code == 0 and "empty name" in out and "Karov" in out and "%" in out and err == ""
    code, out, _ = run_cli(capsys, "classify", env["clf"], "", "Karov", "--json")
    res = last_json(out)
    assert code == 0 and res["failed"] == 1 and "empty name" in res["results"][0]["error"]
    assert res["results"][1]["top"]


def test_exit_status_is_one_only_when_every_name_failed(env, capsys):
    code, out, err = run_cli(capsys, "classify", env["clf"], "", "😀")
    assert code == 1 and "empty name" in out and "no letter" in out
    assert "none of the 2 names" in one_line_error(code, err)
    code, out, err = run_cli(capsys, "classify", env["clf"], "", "😀", "--json")
    assert code == 1 and all("error" in r for r in last_json(out)["results"])
    with pytest.raises(SystemExit):
        main(["classify", "--help"])
    assert "every name failed" in " ".join(capsys.readouterr().out.split())


def test_missing_run_is_a_clear_error(env, capsys):
    code, _, err = run_cli(capsys, "eval", "no-such-run", "--checkpoints", env["ck"])
    assert "no-such-run" in one_line_error(code, err)


@pytest.mark.parametrize("argv", [["eval"], ["classify", "{}", "Smith"], ["sample"], ["stop"], ["pause"],
                                  ["train", "--resume"], ["compare", "--resume"]])
def test_a_run_name_too_long_for_the_system_is_no_run_in_a_short_line(tmp_path, capsys, argv):
    """`eval xxx…` (256 letters) said "namestudio: error: xxx…: File name too long" (an OSError looking it up)."""
    long = "x" * 256
    argv = [a.format(long) for a in argv] if "{}" in argv else [*argv, long]
    code, _, err = run_cli(capsys, *argv, "--checkpoints", tmp_path)
    msg = one_line_error(code, err)
    assert "no run 'xxxx" in msg or "no experiment 'xxxx" in msg
    assert "File name too long" not in msg and "x" * 50 not in msg        # the name is shortened


def test_unknown_language_is_a_clear_error(env, capsys):
    code, _, err = run_cli(capsys, "sample", env["gen"], "--lang", "Klingon")
    msg = one_line_error(code, err)
    assert "Klingon" in msg and "Slavic" in msg


@pytest.mark.parametrize("option, value, word", [
    ("--top-k", -1, "top-k"), ("--temperature", "nan", "temperature"), ("--temperature", -0.5, "temperature"),
    ("-n", 0, "n must"), ("--max-len", 0, "max-len"),
    ("--temperature", "1e39", "temperature"),                    # past float32: torch's NaN error, called a bug
    ("--seed", -1, "--seed must be ≥ 0 (got -1)"),                 # -1 was taken; 10**30 overflowed in torch;
    ("--seed", 10 ** 30, "--seed must be ≤ 9,223,372,036,854,775,807")])   # worded as train's and data's
def test_bad_sampling_values_are_one_line_errors(env, capsys, option, value, word):
    msg = one_line_error(*run_cli(capsys, "sample", env["gen"], option, value)[::2])
    assert word in msg and "RuntimeError" not in msg and "bug" not in msg


def test_temperature_options_of_the_other_mode_are_said_not_ignored(env, capsys):
    """--temperatures without --table, and --temperature with it, were silently dropped."""
    assert "--table" in one_line_error(*run_cli(capsys, "sample", env["gen"], "--temperatures", "0.5")[::2])
    assert "--temperatures" in one_line_error(*run_cli(capsys, "sample", env["gen"], "--table", "--temperature",
                                                       0.3)[::2])


def test_wrong_run_kind_and_bad_values(env, capsys):
    assert "generate run" in one_line_error(*run_cli(capsys, "sample", env["clf"])[::2])
    assert "temperature" in one_line_error(*run_cli(capsys, "sample", env["gen"], "--temperature", -1)[::2])
    assert "--top" in one_line_error(*run_cli(capsys, "classify", env["clf"], "x", "--top", 0)[::2])


def test_bad_data_source_is_a_clear_error(tmp_path, capsys):
    code, _, err = run_cli(capsys, "data", "--data", tmp_path / "missing")
    assert "missing" in one_line_error(code, err)
    code, _, err = run_cli(capsys, "train", "--data", tmp_path / "missing", "--checkpoints", tmp_path / "ck")
    one_line_error(code, err)


def test_a_device_or_a_pipe_as_data_is_a_clear_error(tmp_path, capsys):
    """/dev/zero was read until the memory ran out, a FIFO waited for ever: neither is a file of names."""
    import os
    (tmp_path / "zero.txt").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "fifo.txt")
    for name in ("zero.txt", "fifo.txt"):
        code, _, err = run_cli(capsys, "data", "--data", tmp_path / name)
        assert "not a regular file" in one_line_error(code, err)


@pytest.mark.parametrize("command", ["train", "compare"])
@pytest.mark.parametrize("nice", [-5, 10 ** 21])
def test_nice_outside_0_to_19_is_a_clear_error_and_starts_nothing(env, tmp_path, capsys, command, nice):
    """A negative --nice raised the priority (as root); a huge one overflowed in os.nice, or in every run of a
    compare, which then blamed a dead trainer."""
    extra = ["--models", "rnn"] if command == "compare" else []
    code, _, err = run_cli(capsys, command, "--data", env["data"], "--epochs", 1, "--nice", nice,
                           "--checkpoints", tmp_path / "ck", *extra)
    assert "--nice" in one_line_error(code, err)
    assert not (tmp_path / "ck").exists() or not any((tmp_path / "ck").iterdir())


def test_compare_with_a_bad_data_source_says_so_and_leaves_no_experiment(tmp_path, capsys):
    """It used to start the experiment, fail every run, print a table and leave the folder behind."""
    code, _, err = run_cli(capsys, "compare", "--data", tmp_path / "missing", "--models", "rnn,gru", "--epochs", 1,
                           "--checkpoints", tmp_path / "ck")
    assert "missing" in one_line_error(code, err)
    assert not (tmp_path / "ck").exists() or not any((tmp_path / "ck").iterdir())


@pytest.mark.parametrize("rows, words", [
    (7, "too few names to split into train and validation"),
    (40, "one language only"),
])
def test_compare_on_data_train_would_refuse_says_so_and_leaves_no_experiment(tmp_path, capsys, rows, words):
    """Data that reads but that train refuses before it builds anything (too few names to split; one language
    for a classifier): compare read it, made the experiment, failed its run ("rnn failed" in the table) and left
    the folder. It checks as train does: one line, no folder, as `train` gives."""
    bad = tmp_path / "bad.csv"
    labels = "tuvwxyz" if rows < 10 else "x"       # 7 languages of one name each: none to spare for validation
    bad.write_text("name,label\n" + "".join(f"{chr(65 + i % 26)}{'ab'[i // 26]}ko,{labels[i % len(labels)]}\n"
                                             for i in range(rows)))
    for command in (["train"], ["compare", "--models", "rnn"]):
        code, _, err = run_cli(capsys, *command, "--data", bad, "--epochs", 1, "--threads", 1,
                               "--checkpoints", tmp_path / "ck")
        assert words in one_line_error(code, err), command
        assert not (tmp_path / "ck").exists() or not any((tmp_path / "ck").iterdir())


@pytest.mark.parametrize("argv, option", [
    (["data", "--data", ""], "--data"),
    (["sample", "GEN", "--out", ""], "--out"),
    (["export", "CLF", "--tensorboard", ""], "--tensorboard"),
    (["report", "CLF", "--out", "OUT", "--names", ""], "--names"),
    (["report", "CLF", "--out", "OUT", "--names", ",,,"], "--names"),
    (["compare", "--models", "rnn", "--epochs", 1, "--names", ",,,", "--checkpoints", "CK"], "--names"),
    (["train", "--resume", "", "--max-steps", 1, "--checkpoints", "CK"], "--resume"),
    (["compare", "--resume", "", "--epochs", 1, "--checkpoints", "CK"], "--resume"),
    (["data", "download", "--url", ""], "--url: give an address")])   # (was: the PyTorch address, online)
def test_an_empty_value_is_said_not_read_as_the_current_folder_or_the_default(env, tmp_path, capsys, argv, option):
    """'' read the current folder (--data), wrote into it (--tensorboard) or nothing at all (--out); ",,," was the
    default names, silently (report, and compare after every run had trained); `--resume ''` (an empty $RUN in
    a script) started a new run or a whole new experiment."""
    subs = {"GEN": env["gen"], "CLF": env["clf"], "OUT": tmp_path / "rep", "CK": tmp_path / "ck"}
    argv = [subs.get(a, a) if isinstance(a, str) else a for a in argv]
    if argv[0] in ("compare", "train"):
        argv += ["--data", env["data"]]
    own = "--checkpoints" in argv or argv[0] == "data"
    code, _, err = run_cli(capsys, *argv, *([] if own else ["--checkpoints", env["ck"]]))
    assert option in one_line_error(code, err)
    assert not (tmp_path / "rep").exists() and not (tmp_path / "ck").exists()


@pytest.mark.parametrize("command", [["train"], ["compare", "--models", "rnn"], ["runs"]])
def test_checkpoints_that_is_a_file_is_said_in_words(env, tmp_path, capsys, command):
    """train said "could not write afile: [Errno 17] File exists", compare "could not create afile: File exists"."""
    (tmp_path / "afile").write_text("x")
    extra = [] if command == ["runs"] else ["--data", env["data"], "--epochs", 1]
    code, _, err = run_cli(capsys, *command, *extra, "--checkpoints", tmp_path / "afile")
    assert "is a file, not a folder" in one_line_error(code, err) and (tmp_path / "afile").read_text() == "x"


@pytest.mark.parametrize("command, option", [(["train"], "--run-dir"), (["train"], "--checkpoints"),
                                             (["compare", "--models", "rnn"], "--checkpoints")])
def test_a_folder_name_too_long_is_a_short_usage_error_naming_the_option(env, tmp_path, capsys, command, option):
    """`train --run-dir /tmp/<256 x's>` printed the raw 256-character path, then ": File name too long". Now a
    usage error (exit 2) that names the option and shows the path cut, as a long run name is cut (resolve_run)."""
    path = tmp_path / ("x" * 256)
    code, _, err = run_cli(capsys, *command, "--data", env["data"], "--epochs", 1, option, path,
                           *(["--checkpoints", tmp_path / "ck"] if option != "--checkpoints" else []))
    line = one_line_error(code, err)
    assert code == 2 and line.startswith(f"namestudio: error: {option} {str(path)[:40]}…: a name in it is 256 "
                                         "characters long") and line.endswith("; give a shorter one"), line
    assert "x" * 41 not in line and "File name too long" not in line and len(line) < 200
    assert not (tmp_path / "ck").exists()


@pytest.mark.parametrize("command, option", [(["sample", "{gen}", "-n", 2], "--out"), (["report", "{clf}"], "--out"),
                                             (["export", "{clf}"], "--tensorboard"), (["data"], "--data"),
                                             (["eval", "{clf}"], "--data"),
                                             (["compare", "--models", "rnn", "--epochs", 1], "--report")])
def test_a_file_name_too_long_is_a_short_usage_error_naming_the_option(env, tmp_path, capsys, command, option):
    """`sample RUN --out /tmp/<256 x's>` (and report --out, export --tensorboard, --data, compare --report) printed
    the raw 256-character path, then ": File name too long", exit 1. Now a usage error (exit 2) naming the option,
    the path cut, before any work: nothing is written."""
    path = tmp_path / ("x" * 256)
    argv = [str(a).format(**env) for a in command]
    code, out, err = run_cli(capsys, *argv, option, path, *(["--checkpoints", tmp_path / "ck"] if argv != ["data"]
                                                            else []))
    line = one_line_error(code, err)
    assert code == 2 and line.startswith(f"namestudio: error: {option} {str(path)[:40]}…: a name in it is 256 "
                                         "characters long") and line.endswith("; give a shorter one"), line
    assert "File name too long" not in line and not out and sorted(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [["--checkpoints", "afile"], ["tui", "--checkpoints", "afile"],
                                  ["--data", "builtin", "--checkpoints", "afile"], ["--checkpoints=afile"]])
def test_the_tui_refuses_checkpoints_that_is_a_file_before_it_starts(tmp_path, capsys, monkeypatch, argv):
    """`namestudio --checkpoints FILE` opened the app on a file (no runs, and a run started there failed), where
    every command refused it up front. Now one line and exit 2, as for a usage error, and no app."""
    import namestudio.tui.app as app_module
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    monkeypatch.setenv("TEXTUAL_DRIVER", "headless")          # as if in a terminal: the app would start
    started = []
    monkeypatch.setattr(app_module, "run_app", lambda **kw: started.append(kw) or 0)
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and started == [] and (tmp_path / "afile").read_text() == "x"
    assert one_line_error(code, err) == "namestudio: error: --checkpoints afile is a file, not a folder"
    import namestudio.tui.cli as cli_module
    monkeypatch.setattr(cli_module, "DEFAULT_CHECKPOINTS", "checkpoints")   # whatever NAMESTUDIO_CHECKPOINTS says
    (tmp_path / "checkpoints").write_text("x")                # the default, a stray file of that name
    code, _, err = run_cli(capsys)
    assert code == 2 and started == [] and "(the default; --checkpoints DIR chooses another)" in err
    code, _, err = run_cli(capsys, "runs", "--checkpoints", "afile")    # the commands: the same line and code
    assert code == 2 and "is a file, not a folder" in one_line_error(code, err)


def test_a_file_named_like_the_default_folder_blocks_only_what_writes_or_lists_runs(env, tmp_path, capsys,
                                                                                       monkeypatch):
    """A stray file `checkpoints` here does not stop `classify /path/to/run` (a review found it did)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "checkpoints").write_text("x")
    code, out, err = run_cli(capsys, "classify", env["clf"], "Nakamura")
    assert code == 0, err
    code, _, err = run_cli(capsys, "runs")
    assert "is a file, not a folder (the default; --checkpoints DIR chooses another)" in one_line_error(code, err)


def test_compare_without_data_trains_on_the_default_source(tmp_path, capsys, monkeypatch):
    """Reading the data first must not turn a missing --data into the source 'None' (a review found it did)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NAMESTUDIO_DATA_DIR", str(tmp_path / "userdata"))   # no downloaded names: the built-in set
    code, out, err = run_cli(capsys, "compare", "--models", "rnn", "--epochs", 1, "--max-steps", 3, "--threads", 1,
                             "--hidden", 8, "--checkpoints", tmp_path / "ck", "--json")
    assert code == 0, err
    assert last_json(out)["runs"][0]["model"] == "rnn"


def test_the_tui_without_a_terminal_is_a_clear_error(tmp_path):
    """`namestudio < /dev/null | cat` started the full-screen UI, which ran unseen until killed."""
    import os
    env = {k: v for k, v in os.environ.items() if k != "TEXTUAL_DRIVER"}
    r = subprocess.run([sys.executable, "-m", "namestudio.tui.cli"], stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=60, cwd=tmp_path, env=env)
    assert r.returncode == 1 and "needs a terminal" in r.stderr and len(r.stderr.strip().splitlines()) == 1


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


def test_more_threads_than_cores_is_said_before_training(env, capsys, monkeypatch, tmp_path):
    import torch
    before = torch.get_num_threads()
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    try:
        code, _, err = run_cli(capsys, "train", "--data", env["data"], "--checkpoints", tmp_path, "--embed", 8,
                               "--hidden", 8, "--max-steps", 1, "--threads", 2, "--json")
    finally:
        torch.set_num_threads(before)
    assert code == 0 and "--threads 2 is more than this machine's 1 core:" in " ".join(err.split())


def test_a_tiny_temperature_samples_as_zero_does(env, capsys):
    runs = {}
    for t in ("0", "1e-50"):
        code, out, _ = run_cli(capsys, "sample", env["gen"], "-n", 4, "--temperature", t, "--seed", 3, "--json")
        assert code == 0
        runs[t] = [s["name"] for s in last_json(out)["samples"]]
    assert runs["1e-50"] == runs["0"]


@pytest.mark.parametrize("json_mode", [False, True])
def test_a_reader_that_closes_the_pipe_ends_the_command_quietly_with_141(env, json_mode):
    """`namestudio sample RUN | head -1`: the rest is not wanted; no error line, exit 141 (as SIGPIPE)."""
    p = subprocess.Popen([sys.executable, "-m", "namestudio.tui.cli", "sample", str(env["gen"]), "-n", "5"]
                         + (["--json"] * json_mode), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()                      # the reader is gone before the first line: every write to it fails
    err = p.stderr.read().decode()
    assert p.wait(60) == 141 and "error" not in err.lower() and "Traceback" not in err


def test_a_checkpoints_folder_it_cannot_write_is_one_line_in_words(env, capsys, tmp_path, monkeypatch):
    ck = tmp_path / "ck"
    ck.mkdir()
    real = Path.mkdir

    def refuse(self, *a, **k):       # a read-only folder (chmod does not stop root, who runs CI)
        if self.parent == ck:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *a, **k)
    monkeypatch.setattr(Path, "mkdir", refuse)
    code, _, err = run_cli(capsys, "train", "--data", env["data"], "--checkpoints", ck, "--epochs", 1, "--threads", 1)
    assert code == 1
    assert err.strip().startswith(f"namestudio: error: could not write {ck}/") and err.strip().endswith(": permission denied")
    assert "Errno" not in err and len(err.strip().splitlines()) == 1


def test_resuming_a_done_run_does_nothing_and_more_epochs_are_recorded_in_its_config(env, capsys, tmp_path):
    import shutil
    run = Path(shutil.copytree(env["clf"], tmp_path / "run"))
    before = {f: (run / f).read_bytes() for f in ("test_metrics.json", "status.json", "config.json")}
    code, out, _ = run_cli(capsys, "train", "--resume", run)
    assert code == 0 and "is done (finished" in out and "nothing to resume" in out
    assert {f: (run / f).read_bytes() for f in before} == before          # not re-tested, nothing rewritten
    code, out, _ = run_cli(capsys, "train", "--resume", run, "--json")
    assert code == 0 and last_json(out)["nothing_to_do"] is True and last_json(out)["run_dir"] == str(run)
    per_epoch = json.loads(before["status.json"])["step"] // 3
    step = f"{json.loads(before['status.json'])['step']:,}"
    # what ends it, and what would train it further: more epochs, or a higher --max-steps where that is the limit
    # (it said "past the 2 steps of 3 epochs and --max-steps 2 … --epochs N with more epochs trains it further")
    for more, says, further in ((["--epochs", 3], "the end of 3 epochs)", "--epochs N with more epochs"),
                                (["--epochs", 1], f"past the {per_epoch} steps of 1 epoch)", "--epochs N with more"),
                                (["--max-steps", 2], f"past the 2 steps --max-steps 2 allows (3 epochs are "
                                                     f"{3 * per_epoch})", f"a --max-steps above {step} (or 0: none)")):
        code, out, _ = run_cli(capsys, "train", "--resume", run, *more, "--threads", 1)
        assert code == 0 and "is done (step" in out and says in out and "nothing to resume" in out, (more, out)
        assert f"nothing to resume; {further}" in out, (more, out)
        assert {f: (run / f).read_bytes() for f in before} == before, more
    step = json.loads(before["status.json"])["step"]
    code, _, _ = run_cli(capsys, "train", "--resume", run, "--epochs", 4, "--threads", 1)
    assert code == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["train"]["epochs"] == 4 and cfg["resumed_with"] == [{"step": step, "epochs": 4}]
    assert json.loads((run / "status.json").read_text())["step"] > step


def test_ctrl_c_inside_a_print_still_stops_the_run_cleanly(env, tmp_path, capsys, monkeypatch):
    """The signal handler printed before it asked the trainer to stop. Landing inside a print of the main thread,
    its own print raised "reentrant call" (a second write to one buffered stream): no stop asked, and the error
    thrown into the run."""
    import os
    import signal
    from rich.console import Console
    real, depth = Console.print, []

    def print_(self, *a, **kw):
        if depth:                                        # as a BufferedWriter re-entered from a signal handler
            raise RuntimeError("reentrant call inside <_io.BufferedWriter name='<stdout>'>")
        depth.append(1)
        try:
            if any("step" in str(x) and "val" in str(x) for x in a):   # the first evaluation line
                os.kill(os.getpid(), signal.SIGINT)                     # the handler runs inside this print
            return real(self, *a, **kw)
        finally:
            depth.pop()
    monkeypatch.setattr(Console, "print", print_)
    code, out, err = run_cli(capsys, "train", "--data", env["data"], "--checkpoints", tmp_path, "--embed", 8,
                             "--hidden", 16, "--epochs", 400, "--batch-size", 16, "--threads", 1, "--eval-every", 5,
                             "--patience", 0)
    assert code == 130, err
    run = next(tmp_path.iterdir())
    from namestudio.engine import runfolder as rf
    assert rf.read_status(run).state == "stopped" and (run / rf.TEST).is_file()


@pytest.mark.parametrize("argv, says", [
    (["train", "--model", "transformer"], "namestudio train: error: argument --model: invalid choice: 'transformer'"),
    (["train", "--modle", "lstm"], "namestudio train: error: unrecognized arguments: --modle lstm"),
    (["sample"], "namestudio sample: error: the following arguments are required: RUN"),
    (["bogus"], "namestudio: error: argument COMMAND: invalid choice: 'bogus'")])
def test_a_usage_error_is_one_line_naming_the_commands_help(argv, says, capsys):
    """argparse printed its whole usage block before the error (28 lines for a bad --model), and an unknown
    option of a command the top-level usage."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and err.startswith(says), err
    assert err.rstrip().endswith(f"(see: {says.split(': error')[0]} --help)"), err


def test_compare_help_offers_models_not_model(capsys):
    """compare refuses --model (it takes --models); its help listed --model among the train options."""
    helptext = build_parser()._subparsers._group_actions[0].choices["compare"].format_help()
    assert "--models M1,M2" in helptext and "[--model " not in helptext and "\n  --model " not in helptext
    assert main(["compare", "--model", "gru"]) == 1
    assert "compare takes --models M1,M2 (a list), not --model" in capsys.readouterr().err


def test_classify_sample_and_eval_on_a_run_in_training_say_it_is_its_best_weights_so_far(env, capsys, tmp_path):
    """classify, sample and eval answered from a run a trainer is at work on without a word (eval's headline read
    "test: accuracy 0.747", a figure that moved seconds later, and its --json said nothing of it either)."""
    import shutil
    import time

    from namestudio.engine import runfolder as rf
    for key, argv in (("clf", ["classify", "RUN", "Karov"]), ("gen", ["sample", "RUN", "-n", "2", "--seed", "0"]),
                      ("clf", ["eval", "RUN"])):
        run = Path(shutil.copytree(env[key], tmp_path / argv[0]))
        argv = [str(run) if a == "RUN" else a for a in argv]
        code, out, _ = run_cli(capsys, *argv)
        assert code == 0 and "being trained" not in out                  # a finished run: no note
        if argv[0] == "eval":
            assert json.loads(run_cli(capsys, *argv, "--json")[1])["being_trained"] is False
        with rf.RunLock(run):                                             # a trainer (this process) at work on it
            rf.write_status(run, rf.RunStatus(state="running", pid=os.getpid(), host=rf.HOST, heartbeat=time.time(),
                                              step=12, total_steps=40))
            code, out, _ = run_cli(capsys, *argv)
            if argv[0] == "eval":
                code_json, out_json, err_json = run_cli(capsys, *argv, "--json")
                assert code_json == 0 and json.loads(out_json)["being_trained"] is True
                assert "is being trained (step 12 of 40)" in err_json
        assert code == 0 and "is being trained (step 12 of 40): these are its best weights so far" in out, out


def test_stop_says_what_the_run_keeps_at_that_moment(tmp_path, capsys):
    """`namestudio stop RUN` said "the best weights are kept and tested" of a run that had trained nothing yet, or
    had no checkpoint: now it says what train's own Ctrl-C says at that moment (runfolder.stop_keeps)."""
    import time

    from namestudio.engine import runfolder as rf
    run = tmp_path / "r1"
    run.mkdir()
    said = []
    for step, weights in ((0, False), (5, False), (5, True)):
        if weights:
            (run / rf.WEIGHTS).write_bytes(b"weights")
        with rf.RunLock(run):                                            # a trainer (this process) at work on it
            rf.write_status(run, rf.RunStatus(state="running", pid=os.getpid(), host=rf.HOST, heartbeat=time.time(),
                                              step=step, total_steps=40))
            code, out, _ = run_cli(capsys, "stop", run)
        assert code == 0 and rf.read_control(run)["command"] == "stop"
        said.append(out.strip())
    assert said == ["r1: asked to stop: no trained step reported yet: the weights it has when it stops are kept and "
                    "tested (nothing, if it has not trained a step)",     # it may train steps before it sees the stop
                    "r1: asked to stop: no checkpoint yet: the current weights are kept and tested",
                    "r1: asked to stop: the best checkpoint so far is kept and tested"]


# ---- `namestudio data`: download again offline, options of the other action, source names, dropped labels ----
ARCHIVE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "names-data.zip"


def unreachable_url() -> str:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/data.zip"          # nothing listens there: connection refused


def test_a_second_download_needs_no_network_when_the_names_are_there(tmp_path, capsys, monkeypatch):
    """Run again while offline, `data download` failed ("cannot reach"), though the names on disk were the
    pinned archive's: it now checks them offline and stops there; --force downloads again."""
    if not ARCHIVE.is_file():
        pytest.skip("shared names-data.zip not present")
    monkeypatch.setenv("NAMESTUDIO_DATA_DIR", str(tmp_path / "home"))
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    code, out, err = run_cli(capsys, "data", "download", "--url", ARCHIVE)
    assert code == 0 and "pytorch-names ready in" in out, err
    folder = tmp_path / "home" / "pytorch-names" / "names"
    for argv in (["--url", unreachable_url()], [], ["--json", "--url", unreachable_url()]):
        code, out, err = run_cli(capsys, "data", "download", *argv)
        words = err if "--json" in argv else out                         # --json: stdout holds the JSON alone
        assert code == 0 and words.startswith(f"pytorch-names already in {folder}: its files are the pinned "
                                              "archive's"), (out, err)
        assert words.rstrip().endswith("nothing downloaded (--force downloads it again)"), words
        if "--json" in argv:
            assert last_json(out) == {"path": str(folder), "source": "pytorch-names", "downloaded": False}
        else:
            assert not err
    code, _, err = run_cli(capsys, "data", "download", "--force", "--url", unreachable_url())
    assert "cannot reach" in one_line_error(code, err)
    assert len(list(folder.glob("*.txt"))) == 18                          # a failed --force keeps what was there
    (folder / "Irish.txt").write_text("Ryan\n", encoding="utf-8")          # no longer the pinned names: fetched again
    code, out, err = run_cli(capsys, "data", "download", "--url", ARCHIVE, "--json")
    assert code == 0 and last_json(out)["downloaded"] is True
    assert "differs from the pinned archive's names" in err              # --json: the words go to stderr
    assert (folder / "Irish.txt").read_bytes() != b"Ryan\n"


@pytest.mark.parametrize("argv, message", [
    (["data", "--url", "http://example.org/data.zip"],
     "--url is for downloading: `namestudio data download --url http://example.org/data.zip`"),
    (["data", "summary", "--force"], "--force is for downloading: `namestudio data download --force`"),
    (["data", "download", "--data", "builtin"], "--data is for the summary (`namestudio data`), not for "
                                                "`namestudio data download`"),
    (["data", "download", "--ascii", "--seed", "0"], "--ascii and --seed are for the summary"),
])
def test_data_options_of_the_other_action_are_refused(tmp_path, capsys, monkeypatch, argv, message):
    """`namestudio data --url URL` printed the summary, the address silently ignored."""
    monkeypatch.setenv("NAMESTUDIO_DATA_DIR", str(tmp_path / "home"))
    code, out, err = run_cli(capsys, *argv)
    assert message in one_line_error(code, err) and not out
    assert not (tmp_path / "home").exists()


@pytest.mark.parametrize("typed, meant", [("Builtin", "builtin"), ("BUILTIN", "builtin"), ("built-in", "builtin"),
                                          ("Pytorch-Names", "pytorch-names"), ("pytorch_names", "pytorch-names"),
                                          ("Names-Dataset?top=5", "names-dataset?top=5")])
def test_a_source_name_in_other_case_or_spelling_is_named(tmp_path, capsys, monkeypatch, typed, meant):
    """`--data Builtin` was read as a path: "dataset source not found: /cwd/Builtin (use 'builtin', …)"."""
    monkeypatch.chdir(tmp_path)
    for command in (["data"], ["train", "--checkpoints", tmp_path / "ck"]):
        code, _, err = run_cli(capsys, *command, "--data", typed)
        assert one_line_error(code, err) == f"namestudio: error: no such file or source {typed!r}; did you mean {meant!r}?"
    assert not (tmp_path / "ck").exists()
    (tmp_path / typed.split("?")[0]).mkdir()                  # a folder of that name is a path, read as ever
    code, _, err = run_cli(capsys, "data", "--data", typed.split("?")[0])
    assert "no <Label>.txt files" in one_line_error(code, err)


def test_builtin_cleaning_names_the_dropped_labels_and_adds_up(capsys):
    """The built-in set's cleaning table said "labels dropped 2" and no more: the ~54 names of those labels were
    in no row, so lines read − duplicates ≠ kept, and which labels, and why, was nowhere."""
    from namestudio.data import builtin
    code, out, _ = run_cli(capsys, "data", "--data", "builtin", "--json")
    s = last_json(out)
    c, dropped = s["cleaning"], s["dropped_labels"]
    assert code == 0 and dropped["why"] == f"under {builtin.MIN_NAMES} names"
    assert len(dropped["labels"]) == c["labels_dropped"] >= 1
    assert sum(dropped["labels"].values()) == c["dropped_small_labels"]
    assert all(n < builtin.MIN_NAMES and label not in s["per_label"] for label, n in dropped["labels"].items())
    assert c["lines_read"] - c["dropped_empty"] - c["dropped_junk"] - c["duplicates_removed"] \
        - c["dropped_small_labels"] == c["kept"] == s["n_pairs"]
    assert list(c)[:2] == ["skipped_multiword", "lines_read"]      # entries never read as lines come first
    code, out, _ = run_cli(capsys, "data", "--data", "builtin")
    table = out[out.index("Cleaning"):]
    assert f"in labels dropped (under {builtin.MIN_NAMES} names)" in table
    for label, n in dropped["labels"].items():
        assert any(line.split()[:1] == [label] and line.split()[-1] == str(n) for line in table.splitlines()), table


def test_train_eval_and_runs_name_the_data_a_run_was_trained_on(env, capsys, tmp_path, monkeypatch):
    """No command said which data a run was trained on: train's header, eval's header and the runs listing now
    name its source as config.json records it (here a folder, by its path; builtin by its name)."""
    import re
    ck = tmp_path / "ck"
    code, out, err = run_cli(capsys, "train", "--data", "builtin", "--checkpoints", ck, "--hidden", 8, "--embed", 8,
                             "--max-steps", 2, "--threads", 1)
    assert code == 0 and re.search(r"^run .* · data builtin · [\d,]+ training rows", out, re.M), out
    code, out, _ = run_cli(capsys, "eval", env["clf"], "--json")
    res = last_json(out)
    assert code == 0 and res["trained_on"] == str(env["data"])
    code, out, _ = run_cli(capsys, "eval", env["clf"])
    assert out.splitlines()[0].startswith(f"{env['clf'].name} · classify · lstm · trained on {env['data']} · test:")
    code, out, _ = run_cli(capsys, "runs", "--checkpoints", env["ck"])         # piped: the whole source
    lines = [line.split("\t") for line in out.strip().splitlines()]
    column = lines[0].index("data")
    assert {row[column] for row in lines[1:]} == {str(env["data"])}
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.chdir(env["data"].parent)                                      # a path shown as the user types it
    code, out, _ = run_cli(capsys, "runs", "--checkpoints", env["ck"])
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out)
    assert code == 0 and re.search(r"^\s*run .* data\s*$", plain, re.M), plain
    rows = [line for line in plain.splitlines() if line.startswith("2")]
    assert rows and all(line.rstrip().endswith(" names") for line in rows), plain


def test_a_runs_data_source_comes_from_its_config():
    from namestudio.engine.runfolder import data_source
    from namestudio.tui.render import data_label
    assert data_source({"data_source": "pytorch-names", "train": {"data": None}}) == "pytorch-names"
    assert data_source({"train": {"data": "/corpora/names.csv"}}) == "/corpora/names.csv"   # an older config
    assert data_source({"train": {}}) is None and data_label(None) == "?"
    assert data_label("builtin", ascii_fold=True) == "builtin (ASCII)"


@pytest.mark.parametrize("start", ["", "   "])
def test_sample_an_empty_start_is_a_one_line_usage_error(env, capsys, start):
    """`sample RUN --start ''` sampled as if no --start had been given, without a word."""
    with pytest.raises(SystemExit) as e:
        main(["sample", str(env["gen"]), "--start", start])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1, err
    assert err.startswith("namestudio sample: error: argument --start:") and "leave --start out" in err, err


def test_sample_start_with_a_letter_the_run_never_saw_gets_a_note(env, capsys):
    """`--start Ж` sampled names beginning 'Zh' (its ASCII fold) with no word that the run never saw 'Ж'."""
    from namestudio.engine.infer import load_run
    assert "Ж" not in load_run(env["gen"]).vocab.stoi
    code, out, _ = run_cli(capsys, "sample", env["gen"], "--start", "Жa", "-n", 2, "--seed", 0)
    notes = [line for line in out.splitlines() if line.startswith("note:")]
    assert code == 0 and notes == ["note: --start 'Жa': this run never saw Ж: read Ж as Zh"], out
    code, out, err = run_cli(capsys, "sample", env["gen"], "--start-letters", "KЖ", "--seed", 0, "--json")
    assert code == 0 and "note: --start-letters 'Ж': this run never saw Ж: read Ж as Zh" in err, err
    assert [s["start"] for s in last_json(out)["samples"]] == ["K", "Zh"]
    code, out, _ = run_cli(capsys, "sample", env["gen"], "--start", "K", "-n", 2, "--seed", 0)
    assert code == 0 and "note:" not in out                       # a prefix in the run's letters: no note
    code, _, err = run_cli(capsys, "sample", env["gen"], "--start", "☃", "-n", 2)
    assert "never saw ☃" in one_line_error(code, err)            # nothing to read it as: an error, as before
    code, _, err = run_cli(capsys, "sample", env["gen"], "--start-letters", "K1")
    assert "start character '1'" in one_line_error(code, err)     # which of them, and 1 is no letter
    for start in ("Жa", "1"):                                        # a classifier: that is what is wrong
        code, out, err = run_cli(capsys, "sample", env["clf"], "--start", start)
        assert "is a classify run" in one_line_error(code, err) and "note:" not in out + err


def test_long_sampling_shows_progress_on_stderr_only_in_a_terminal(env, capsys, monkeypatch):
    """`sample RUN -n 10000` ran for about 40 s with nothing on the screen. A long sampling now shows a bar with
    an ETA on stderr when stderr is a terminal; nothing extra with --json, piped, or for a short sampling."""
    import re

    from namestudio.tui import cli
    monkeypatch.setattr(cli, "SAMPLE_PROGRESS_FROM", 20)         # "long": 20 names and more, here
    monkeypatch.setenv("FORCE_COLOR", "1")                       # stderr (and stdout) count as terminals
    monkeypatch.delenv("NO_COLOR", raising=False)
    code, out, err = run_cli(capsys, "sample", env["gen"], "-n", 20, "--seed", 0)
    plain = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", err)
    assert code == 0 and "sampling 20 names" in plain and "ETA" in plain, err
    names = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", out).splitlines()[:-1]
    assert "sampling" not in out and len(names) == 20 and all(n.endswith(("new", "set", "repeat")) for n in names)
    code, out, err = run_cli(capsys, "sample", env["gen"], "--table", "-n", 5, "--temperatures", "0.5,1")
    assert code == 0 and "sampling 10 names" not in err                 # 10 in all: short
    code, out, err = run_cli(capsys, "sample", env["gen"], "--table", "-n", 10, "--temperatures", "0.5,1")
    assert code == 0 and "sampling 20 names" in re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", err)
    code, out, err = run_cli(capsys, "sample", env["gen"], "-n", 20, "--seed", 0, "--json")
    assert code == 0 and "sampling" not in err and len(last_json(out)["samples"]) == 20
    code, out, err = run_cli(capsys, "sample", env["gen"], "-n", 19, "--seed", 0)
    assert code == 0 and "sampling" not in err
    monkeypatch.delenv("FORCE_COLOR")                            # piped (captured): no bar
    code, out, err = run_cli(capsys, "sample", env["gen"], "-n", 20, "--seed", 0)
    assert code == 0 and err == ""


def test_runs_table_at_80_columns_shows_a_long_data_path_by_its_end():
    import io

    from rich.console import Console

    from namestudio.tui.render import runs_table
    rows = [{"run": "20261207-041046-classify-lstm", "task": "classify", "model": "lstm", "state": "done",
             "test_accuracy": 0.83, "test_macro_f1": 0.6, "best_val_accuracy": 0.84, "train_seconds": 61.2,
             "data": "/srv/shared/corpora/surnames/2024/cleaned/names.csv", "ascii_fold": True},
            {"run": "20261207-051046-classify-gru", "task": "classify", "model": "gru", "state": "done",
             "test_accuracy": 0.8, "test_macro_f1": 0.5, "data": "builtin"}]
    for width in (80, 100):
        con = Console(width=width, file=io.StringIO(), color_system=None)
        con.print(runs_table(rows, width))
        text = con.file.getvalue()
        assert all(len(line) <= width for line in text.splitlines()) and "builtin" in text
        assert "…" in text and "names.csv (ASCII)" in text, text
        assert all(r["run"] in text for r in rows)


def test_ctrl_c_twice_during_train_ends_the_run_stopped_and_untested_never_stopping(env, tmp_path, capsys,
                                                                                   monkeypatch):
    """The second Ctrl-C (here, as the stop tests the best weights) raised out of `train` with status.json left
    at "stopping" for good (`runs` and the TUI then showed a run that no process trains). Now the run ends
    stopped, untested, with its resume point; `train` says so and exits 130."""
    import signal
    from namestudio.engine import runfolder as rf
    from namestudio.engine.train import Trainer
    real_control, real_blend = Trainer._control, Trainer._blend
    calls = []

    def control(self):
        calls.append(1)
        if len(calls) == 3:
            signal.raise_signal(signal.SIGINT)        # the first Ctrl-C: stop cleanly
        return real_control(self)

    def blend(self):
        signal.raise_signal(signal.SIGINT)            # the second: at once
        return real_blend(self)

    monkeypatch.setattr(Trainer, "_control", control)
    monkeypatch.setattr(Trainer, "_blend", blend)
    ck = tmp_path / "ck"
    before = signal.getsignal(signal.SIGINT)      # Python's default, or SIG_IGN when started in the background
    code, out, err = run_cli(capsys, "train", "--data", env["data"], "--checkpoints", ck, "--embed", 8, "--hidden", 16,
                             "--epochs", 50, "--batch-size", 16, "--eval-every", 1, "--threads", 1, "--json")
    assert code == 130, err
    assert signal.getsignal(signal.SIGINT) is before    # the handlers are put back
    run = next(ck.iterdir())
    st = rf.read_status(run)
    assert st.state == "stopped" and not st.live and st.step == 2 and rf.load_resume_point(run)[2]["step"] == 2
    assert rf.read_test(run)["untested"] == rf.NOT_TESTED
    assert "stopped at once, not tested: its resume point at step 2 is kept" in err and "--resume" in err   # --json: words on stderr
    assert last_json(out)["untested"] == rf.NOT_TESTED and last_json(out)["resumable"] is True
    code, out, _ = run_cli(capsys, "runs", "--checkpoints", ck, "--json")
    assert [r["state"] for r in last_json(out)["runs"]] == ["stopped"]


@pytest.mark.parametrize("at_control, eval_every, says", [
    (1, 1, "stopping: nothing trained yet: no weights to keep, nothing to test (Ctrl-C again: at once)"),
    (3, 1000, "stopping: no checkpoint yet: the current weights are kept and tested (Ctrl-C again: at once, "
              "untested)"),
    (3, 1, "stopping: the best checkpoint so far is kept and tested (Ctrl-C again: at once, untested)")])
def test_ctrl_c_says_what_the_stop_keeps_at_that_moment(env, tmp_path, capsys, monkeypatch, at_control, eval_every,
                                                       says):
    """A Ctrl-C before the first step said "stopping: keeping the best checkpoint (Ctrl-C again: at once,
    untested)", though there was none, then "test none: stopped before any training: …". Now the line says what
    the stop keeps at that moment, and a run stopped before any training says so in one plain line."""
    import signal
    from namestudio.engine import runfolder as rf
    from namestudio.engine.train import Trainer
    real_control, calls = Trainer._control, []

    def control(self):
        calls.append(1)
        if len(calls) == at_control:
            signal.raise_signal(signal.SIGINT)
        return real_control(self)

    monkeypatch.setattr(Trainer, "_control", control)
    code, out, err = run_cli(capsys, "train", "--data", env["data"], "--checkpoints", tmp_path / "ck", "--embed", 8,
                             "--hidden", 16, "--epochs", 50, "--batch-size", 16, "--eval-every", eval_every,
                             "--threads", 1, "--json", "--lm-order", 0)
    assert code == 130, err
    assert says in err and "keeping the best" not in err and "test none" not in err, err
    if at_control == 1:
        assert f"\n{rf.UNTRAINED} · " in err and "testing" not in err and last_json(out)["untested"] == rf.UNTRAINED
    else:
        kept = "the best" if eval_every == 1 else "the current"
        assert f"stopping: testing {kept} weights" in err and last_json(out)["test_accuracy"] is not None


def test_resuming_a_run_stopped_before_it_saved_its_settings_says_what_starts_it_again(tmp_path, capsys):
    """compare stopped as a run started leaves a stopped status and nothing else: `train --resume` said
    "config.json: missing", as if the run were damaged."""
    import time

    from namestudio.engine import runfolder as rf
    exp = tmp_path / "exp-1"
    (exp / "gru").mkdir(parents=True)
    rf.atomic_write_json(exp / "experiment.json", {"task": "classify", "runs": [{"dir": "gru", "model": "gru"}]})
    rf.write_status(exp / "gru", rf.RunStatus(state="stopped", reason="stopped", pid=1, host=rf.HOST,
                                              started=time.time()))
    code, _, err = run_cli(capsys, "train", "--resume", exp / "gru")
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "was stopped before it saved its settings: nothing to resume" in err
    assert "namestudio compare --resume" in err and "exp-1" in err
    (exp / "experiment.json").unlink()            # a run of its own: trained afresh
    code, _, err = run_cli(capsys, "train", "--resume", exp / "gru")
    assert code == 1 and "train it afresh" in err


class _Killed(BaseException):
    """A SIGKILL, in process: nothing of the trainer's own end runs (not an Exception, not a KeyboardInterrupt)."""


@pytest.mark.parametrize("heartbeat_at", [6, 10], ids=["heartbeat-before-the-resume-point", "heartbeat-past-it"])
def test_a_killed_runs_progress_in_runs_is_where_train_resume_continues(heartbeat_at, tmp_path, capsys, monkeypatch):
    """A run killed at step 10, its last resume point saved at step 8 (an evaluation), its last heartbeat at step
    6 (killed just after the point was saved, before the next heartbeat) or 10 (the steps since the point are
    lost): `runs` said the heartbeat's step (6 or 10); it says 8, the step `train --resume` continues from."""
    from namestudio.data import load_dataset
    from namestudio.engine import runfolder as rf
    from namestudio.engine.config import TrainConfig
    from namestudio.engine.events import Step
    from namestudio.engine.train import Trainer

    ck = tmp_path / "ck"
    data = write_names_folder(tmp_path / "names")
    cfg = TrainConfig(task="classify", model="lstm", embed=8, hidden=16, epochs=4, batch_size=16, lr=1e-2,
                      log_every=1, eval_every=4, patience=0, lm_order=0, threads=1, seed=0, data=str(data))
    monkeypatch.setattr(rf.RunWriter, "start_heartbeat", lambda self: None)   # heartbeats only where said below

    def sink(e):
        if isinstance(e, Step) and e.step == heartbeat_at:
            trainer.writer.write()                     # a heartbeat: status.json at this step
        if isinstance(e, Step) and e.step == 10:
            raise _Killed

    trainer = Trainer(cfg, ck, [sink], dataset=load_dataset(str(data)))
    with pytest.raises(_Killed):
        trainer.run()
    run = trainer.run_dir
    assert rf.read_json(run / rf.STATUS)["step"] == heartbeat_at and rf.load_resume_point(run)[2]["step"] == 8
    monkeypatch.setattr(rf, "pid_alive", lambda pid: False)     # its process is gone
    spe = trainer.steps_per_epoch
    code, out, _ = run_cli(capsys, "runs", "--checkpoints", ck, "--json")
    row = json.loads(out)["runs"][0]
    assert code == 0 and row["state"] == "stale" and row["resumable"]
    assert (row["step"], row["epoch"]) == (8, round(8 / spe, 4))
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    code, out, _ = run_cli(capsys, "runs", "--checkpoints", ck)
    assert code == 0 and f"\t8/{trainer.total_steps} " in out.splitlines()[1]     # the progress column
    monkeypatch.undo()
    code, _, err = run_cli(capsys, "train", "--resume", run, "--checkpoints", ck, "--max-steps", 9, "--json")
    assert code == 0 and f"resumes from step 8 of 9 (epoch {8 / spe:.2f})" in err
    assert [r["step"] for r in rf.read_jsonl(run / rf.STEPS)] == list(range(1, 10))   # it went on from step 8


@pytest.mark.parametrize("module", ["namestudio.tui.cli", "namestudio"])
def test_a_ctrl_c_while_the_command_imports_is_one_line_not_a_traceback(tmp_path, module):
    """Ctrl-C in the first second of `python -m namestudio.tui.cli train ...` (`train --nproc`'s launcher and its
    ranks start so), while the command still imported its data module, printed a KeyboardInterrupt traceback
    through numpy's imports; it says "namestudio: interrupted" and exits 130, as a Ctrl-C a moment later does."""
    proc = _ctrl_c_while_importing(tmp_path, ["-m", module])
    assert proc.returncode == 130 and proc.stderr == "namestudio: interrupted\n" and not proc.stdout, proc.stderr


def test_the_console_script_says_a_ctrl_c_while_it_imports_in_one_line(tmp_path):
    """The installed `namestudio` (pyproject's [project.scripts] entry) printed a KeyboardInterrupt traceback
    for a Ctrl-C in its first second, while it still imported tui/cli.py's modules: the script imported the
    entry's module before any guard. Its entry now imports the command inside one: "namestudio: interrupted",
    exit 130. Run as the script runs it (the entry named in pyproject.toml, imported, then called), held as the
    command imports numpy."""
    import re
    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    module, func = re.search(r'^namestudio\s*=\s*"([\w.]+):(\w+)"', text, re.M).groups()
    proc = _ctrl_c_while_importing(tmp_path, ["-c", f"import sys; from {module} import {func}; sys.exit({func}())"])
    assert proc.returncode == 130 and proc.stderr == "namestudio: interrupted\n" and not proc.stdout, proc.stderr
    from namestudio.tui import cli
    assert callable(cli.main)            # namestudio.tui.cli:main is there for whoever calls it, as before


def _ctrl_c_as_in_a_terminal() -> None:
    """SIGINT as a terminal's shell gives it to a command (default: Python raises KeyboardInterrupt), whatever this
    test run inherited: a run started in the background of a non-interactive shell has it ignored, and Python keeps
    an ignored SIGINT ignored (the command then never hears the Ctrl-C the test sends)."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _ctrl_c_while_importing(tmp_path, python_args):
    """`python PYTHON_ARGS runs --checkpoints …` held as it imports numpy, then a Ctrl-C: the finished process."""
    import signal
    import time
    env = hold_at(tmp_path, "numpy")      # the command held as it imports numpy (namestudio.data does)
    proc = subprocess.Popen([sys.executable, *python_args, "runs", "--checkpoints", str(tmp_path / "ck")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_ctrl_c_as_in_a_terminal)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "held").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert (tmp_path / "held").exists(), proc.communicate(timeout=60)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_data_says_when_train_would_refuse_the_source_as_too_small_to_split(tmp_path, capsys):
    """`data` showed a 4 / 0 / 0 split without a word, and `train` then refused the source."""
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    (tiny / "A.txt").write_text("Anna\nBert\n")
    (tiny / "B.txt").write_text("Xu\nLi\n")
    code, out, _ = run_cli(capsys, "data", "--data", tiny)
    assert code == 0 and "too few names to split into train and validation: `namestudio train` refuses" in \
        " ".join(out.split()), out
    code, out, _ = run_cli(capsys, "data", "--data", write_names_folder(tmp_path / "more"))
    assert code == 0 and "too few names" not in out
    import json as _json                        # --json says it too (it dropped the note)
    code, out, _ = run_cli(capsys, "data", "--data", tiny, "--json")
    assert code == 0 and any("too few names to split" in n for n in _json.loads(out.strip().splitlines()[-1])["notes"])
    code, out, _ = run_cli(capsys, "data", "--data", tmp_path / "more", "--json")
    assert code == 0 and _json.loads(out.strip().splitlines()[-1])["notes"] == []


def test_runs_of_a_run_folder_says_it_is_one_and_where_it_is_listed(env, capsys, monkeypatch):
    """`runs --checkpoints RUN_FOLDER` said only "no runs under …"."""
    monkeypatch.chdir(env["ck"].parent)
    code, out, _ = run_cli(capsys, "runs", "--checkpoints", env["clf"])
    assert code == 0 and f"it is a run folder itself; `namestudio runs --checkpoints {env['ck'].name}` lists it" in out, out
    code, out, _ = run_cli(capsys, "runs", "--checkpoints", "nothere")
    assert "no runs under nothere (no such folder yet)" in out and "run folder" not in out


def test_data_tells_the_splits_rows_from_its_unique_names(env, capsys):
    """`data` titled its split counts "Split by unique name" and showed rows (14400 for the names data), which
    read as 14400 unique names; it now gives both, each named."""
    import json as _json
    code, out, _ = run_cli(capsys, "data", "--data", env["data"], "--json")
    split = _json.loads(out.strip().splitlines()[-1])["split"]
    code, out, _ = run_cli(capsys, "data", "--data", env["data"])
    lines = {line.split("│")[0].strip(): [c.strip() for c in line.split("│")[1:]]
             for line in out.splitlines() if "│" in line and line.split("│")[0].strip() in ("rows", "names")}
    assert lines["rows"] == [str(split["counts"][k]) for k in ("train", "val", "test")], out
    assert lines["names"] == [str(split["names"][k]) for k in ("train", "val", "test")], out
