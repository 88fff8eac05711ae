"""Runs as their own processes: launch, follow, control, kill -9, resume, a file-size limit (real children)."""
import os
import resource
import signal
import subprocess
import sys
import time

import pytest

from helpers import poll, write_names_folder
from namestudio.engine import runfolder as rf
from namestudio.engine.config import TrainConfig
from namestudio.engine.infer import load_run
from namestudio.engine.process import is_alive, launch_train


@pytest.fixture(scope="module")
def names(tmp_path_factory):
    return str(write_names_folder(tmp_path_factory.mktemp("tiny") / "names"))


def cfg(names, **kw):
    base = dict(data=names, embed=8, hidden=16, epochs=400, batch_size=16, lr=1e-2, log_every=1, eval_every=5,
                patience=0, threads=1, seed=0, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


def wait_for(what, timeout=60.0, every=0.05):
    value = poll(what, timeout, every)
    if not value:
        raise AssertionError("timed out waiting")
    return value


def cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "namestudio.tui.cli", *args], capture_output=True, text=True,
                          timeout=120, **kw)


def finish(launched, timeout=60):
    try:
        return launched.popen.wait(timeout)
    finally:
        if launched.popen.poll() is None:
            launched.popen.kill()
            launched.popen.wait()


def test_launch_follow_pause_resume_stop(names, tmp_path):
    run = launch_train(cfg(names), tmp_path, nice=5)
    try:
        assert os.getsid(run.pid) == run.pid != os.getsid(0)  # its own session: it outlives its launcher
        assert rf.read_status(run.run_dir).state in ("starting", "running")
        steps = rf.Tail(run.run_dir / rf.STEPS)
        seen = wait_for(steps.read_new)                       # steps stream in as the child trains
        assert seen[0]["step"] >= 1 and {"loss", "lr", "names_per_s", "elapsed", "eta", "total_steps"} <= set(seen[0])
        st = rf.read_status(run.run_dir)
        assert st.live and st.pid == run.pid and st.host == rf.HOST
        assert os.getpriority(os.PRIO_PROCESS, run.pid) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 5)

        assert cli("pause", run.run_dir.name, "--checkpoints", str(tmp_path)).returncode == 0
        wait_for(lambda: rf.read_status(run.run_dir).state == "paused")
        steps.read_new()
        at = rf.read_status(run.run_dir).step
        time.sleep(0.6)
        assert not steps.read_new() and rf.read_status(run.run_dir).step == at  # no steps while paused

        assert cli("resume", run.run_dir.name, "--checkpoints", str(tmp_path)).returncode == 0
        wait_for(lambda: rf.read_status(run.run_dir).state == "running")
        wait_for(steps.read_new)

        r = cli("stop", str(run.run_dir))
        assert r.returncode == 0 and "asked to stop" in r.stdout
        assert finish(run) == 130          # stopped before its end: `train … && next` does not go on
    finally:
        finish(run, 0)
    st = rf.read_status(run.run_dir)
    assert st.state == "stopped" and st.reason == "stopped" and not st.live and not is_alive(run.pid)
    test = rf.read_json(run.run_dir / rf.TEST)
    assert test["reason"] == "stopped" and 0 <= test["test"]["accuracy"] <= 1
    assert load_run(run.run_dir).classify(["Karov"], 1)              # the best weights load
    r = cli("stop", str(run.run_dir))                                 # no longer live: one-line error
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "is not running: it is stopped" in r.stderr
    log = (run.run_dir / rf.LOG).read_text()
    assert "--run-dir" in log and "--nice 5" in log and "test accuracy" in log   # the child's output went there


