"""The run-folder format 2 readers and writers (engine/runfolder.py), without training."""
import re
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from namestudio.engine import runfolder as rf
from namestudio.engine.events import Done, Eval, Failed, Started, Step


def make_run(root, name, task="classify", **status):
    d = root / name
    d.mkdir(parents=True)
    rf.atomic_write_json(d / rf.CONFIG, {"format": 2, "train": {"task": task, "model": "lstm"}, "n_params": 10})
    if status:
        rf.write_status(d, rf.RunStatus(**status))
    if status.get("state") in ("done", "stopped"):   # a finished run has its weights; so has a stopped one that
        give_weights(d)                              # was tested (these tests give it test figures)
    return d


def give_weights(d):
    from safetensors.torch import save_file
    import torch
    save_file({"w": torch.zeros(2)}, str(d / rf.WEIGHTS))


def dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# ---- Tail -------------------------------------------------------------------------------------------
def test_tail_reads_only_new_lines_and_waits_for_a_partial_line(tmp_path):
    p = tmp_path / "steps.jsonl"
    t = rf.Tail(p)
    assert t.read_new() == []            # no file yet
    p.write_bytes(b'{"step": 1}\n{"step": 2}\n{"st')
    assert [r["step"] for r in t.read_new()] == [1, 2]
    assert t.read_new() == []            # nothing new: the half line is held back
    with open(p, "ab") as f:
        f.write(b'ep": 3}\n')
    assert t.read_new() == [{"step": 3}]  # completed: read once, whole
    with open(p, "ab") as f:
        f.write(b'[1, 2]\n{"step": 4}\n')
    assert t.read_new() == [{"step": 4}] and t.bad_lines == 1  # a non-object line is skipped, not returned


def test_tail_starts_again_when_the_file_shrinks_or_is_replaced(tmp_path):
    p = tmp_path / "metrics.jsonl"
    p.write_text('{"step": 1}\n{"step": 2}\n{"step": 3}\n')
    t = rf.Tail(p)
    assert len(t.read_new()) == 3 and not t.restarted
    rf.rewrite_jsonl(p, [{"step": 1}])           # a resume cuts the log back (atomic replace: new inode)
    assert t.read_new() == [{"step": 1}] and t.restarted
    p.write_text("")                             # truncated in place
    assert t.read_new() == [] and t.restarted
    p.write_text('{"step": 9}\n')
    assert t.read_new() == [{"step": 9}]


def test_read_jsonl_skips_a_torn_last_line(tmp_path):
    p = tmp_path / "metrics.jsonl"
    p.write_text('{"step": 1}\n{"step": 2}\n{"step": ')
    assert [r["step"] for r in rf.read_jsonl(p)] == [1, 2]


# ---- status -----------------------------------------------------------------------------------------
def test_status_of_a_dead_local_trainer_is_stale_at_once(tmp_path):
    d = make_run(tmp_path, "r1", state="running", pid=dead_pid(), host=rf.HOST, heartbeat=time.time())
    st = rf.read_status(d)
    assert st.stale and not st.live and st.state == "running"


def test_status_with_a_held_lock_and_a_live_pid_is_live(tmp_path):
    d = make_run(tmp_path, "r1", state="paused", pid=os.getpid(), host=rf.HOST, heartbeat=time.time() - 100)
    with rf.RunLock(d):
        st = rf.read_status(d)
        assert st.live and not st.stale and st.state == "paused"
    # the lock is free and the heartbeat is old: the pid must belong to someone else now
    assert rf.read_status(d).stale
    # a fresh heartbeat with the pid alive is still live, lock or not (a launcher's "starting" record)
    rf.write_status(d, rf.RunStatus(state="starting", pid=os.getpid(), host=rf.HOST, heartbeat=time.time()))
    assert rf.read_status(d).live
    # a launched child slower than 15 s to import torch and lock the run was stale (and `stop` refused it)
    assert rf.read_status(d, now=time.time() + 60).live
    assert rf.read_status(d, now=time.time() + rf.STARTING_GRACE + 5).stale     # not for ever
    rf.write_status(d, rf.RunStatus(state="starting", pid=dead_pid(), host=rf.HOST, heartbeat=time.time()))
    assert rf.read_status(d).stale                                              # its pid gone: at once


def test_status_from_another_host_is_stale_only_by_heartbeat_age(tmp_path):
    d = make_run(tmp_path, "r1", state="running", pid=dead_pid(), host="elsewhere", heartbeat=time.time() - 5)
    assert rf.read_status(d).live                          # its pid means nothing here
    assert rf.read_status(d, now=time.time() + 20).stale   # 25 s without a heartbeat


def test_finished_and_format_1_runs(tmp_path):
    d = make_run(tmp_path, "r1", state="done", pid=dead_pid(), host=rf.HOST, reason="finished")
    st = rf.read_status(d)
    assert st.state == "done" and not st.live and not st.stale
    old = make_run(tmp_path, "r2")
    assert rf.read_status(old).state == "incomplete"
    rf.atomic_write_json(old / rf.TEST, {"test": {}, "reason": "cancelled"})   # as format-1 versions wrote it
    assert rf.read_status(old).state == "stopped" and rf.read_status(old).reason == "stopped"


# ---- the lock ---------------------------------------------------------------------------------------
def test_a_second_lock_on_a_run_is_refused_with_the_holders_pid(tmp_path):
    d = make_run(tmp_path, "r1")
    with rf.RunLock(d):
        with pytest.raises(rf.RunFolderError, match=f"run r1 is being trained by pid {os.getpid()}"):
            rf.RunLock(d).acquire(tries=1)
        assert not rf.lock_is_free(d)
    assert rf.lock_is_free(d)
    rf.RunLock(d).acquire().release()


# ---- listing and resolving --------------------------------------------------------------------------
@pytest.mark.parametrize("damage", [
    ("test_metrics.json", '{"test": '), ("test_metrics.json", "[1, 2]"), ("config.json", "[]"),
    ("metrics.jsonl", '{"step": 1, "val": {}}\n[3]\n'), ("status.json", '"running"'),
    ("metrics.jsonl", '{"step": 1, "val": [1]}\n'),
])
def test_one_damaged_run_lists_with_an_error_and_the_others_list(tmp_path, damage):
    make_run(tmp_path, "20260101-000000-classify-lstm", state="done", reason="finished", host=rf.HOST)
    bad = make_run(tmp_path, "20260102-000000-classify-lstm", state="done", reason="finished", host=rf.HOST)
    make_run(tmp_path, "20260103-000000-classify-lstm", state="done", reason="finished", host=rf.HOST)
    (bad / damage[0]).write_text(damage[1])
    rows = rf.list_runs(tmp_path)
    assert [r["run"] for r in rows] == ["20260103-000000-classify-lstm", "20260102-000000-classify-lstm",
                                        "20260101-000000-classify-lstm"]
    assert damage[0] in rows[1]["error"] and "\n" not in rows[1]["error"]
    assert "error" not in rows[0] and "error" not in rows[2] and rows[0]["state"] == "done"


def test_a_listing_reads_each_file_once_per_version_and_sees_every_change(tmp_path, monkeypatch):
    """The TUI lists every run every 2 s: an unchanged metrics.jsonl is not parsed again, and an appended line,
    a rewritten file or a damage made after a good listing shows at the next listing."""
    d = make_run(tmp_path, "20260101-000000-classify-lstm", state="done", reason="finished", host=rf.HOST)
    rf.append_jsonl(d / rf.METRICS, {"step": 10, "val": {"accuracy": 0.5}})
    parsed = []
    real = rf.read_jsonl
    monkeypatch.setattr(rf, "read_jsonl", lambda path, strict=False: parsed.append(path) or real(path, strict))
    assert rf.list_runs(tmp_path)[0]["best_val_accuracy"] == 0.5
    assert rf.list_runs(tmp_path)[0]["best_val_accuracy"] == 0.5
    assert parsed == [d / rf.METRICS]                                    # the second listing parsed nothing
    rf.append_jsonl(d / rf.METRICS, {"step": 20, "val": {"accuracy": 0.75}})
    assert rf.list_runs(tmp_path)[0]["best_val_accuracy"] == 0.75        # appended: read again
    rf.atomic_write_json(d / rf.TEST, {"test": {"accuracy": 0.7}, "reason": "finished"})
    assert rf.list_runs(tmp_path)[0]["test_accuracy"] == 0.7
    rf.atomic_write_json(d / rf.TEST, {"test": {"accuracy": 0.6}, "reason": "finished"})   # same size, new file
    assert rf.list_runs(tmp_path)[0]["test_accuracy"] == 0.6
    (d / rf.CONFIG).write_text("[]")
    for _ in range(2):                                                   # a damage is never kept as a good read
        assert rf.list_runs(tmp_path)[0]["state"] == "damaged"


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_a_finished_run_whose_weights_are_missing_or_cut_lists_as_damaged(tmp_path, damage):
    d = make_run(tmp_path, "20260101-000000-classify-lstm", state="done", reason="finished", host=rf.HOST)
    w = d / rf.WEIGHTS
    if damage == "missing":
        w.unlink()
    else:
        w.write_bytes(w.read_bytes()[:-3])
    row = rf.list_runs(tmp_path)[0]
    assert row["state"] == "damaged" and rf.WEIGHTS in row["error"] and ("no such" in row["error"] or "truncated" in row["error"])