def test_kill_9_is_stale_and_resume_finishes_without_duplicate_steps(names, tmp_path):
    run = launch_train(cfg(names, epochs=8), tmp_path)
    try:
        wait_for(lambda: rf.resume_dir(run.run_dir))   # the first evaluation's resume point
        os.kill(run.pid, signal.SIGKILL)
        run.popen.wait()
    finally:
        finish(run, 0)
    st = rf.read_status(run.run_dir)
    assert st.stale and not st.live and st.state == "running"
    row = next(r for r in rf.list_runs(tmp_path) if r["path"] == str(run.run_dir))
    assert row["state"] == "stale" and row["resumable"]
    with pytest.raises(rf.RunFolderError, match="not running"):
        rf.send_control(run.run_dir, "stop")
    (run.run_dir / ".model.safetensors.x.tmp").write_bytes(b"half")    # as a kill mid-write leaves it
    for other in (["--hidden", "64"], ["--task", "generate"]):         # the run's own shape: refused, not ignored
        r = cli("train", "--resume", run.run_dir.name, "--checkpoints", str(tmp_path), *other)
        assert r.returncode == 1 and r.stderr.count("\n") == 1 and f"{other[0]} cannot change" in r.stderr
    assert rf.read_status(run.run_dir).stale                          # and nothing was touched
    r = cli("train", "--resume", run.run_dir.name, "--checkpoints", str(tmp_path))
    assert r.returncode == 0, r.stderr
    st = rf.read_status(run.run_dir)
    assert st.state == "done" and st.reason == "finished" and st.step == st.total_steps
    for name in (rf.STEPS, rf.METRICS):
        logged = [row["step"] for row in rf.read_jsonl(run.run_dir / name)]
        assert logged == sorted(set(logged)), name                    # no step twice
    assert [row["step"] for row in rf.read_jsonl(run.run_dir / rf.STEPS)][-1] == st.total_steps
    assert not list(run.run_dir.glob(".*.tmp"))


def test_a_file_size_limit_names_the_file_and_keeps_the_previous_checkpoint(names, tmp_path):
    from namestudio.engine.train import Trainer
    first = Trainer(cfg(names, epochs=1, eval_every=0), tmp_path).run()
    run = first.run_dir
    weights = (rf.resume_dir(run) / rf.LAST).read_bytes()
    best = (tmp_path / rf.list_runs(tmp_path)[0]["run"] / rf.WEIGHTS).read_bytes()
    limit = len(weights) // 2                                        # any weights file is now too large

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    r = cli("train", "--resume", run, "--epochs", "2", preexec_fn=small_files)
    assert r.returncode == 1
    line = r.stderr.strip()
    assert "\n" not in line and "could not write" in line and "the file is too large" in line
    assert ".safetensors" in line or ".pt" in line or ".json" in line
    assert (rf.resume_dir(run) / rf.LAST).read_bytes() == weights    # the previous resume point is whole
    assert (tmp_path / rf.list_runs(tmp_path)[0]["run"] / rf.WEIGHTS).read_bytes() == best
    assert load_run(run).classify(["Karov"], 1)
    assert rf.load_resume_point(run)[2]["step"] == first.steps       # and it can still be resumed


def _in_a_terminal(argv, cwd):
    """Start ``argv`` as a terminal's session would: its own session with a pseudo-terminal as its controlling
    terminal and its stdin/stdout/stderr. Returns (process, the terminal's master end)."""
    import fcntl
    import pty
    import termios
    master, slave = pty.openpty()

    def become_the_terminals_session():
        signal.signal(signal.SIGHUP, signal.SIG_DFL)   # as a login shell has it (a runner may run under nohup)
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, close_fds=True,
                         preexec_fn=become_the_terminals_session, env={**os.environ, "COLUMNS": "100"})
    os.close(slave)
    return p, master


def _read_until(master, what, timeout=60.0):
    import select
    seen, end = b"", time.time() + timeout
    while time.time() < end and not what(seen):
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                seen += os.read(master, 65536)
            except OSError:
                break
    return seen