def test_list_runs_rows_carry_state_progress_and_resumability(tmp_path):
    d = make_run(tmp_path, "a", state="running", pid=dead_pid(), host=rf.HOST, heartbeat=time.time(),
                 step=40, total_steps=100, epoch=2.0)
    import torch
    rf.save_resume_point(d, 40, {"w": torch.ones(2)}, {"optimizer": {}}, {"best": None})
    row = rf.list_runs(tmp_path)[0]
    assert row["state"] == "stale" and row["step"] == 40 and row["total_steps"] == 100 and row["resumable"]


def test_a_stale_or_stopped_runs_progress_is_its_resume_point_read_without_its_tensors(tmp_path, monkeypatch):
    """A killed run's status is its last heartbeat's: step 30 (before its last resume point, 40) or 55 (past it).
    The listing showed that step; it shows the resume point's, where `train --resume` continues, read from
    resume.json (its step and epoch), never from the weights or the optimizer state."""
    import torch
    lag = make_run(tmp_path, "lag", state="running", pid=dead_pid(), host=rf.HOST, heartbeat=time.time(),
                   step=30, total_steps=100, epoch=1.5)
    lead = make_run(tmp_path, "lead", state="running", pid=dead_pid(), host=rf.HOST, heartbeat=time.time(),
                    step=55, total_steps=100, epoch=2.75)
    stopped = make_run(tmp_path, "stopped", state="stopped", reason="stopped", host=rf.HOST, step=55,
                       total_steps=100, epoch=2.75)
    failed = make_run(tmp_path, "failed", state="failed", error="loss became nan", host=rf.HOST, step=55,
                      total_steps=100, epoch=2.75)
    live = make_run(tmp_path, "live", state="running", pid=os.getpid(), host=rf.HOST, heartbeat=time.time(),
                    step=55, total_steps=100, epoch=2.75)
    for d in (lag, lead, stopped, failed, live):
        rf.save_resume_point(d, 40, {"w": torch.ones(2)}, {"optimizer": {}}, {"best": None}, epoch=40 / 20)

    def no_tensors(*a, **k):
        raise AssertionError("a listing loaded tensors")

    monkeypatch.setattr(rf, "load_weights", no_tensors)
    monkeypatch.setattr(rf, "load_torch", no_tensors)
    rows = {r["run"]: r for r in rf.list_runs(tmp_path)}
    for name in ("lag", "lead", "stopped"):
        assert (rows[name]["step"], rows[name]["epoch"]) == (40, 2.0), name
    assert rows["lag"]["state"] == rows["lead"]["state"] == "stale"
    assert (rows["failed"]["step"], rows["live"]["step"]) == (55, 55)   # where it failed; a live run's own
    assert rf.resume_progress(lead) == (40, 2.0) and rf.shown_progress(live, rf.read_status(live)) == (55, 2.75)
    from namestudio.tui.panes.runs import state_cell
    from namestudio.tui.render import run_cells
    assert str(state_cell(rows["lag"])) == "stale at 40" and run_cells(rows["lead"])["progress"] == "40/100 40%"


def test_the_resume_point_of_an_older_run_folder_reads_as_well(tmp_path):
    """Run folders written before resume.json recorded the epoch (format 2), and format-1 folders (state.json
    in the run folder, no resume.json): the step, and the epoch from the run's steps per epoch where it can tell."""
    import torch
    d = make_run(tmp_path, "old", state="running", pid=dead_pid(), host=rf.HOST, heartbeat=time.time(), step=30,
                 total_steps=100, epoch=1.5)
    rf.save_resume_point(d, 40, {"w": torch.ones(2)}, {"optimizer": {}}, {"best": None})     # no epoch given
    assert "epoch" not in rf.read_json(d / rf.RESUME)
    assert rf.resume_progress(d) == (40, 2.0)                           # 20 steps an epoch, as its status says
    rf.write_status(d, rf.RunStatus(state="running", pid=dead_pid(), host=rf.HOST, heartbeat=time.time(),
                                    total_steps=100))                   # no step in the status: its config's
    rf.atomic_write_json(d / rf.CONFIG, {"format": 2, "train": {"task": "classify", "epochs": 5}, "labels": ["a", "b"],
                                         "vocab": ["a"]})
    assert rf.resume_progress(d) == (40, 2.0)
    ptr = rf.read_json(d / rf.RESUME)
    rf.atomic_write_json(d / rf.RESUME, {"dir": ptr["dir"]})            # no step either: its state.json's
    assert rf.resume_progress(d)[0] == 40
    one = tmp_path / "format1"
    one.mkdir()
    rf.atomic_write_json(one / rf.STATE, {"step": 12})
    rf.save_weights({"w": torch.ones(1)}, one / rf.LAST)
    assert rf.resume_progress(one) == (12, None)                        # no status, no config: no epoch to tell
    rf.atomic_write_json(d / rf.RESUME, {"dir": "elsewhere"})
    assert rf.resume_progress(d) is None and rf.resume_progress(tmp_path / "none") is None
    assert {r["run"]: r for r in rf.list_runs(tmp_path)}["old"]["step"] == 0   # damaged resume.json: listed, not raised


@pytest.mark.parametrize("task,blend,best", [
    ("classify", None, 0.83),                                                             # the network alone
    ("classify", {"weight": 0.5, "val_after": {"accuracy": 0.85}}, 0.85),                  # the blend is kept
    ("classify", {"weight": 0.0, "val_after": {"accuracy": 0.83}}, 0.83),                  # the network chosen
    ("classify", {"weight": 0.5, "val_after": [1]}, 0.83),                                 # damaged: ignored
    ("generate", {"lm_weight": 0.45, "val_nll_after": 1.74}, 1.74),                       # one pair (older runs)
    ("generate", {"lm_weight": [0.3, 0.45], "val_nll_after": 1.73}, 1.73),                # a pair by position
    ("generate", {"lm_weight": [0.0, 0.0], "val_nll_after": 1.7}, 1.8),                   # the network chosen
    ("generate", {"why": "no validation names"}, 1.8),
])
def test_a_runs_best_validation_figure_is_that_of_the_model_it_keeps(tmp_path, task, blend, best):
    d = make_run(tmp_path, "20260101-000000-x", state="done", reason="finished", host=rf.HOST)
    key = "accuracy" if task == "classify" else "nll"
    cfg = json.loads((d / rf.CONFIG).read_text()) if (d / rf.CONFIG).is_file() else {}
    cfg.setdefault("train", {})["task"] = task
    (d / rf.CONFIG).write_text(json.dumps(cfg))
    (d / rf.METRICS).write_text("".join(json.dumps({"step": s, "val": {key: v}}) + "\n"
                                        for s, v in ((1, 0.8 if task == "classify" else 1.9),
                                                     (2, 0.83 if task == "classify" else 1.8))))
    test = {"accuracy": 0.86} if task == "classify" else {"nll": 1.75}
    if blend is not None:     # its lm.safetensors as saved before it carried what was chosen: the record says
        test["lm_blend"] = blend
        from helpers import blend_file_as_before
        blend_file_as_before(d)
    (d / rf.TEST).write_text(json.dumps({"test": test, "reason": "finished"}))
    assert rf.list_runs(tmp_path)[0]["best_val_" + key] == best


def test_resolve_run_by_any_unique_substring_and_ambiguity_counts_the_rest(tmp_path):
    for i in range(8):
        make_run(tmp_path, f"20260101-08{i:02d}13-classify-lstm")
    make_run(tmp_path, "20260101-090000-generate-gru")
    assert rf.resolve_run("080313", tmp_path).name == "20260101-080313-classify-lstm"
    assert rf.resolve_run("gru", tmp_path).name == "20260101-090000-generate-gru"
    assert rf.resolve_run(tmp_path / "20260101-090000-generate-gru") == tmp_path / "20260101-090000-generate-gru"
    with pytest.raises(rf.RunFolderError, match=r"ambiguous: .* … and 3 more"):
        rf.resolve_run("classify", tmp_path)
    with pytest.raises(rf.RunFolderError, match="no run 'nope'"):
        rf.resolve_run("nope", tmp_path)