@pytest.mark.parametrize("command", ["train", "compare"])
def test_a_run_goes_on_when_its_terminal_hangs_up(names, tmp_path, command):
    """SSH drops: the terminal hangs up (SIGHUP, then every write to it fails). `train` and `compare` go on to
    their end, their output going to the run's train.log / the experiment's compare.log."""
    ck = tmp_path / "ck"
    small = ["--data", names, "--embed", "8", "--hidden", "16", "--epochs", "150", "--batch-size", "16",
             "--log-every", "1", "--eval-every", "5", "--patience", "0", "--threads", "1", "--checkpoints", str(ck)]
    argv = [sys.executable, "-m", "namestudio.tui.cli", command, *small] + (["--models", "gru"] if command == "compare" else [])
    p, master = _in_a_terminal(argv, tmp_path)
    try:
        def run_dirs():
            return [d for d in ck.rglob(rf.STEPS) if rf.read_jsonl(d)] if ck.is_dir() else []
        steps = wait_for(run_dirs, 60)[0]
        _read_until(master, lambda b: False, timeout=0.5)   # the terminal has shown the start and some progress
        assert p.poll() is None, "the run ended before the hangup: give it more epochs"
        os.close(master)                                      # the terminal goes: SIGHUP to its session
        master = None
        assert p.wait(120) == 0
    finally:
        if master is not None:
            os.close(master)
        if p.poll() is None:
            p.kill()
            p.wait()
    run_dir = steps.parent
    assert rf.read_status(run_dir).state == "done"                       # trained to its end, tested
    assert (run_dir / rf.TEST).is_file()
    log = ((run_dir / rf.LOG) if command == "train" else (run_dir.parent / "compare.log")).read_text()
    assert "the terminal hung up" in log and "goes on" in log
    after = log[log.index("the terminal hung up"):]          # what it said after, in plain text (no colour codes)
    assert ("run folder: " if command == "train" else "test acc") in after and "\x1b[" not in after
    lines = after.splitlines()        # no progress-bar frame glued onto the lines after the hangup
    assert not any("━" in line and (" · " in line or "run folder" in line) for line in lines), after


@pytest.mark.parametrize("command, merged", [("train", False), ("compare", False), ("train", True)])
def test_a_reader_that_closes_the_pipe_does_not_cut_a_run_short(names, tmp_path, command, merged):
    """`namestudio train … | head -1`: the rest of the output goes nowhere, the run trains and ends as it would
    (was: exit 141 from inside the trainer, between its best weights and its resume point: a dead, stale run).
    With `2>&1 | head -1` the trainer's own line on stderr (the n-gram blend's) went to the closed pipe too
    (was: BrokenPipeError, the trained run failed)."""
    ck = tmp_path / "ck"
    argv = [sys.executable, "-m", "namestudio.tui.cli", command, "--data", names, "--embed", "8", "--hidden", "16",
            "--epochs", "30", "--batch-size", "16", "--eval-every", "5", "--patience", "0", "--threads", "1",
            "--checkpoints", str(ck)] + (["--models", "gru"] if command == "compare" else [])
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT if merged else subprocess.PIPE)
    try:
        p.stdout.readline()                     # the first line, then the reader goes (as `head -1` does)
        p.stdout.close()
        err = "" if merged else p.stderr.read().decode()
        assert p.wait(120) == 0, err
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    runs = [d.parent for d in ck.rglob(rf.CONFIG)]
    assert len(runs) == 1 and rf.read_status(runs[0]).state == "done" and rf.resume_dir(runs[0]) is not None
    assert "error" not in err.lower() and (runs[0] / rf.TEST).is_file()