def test_a_new_runs_folder_is_new_empty_or_a_launchers_never_one_with_the_users_files(tmp_path):
    """`train --run-dir` took any folder that held no run: a data folder (English.txt, German.txt) or `~` got
    config.json, model.safetensors, resume-N/ and split.json among its files. Now such a folder is refused in one
    line and left as it was; a new or empty folder, one a launcher prepared (TUI, compare, `train --nproc`), and
    one a run stopped before its settings left (a stopped status) are taken."""
    data = tmp_path / "names"
    data.mkdir()
    for f in ("English.txt", "German.txt"):
        (data / f).write_text("Smith\n")
    with pytest.raises(rf.RunFolderError) as e:
        rf.prepare_run_dir(data)
    assert str(e.value) == (f"{data}: holds files that are not a run's (English.txt, German.txt); --run-dir takes a "
                            "new or empty folder: give another")
    assert sorted(p.name for p in data.iterdir()) == ["English.txt", "German.txt"]
    for i in range(5):
        (data / f"more{i}.txt").write_text("x")
    with pytest.raises(rf.RunFolderError, match=r"\(English.txt, German.txt, more0.txt … and 4 more\)"):
        rf.prepare_run_dir(data)
    assert rf.prepare_run_dir(tmp_path / "new" / "run").is_dir()           # created, parents too
    (tmp_path / "empty").mkdir()
    assert rf.prepare_run_dir(tmp_path / "empty") == tmp_path / "empty"
    launched = tmp_path / "launched"                                    # what a launcher puts there first
    launched.mkdir()
    for f in (rf.LOG, rf.STATUS, rf.LOCK, rf.CONTROL, f".{rf.STATUS}.abc123.tmp"):
        (launched / f).write_text("")
    assert rf.prepare_run_dir(launched) == launched
    (launched / rf.CONFIG).write_text("{}")                              # a run: train --resume it
    with pytest.raises(rf.RunFolderError, match="already holds a run \\(config.json\\); use `train --resume`"):
        rf.prepare_run_dir(launched)


# ---- events <-> records -----------------------------------------------------------------------------
def test_events_round_trip_through_records():
    s = Step(step=20, epoch=1.5, loss=0.75, names_per_s=1234.5, elapsed=3.25, eta=9.0, total_steps=100, lr=0.004)
    assert rf.record_to_event("step", json.loads(json.dumps(rf.event_to_record(s)))) == s
    metrics = {"loss": 0.5, "accuracy": 0.75, "n": 4, "confusion": [[3, 1], [0, 0]],
               "per_class": {"A": {"precision": 1.0, "recall": 0.75, "f1": 0.857, "support": 4}}}
    e = Eval(step=20, epoch=1.5, train_loss=0.6, metrics=metrics, best=True, elapsed=3.5)
    back = rf.record_to_event("eval", json.loads(json.dumps(rf.event_to_record(e))))
    assert back.metrics["confusion"] == [[3, 1], [0, 0]] and back.metrics["accuracy"] == 0.75
    assert back.metrics["per_class"] == metrics["per_class"] and back.best and back.step == 20
    assert back.metrics["confusion_normalized"] == [[0.75, 0.25], [0.0, 0.0]]
    with pytest.raises(rf.RunFolderError):
        rf.record_to_event("step", {"epoch": 1})


def test_the_writer_turns_events_into_files(tmp_path):
    w = rf.RunWriter(tmp_path, heartbeat_every=0.05)
    w(Started(run_dir=str(tmp_path), config={}, labels=["A"], total_steps=10, steps_per_epoch=5, n_train=50,
              device="cpu"))
    assert rf.read_status(tmp_path).state == "running"
    w(Step(step=2, epoch=0.4, loss=1.0, names_per_s=10, elapsed=1, eta=4, total_steps=10))
    w(Eval(step=5, epoch=1.0, train_loss=0.9, metrics={"nll": 1.0, "perplexity": 2.7}, best=True, elapsed=2))
    beat = rf.read_json(tmp_path / rf.STATUS)["heartbeat"]
    deadline = time.time() + 5
    while rf.read_json(tmp_path / rf.STATUS)["heartbeat"] == beat and time.time() < deadline:
        time.sleep(0.02)
    assert rf.read_json(tmp_path / rf.STATUS)["heartbeat"] > beat   # the heartbeat thread rewrites it
    w(Failed(message="boom"))
    st = rf.read_status(tmp_path)
    assert st.state == "failed" and st.error == "boom" and st.step == 5
    assert [r["step"] for r in rf.read_jsonl(tmp_path / rf.STEPS)] == [2]
    assert rf.read_jsonl(tmp_path / rf.METRICS)[0]["val"] == {"nll": 1.0, "perplexity": 2.7}
    w2 = rf.RunWriter(tmp_path)
    w2(Done(run_dir=str(tmp_path), test_metrics={"nll": 1.0}, train_seconds=2.0, reason=rf.STOPPED, steps=7))
    assert rf.read_status(tmp_path).state == "stopped"
    assert rf.read_json(tmp_path / rf.TEST)["steps"] == 7


# ---- control and logs -------------------------------------------------------------------------------
def test_resume_hints_name_a_folder_that_resolves_from_here_under_any_checkpoints(tmp_path, monkeypatch):
    """`stop --checkpoints ck5 RUN` said "`namestudio train --resume RUN` continues it", which then failed: the id
    alone resolves only under the default checkpoints folder. The hints now give the folder's path."""
    import shlex
    monkeypatch.chdir(tmp_path)
    d = make_run(tmp_path / "ck5", "20260101-120000-classify-lstm", state="stopped", reason="stopped", host=rf.HOST)
    rf.save_resume_point(d, 4, {"w": __import__("torch").ones(1)}, {"optimizer": {}}, {"best": None})
    with pytest.raises(rf.RunFolderError, match="continues it$") as caught:
        rf.send_control(d, "resume")
    said = re.search(r"`namestudio train --resume (.+)` continues it", str(caught.value)).group(1)
    assert rf.resolve_run(shlex.split(said)[0]).resolve() == d.resolve()      # no --checkpoints needed
    assert said == "ck5/20260101-120000-classify-lstm"                        # relative: shorter
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert rf.as_arg(d) == str(d.resolve())                                   # not ../ck5/…: absolute
    (tmp_path / "my runs").mkdir()
    assert rf.as_arg(tmp_path / "my runs") == shlex.quote(str((tmp_path / "my runs").resolve()))


def test_send_control_needs_a_live_run_and_the_watcher_sees_each_command_once(tmp_path):
    d = make_run(tmp_path, "r1", state="done", pid=dead_pid(), host=rf.HOST)
    with pytest.raises(rf.RunFolderError, match="run r1 is not running: it is done"):
        rf.send_control(d, "stop")
    rf.write_status(d, rf.RunStatus(state="running", pid=dead_pid(), host=rf.HOST, heartbeat=time.time()))
    with pytest.raises(rf.RunFolderError, match="stale"):
        rf.send_control(d, "pause")
    rf.write_status(d, rf.RunStatus(state="running", pid=os.getpid(), host=rf.HOST, heartbeat=time.time()))
    watcher = rf.ControlWatcher(d)
    assert watcher.poll() is None
    assert rf.send_control(d, "pause") == "running"      # the state it was asked in: the CLI words it
    assert watcher.poll() == "pause" and watcher.poll() is None
    time.sleep(0.01)
    rf.send_control(d, "resume")
    assert watcher.poll() == "resume"
    rf.write_status(d, rf.RunStatus(state="stopped", reason="stopped", host=rf.HOST))
    rf.save_resume_point(d, 4, {"w": __import__("torch").ones(1)}, {"optimizer": {}}, {"best": None})
    with pytest.raises(rf.RunFolderError, match=rf"it is stopped; `namestudio train --resume {re.escape(rf.as_arg(d))}` continues it$"):
        rf.send_control(d, "resume")
    with pytest.raises(rf.RunFolderError, match="unknown command"):
        rf.send_control(d, "explode")


def test_last_log_lines(tmp_path):
    assert rf.last_log_lines(tmp_path) == []
    (tmp_path / rf.LOG).write_text("".join(f"line {i}\n" for i in range(50)) + "Traceback\nKeyError: 'x'\n")
    assert rf.last_log_lines(tmp_path, 3) == ["line 49", "Traceback", "KeyError: 'x'"]