def test_after_a_hangup_before_the_run_folder_exists_the_output_reaches_its_log_once_it_does(tmp_path):
    """`train --run-dir NEW` hung up before NEW exists: /dev/null first, then the run's log once it does (was: the
    same path given twice was taken as done, and the output stayed in /dev/null)."""
    log = tmp_path / "new" / "train.log"
    script = f"""
import os, signal
from pathlib import Path
from namestudio.tui.cli import Hangup
hang = Hangup(listen=False)
hang.to(Path({str(log)!r}))            # the run folder is not there yet
hang._on_hangup(signal.SIGHUP, None)    # the terminal goes
print("lost", flush=True)               # to /dev/null: there is nowhere else yet
Path({str(log.parent)!r}).mkdir()
hang.to(Path({str(log)!r}))            # the run began: the same path again
print("kept", flush=True)
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    text = log.read_text()
    assert "the terminal hung up at" in text and "its output here" in text and "kept" in text and "lost" not in text


def test_a_stop_sent_while_a_launched_run_is_starting_is_obeyed(names, tmp_path):
    """`namestudio stop` is accepted while the status reads "starting" (the child still imports torch): the
    trainer's watcher ignored the command written before it began, and the run trained to its end."""
    run = launch_train(cfg(names, epochs=2000), tmp_path)
    try:
        assert rf.read_status(run.run_dir).state == "starting"
        r = cli("stop", str(run.run_dir))
        assert r.returncode == 0 and "asked to stop" in r.stdout
        assert finish(run) == 130
    finally:
        finish(run, 0)
    st = rf.read_status(run.run_dir)
    assert st.state == "stopped" and st.step < st.total_steps


def test_a_stop_sent_to_a_resume_as_it_starts_is_kept_and_an_earlier_attempts_is_not(names, tmp_path):
    """A resume deleted control.json while it set up, and with it a stop sent to it meanwhile; an earlier
    attempt's stop must still not stop the resume."""
    run = launch_train(cfg(names, epochs=2000, eval_every=1), tmp_path)
    try:
        wait_for(lambda: rf.resume_dir(run.run_dir))            # a resume point exists
        assert cli("stop", str(run.run_dir)).returncode == 0     # this stop ends the first attempt ...
        assert finish(run) == 130
    finally:
        finish(run, 0)
    from namestudio.engine.process import launch_resume
    again = launch_resume(run.run_dir)                           # ... and must not end the resume
    try:
        steps = rf.Tail(run.run_dir / rf.STEPS)
        steps.read_new()
        wait_for(lambda: rf.read_status(run.run_dir).state == "running" and steps.read_new())
        r = cli("stop", str(run.run_dir))                        # a stop to the resume, once it runs: obeyed
        assert r.returncode == 0
        assert finish(again) == 130
    finally:
        finish(again, 0)
    resumed = launch_resume(run.run_dir)
    try:
        assert cli("stop", str(run.run_dir)).returncode == 0     # sent while it starts: obeyed
        assert finish(resumed) == 130
    finally:
        finish(resumed, 0)
    assert rf.read_status(run.run_dir).state == "stopped"


def test_a_resume_of_a_done_run_that_fails_before_training_leaves_it_done(names, tmp_path):
    """`train --resume RUN --epochs 3 --device cuda` on a machine without CUDA: the run read failed, its steps
    gone from its status, and a later resume tested it again."""
    r = cli("train", "--data", names, "--embed", "8", "--hidden", "16", "--epochs", "1", "--threads", "1",
            "--batch-size", "16", "--device", "cpu", "--checkpoints", str(tmp_path))
    assert r.returncode == 0, r.stderr
    run_dir = next(d for d in tmp_path.iterdir() if d.is_dir())
    before = {f: (run_dir / f).read_bytes() for f in (rf.STATUS, rf.TEST)}
    r = cli("train", "--resume", str(run_dir), "--epochs", "3", "--device", "cuda")
    assert r.returncode == 1 and "cuda" in r.stderr.lower()
    assert {f: (run_dir / f).read_bytes() for f in (rf.STATUS, rf.TEST)} == before