def test_a_run_trained_on_after_its_end_lists_without_that_ends_test_figures(tmp_path):
    """`train --resume` of a stopped run: test_metrics.json is the stopped end's until the run ends again."""
    d = make_run(tmp_path, "a", state="running", pid=os.getpid(), host=rf.HOST, heartbeat=time.time(), step=40,
                 total_steps=100)
    rf.atomic_write_json(d / rf.TEST, {"reason": "stopped", "train_seconds": 12.5,
                                       "test": {"accuracy": 0.5, "macro_f1": 0.4, "balanced_accuracy": 0.45}})
    row = rf.list_runs(tmp_path)[0]
    assert row["state"] == "running" and row["status"] == "running" and row["reason"] is None
    assert "test_accuracy" not in row and row["train_seconds"] is None
    rf.write_status(d, rf.RunStatus(state="stopped", reason="stopped", host=rf.HOST, step=40, total_steps=100))
    give_weights(d)                   # tested: it has weights (without them it reads damaged)
    row = rf.list_runs(tmp_path)[0]
    assert row["test_accuracy"] == 0.5 and row["train_seconds"] == 12.5 and row["status"] == "stopped"


def test_nothing_left_means_done_at_its_last_step_not_an_early_stop(tmp_path):
    import torch
    for name, step, expected in (("early", 10, False), ("end", 88, True)):
        d = make_run(tmp_path, name, state="done", reason="early_stop" if step < 88 else "finished", host=rf.HOST,
                     step=step, total_steps=88)
        rf.save_resume_point(d, step, {"w": torch.ones(1)}, {"optimizer": {}}, {"step": step, "best": None})
        assert rf.nothing_left(d) is expected, name
    rf.write_status(tmp_path / "end", rf.RunStatus(state="stopped", host=rf.HOST, step=88, total_steps=88))
    assert rf.nothing_left(tmp_path / "end") is False        # stopped: resuming tests it to its end


def test_a_stopped_run_is_stopped_in_its_folder_and_in_every_listing_and_an_older_cancelled_one_reads_so(tmp_path):
    """The walkthrough saw one stop worded three ways: status.json "cancelled", `runs` "stopped", the TUI
    "stopped by you", `train` "· cancelled". The run folder records "stopped", and every face shows that word."""
    from namestudio.tui.panes.runs import state_cell
    from namestudio.tui.panes.train import reason_words
    from namestudio.tui.render import run_cells
    new = tmp_path / "new"
    new.mkdir()
    rf.RunWriter(new)(Done(run_dir=str(new), test_metrics={"nll": 1.0}, train_seconds=2.0, reason=rf.STOPPED, steps=7))
    assert rf.read_json(new / rf.STATUS)["state"] == rf.read_json(new / rf.STATUS)["reason"] == "stopped"
    assert rf.read_json(new / rf.TEST)["reason"] == "stopped"
    give_weights(new)                 # tested: it has weights (without them it reads damaged)
    old = make_run(tmp_path, "old", state="cancelled", reason="cancelled", host=rf.HOST, step=3, total_steps=9)
    rf.atomic_write_json(old / rf.TEST, {"test": {}, "reason": "cancelled"})      # as earlier versions wrote it
    assert rf.read_test(old)["reason"] == "stopped"
    for d in (new, old):
        st = rf.read_status(d)
        assert st.state == st.reason == "stopped" and not st.live, d.name
        assert rf.reason_words(st.reason) == "stopped" and reason_words(st.reason) == "stopped"
    rows = {r["run"]: r for r in rf.list_runs(tmp_path)}
    for name in ("new", "old"):
        assert rows[name]["state"] == "stopped"
        assert run_cells(rows[name])["state"] == "stopped"                 # `runs`
        assert str(state_cell(rows[name])) == "stopped"                    # the TUI's Runs pane
    text = json.dumps([run_cells(r) for r in rows.values()]) + str(state_cell(rows["old"]))
    assert "cancel" not in text and "by you" not in text


def test_a_resume_point_interrupted_after_its_switch_is_kept(tmp_path, monkeypatch):
    """An interruption (a second Ctrl-C) right after resume.json was switched to the new resume folder deleted
    that folder: resume.json then named a missing folder and the run could not be resumed."""
    import torch
    rf.save_resume_point(tmp_path, 2, {"w": torch.ones(1)}, {"optimizer": {}}, {"best": None})
    real = rf.atomic_write_json

    def write(path, obj, indent=1):
        real(path, obj, indent)
        if os.path.basename(path) == rf.RESUME:
            raise KeyboardInterrupt

    monkeypatch.setattr(rf, "atomic_write_json", write)
    with pytest.raises(KeyboardInterrupt):
        rf.save_resume_point(tmp_path, 5, {"w": torch.ones(1)}, {"optimizer": {}}, {"best": None})
    assert rf.load_resume_point(tmp_path)[2]["step"] == 5


@pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")
def test_atomic_run_folder_writes_get_the_mode_open_gives_not_mkstemps_0600(tmp_path):
    """Every run-folder file written atomically (config.json, status.json, the weights, resume.json, ...) was
    0600 whatever the umask (mkstemp's mode, kept by the rename), while the .jsonl logs were 0644: a run on a
    shared folder could not be read by anyone else. Now they read as a plain open() makes them."""
    from namestudio.engine import export
    from helpers import with_umask
    for mask in (0o022, 0o002, 0o077):
        with with_umask(mask):
            d = tmp_path / f"run-{mask:03o}"
            d.mkdir()
            rf.atomic_write_json(d / rf.CONFIG, {"format": 2, "train": {"task": "classify", "model": "lstm"}})
            rf.write_status(d, rf.RunStatus(state="running"))
            rf.atomic_write_bytes(d / rf.WEIGHTS, b"x")
            rf.append_jsonl(d / rf.STEPS, {"step": 1, "loss": 1.0, "lr": 0.1, "t": 1.0})
            os.chmod(d / rf.STATUS, 0o600)              # one an earlier version wrote: a rewrite mends it
            rf.write_status(d, rf.RunStatus(state="done"))
            event = export.export_tensorboard(d, tmp_path / f"tb-{mask:03o}", use_tensorboard=False)
            plain = tmp_path / f"plain-{mask:03o}"
            plain.write_text("")
        want = 0o666 & ~mask
        assert plain.stat().st_mode & 0o777 == want
        modes = {p.name: oct(p.stat().st_mode & 0o777) for p in [*d.iterdir(), event]}
        assert modes == {p: oct(want) for p in modes}, (oct(mask), modes)


@pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")
def test_the_umask_is_read_without_setting_it_and_the_fallback_reading_agrees(monkeypatch):
    """data/fsmode.py owns the umask: read from /proc where it can (os.umask would set it process-wide, racing
    other threads' files); elsewhere read once and kept."""
    from namestudio.data import fsmode
    from helpers import with_umask
    with with_umask(0o027):
        assert fsmode.umask() == 0o027
        assert (fsmode.file_mode(), fsmode.dir_mode()) == (0o640, 0o750)
        monkeypatch.setattr(fsmode, "_proc_umask", lambda: None)
        assert fsmode.umask() == 0o027 and os.umask(0o027) == 0o027     # read, and left as it was


def test_an_experiments_run_named_exactly_wins_over_runs_whose_names_hold_it(tmp_path):
    """`eval lstm` in a folder whose one experiment has lstm and mylstm was "ambiguous: …/lstm, …/mylstm" (the
    default models hold both); a run of its own whose id holds the name keeps it ambiguous."""
    for name in ("lstm", "mylstm"):
        (tmp_path / "exp-1" / name).mkdir(parents=True)
        rf.atomic_write_json(tmp_path / "exp-1" / name / rf.CONFIG, {"format": 2, "train": {}})
    assert rf.resolve_run("lstm", tmp_path) == tmp_path / "exp-1" / "lstm"
    assert rf.resolve_run("mylstm", tmp_path) == tmp_path / "exp-1" / "mylstm"
    (tmp_path / "exp-2" / "lstm").mkdir(parents=True)                # two experiments with an lstm: ambiguous
    rf.atomic_write_json(tmp_path / "exp-2" / "lstm" / rf.CONFIG, {"format": 2, "train": {}})
    with pytest.raises(rf.RunFolderError, match="ambiguous"):
        rf.resolve_run("lstm", tmp_path)
    shutil.rmtree(tmp_path / "exp-2")
    make_run(tmp_path, "20260101-000000-classify-lstm")              # a run of its own that holds the name
    with pytest.raises(rf.RunFolderError, match="ambiguous: 20260101-000000-classify-lstm"):
        rf.resolve_run("lstm", tmp_path)