def test_after_a_hangup_a_line_never_follows_a_progress_frame_on_the_same_line():
    """A print interrupted by the hangup carried the progress bar's frame (no line break after it) into the
    log; the next print, plain, was glued onto it (CI saw `… ETA 0:00:16epoch  5.83 step 35 · …`)."""
    import io
    from rich.console import Console
    from namestudio.tui.cli import Hangup
    out = io.StringIO()
    con = Console(file=out, width=100)
    hang = Hangup(listen=False)
    hang.watch(con)
    hang._plain(con)                                   # what the hangup does to every watched console
    con.file.write("epoch  5.00 step 30 · val accuracy 1.000\nepoch 5.0 ━━━━   30/900 ETA 0:00:16")  # the frame
    con.print("epoch  5.83 step 35 · val accuracy 1.000")
    con.print("run folder: ck/run")
    lines = out.getvalue().splitlines()
    assert lines == ["epoch  5.00 step 30 · val accuracy 1.000", "epoch 5.0 ━━━━   30/900 ETA 0:00:16",
                     "epoch  5.83 step 35 · val accuracy 1.000", "run folder: ck/run"]


def test_ctrl_c_twice_ends_the_run_stopped_never_stopping(names, tmp_path):
    """Two SIGINTs to `namestudio train` (Ctrl-C, and again while it stops) left status.json at "stopping" for
    good. However the second lands (as the stop tests the best weights, or after), the run ends stopped, with
    its resume point at the step its status names, and no process left behind it."""
    argv = ["train", "--data", names, "--embed", "8", "--hidden", "16", "--epochs", "400", "--batch-size", "16",
            "--eval-every", "2", "--log-every", "1", "--threads", "1", "--device", "cpu", "--checkpoints", str(tmp_path)]
    p = subprocess.Popen([sys.executable, "-m", "namestudio.tui.cli", *argv], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    try:
        run = wait_for(lambda: next((d for d in tmp_path.iterdir() if (d / rf.RESUME).is_file()), None))
        os.kill(p.pid, signal.SIGINT)
        wait_for(lambda: rf.read_status(run).state != "running", every=0.005)
        try:
            os.kill(p.pid, signal.SIGINT)
        except ProcessLookupError:
            pass                                  # it had ended already
        out, _ = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode in (130, -signal.SIGINT), out   # -2: the second landed as the interpreter left
    st = rf.read_status(run)
    assert st.state == "stopped" and not st.live and not st.stale
    assert rf.load_resume_point(run)[2]["step"] == st.step > 0
    test = rf.read_test(run)
    if test.get("untested"):                      # stopped at once: said so, nothing tested
        assert test["untested"] == rf.NOT_TESTED and test["test"] == {} and "stopped at once" in out
    else:                                         # the second came after the end: the stop was tested
        assert 0 <= test["test"]["accuracy"] <= 1
    assert [r["state"] for r in rf.list_runs(tmp_path)] == ["stopped"]


def test_a_launched_resume_of_a_killed_run_starts_at_its_resume_point_not_its_last_heartbeat(tmp_path, monkeypatch):
    """`s` on the Runs pane (launch_resume) writes the run "starting" at once: at the step of its last heartbeat
    (55, past its resume point), it read "starting 55%" until the child began; it is the resume point's, 40."""
    import torch

    from namestudio.engine import process
    run = tmp_path / "r"
    run.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    rf.write_status(run, rf.RunStatus(state="running", pid=dead.pid, host=rf.HOST, heartbeat=time.time(), step=55,
                                      total_steps=100, epoch=2.75))
    rf.save_resume_point(run, 40, {"w": torch.ones(1)}, {"optimizer": {}}, {"best": None}, epoch=2.0)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    monkeypatch.setattr(process, "spawn", lambda argv, log: child)      # no real trainer: only its status matters
    try:
        process.launch_resume(run)
        st = rf.read_status(run)
        assert (st.state, st.pid, st.step, st.epoch, st.total_steps) == ("starting", child.pid, 40, 2.0, 100)
    finally:
        child.kill()
        child.wait()
