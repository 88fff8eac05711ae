"""Many processes with torch.distributed (gloo on CPU, on 127.0.0.1), and the GPU path's pieces run on the CPU.

The two real multi-rank runs start `namestudio train --nproc 2` as a child process (torchrun's agent and two
ranks, each importing torch: about 10 s each on 2 cores)."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers import hold_at, write_names_folder
from namestudio.data import load_dataset
from namestudio.engine import distributed as ddp
from namestudio.engine import runfolder as rf
from namestudio.engine import train as engine_train
from namestudio.engine.batches import encode
from namestudio.engine.config import TrainConfig, cfg_to_argv
from namestudio.engine.device import amp_dtype, to_device
from namestudio.engine.events import Done, Failed
from namestudio.engine.process import train_argv
from namestudio.engine.train import Trainer
from namestudio.tui import cli

ROOT = Path(__file__).resolve().parents[1]


def small(task="classify", **kw):
    # dropout 0: the ranks draw other dropout masks than one process would, nothing else differs
    base = dict(task=task, model="lstm", embed=8, hidden=24, epochs=4, batch_size=16, lr=1e-2, log_every=2,
                patience=0, threads=1, seed=0, dropout=0.0, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def names(tmp_path_factory):
    return write_names_folder(tmp_path_factory.mktemp("tiny") / "names")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(argv: list[str], timeout: int = 120) -> subprocess.CompletedProcess:
    """`namestudio train --nproc 2 ...` as a child; the ranks meet on 127.0.0.1."""
    cmd = [sys.executable, "-m", "namestudio.tui.cli", "train", "--nproc", "2", "--master-addr", "127.0.0.1",
           "--master-port", str(free_port()), *argv]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return r


def evals(run: Path) -> list[dict]:
    return rf.read_jsonl(run / rf.METRICS)


def assert_same_evals(a: list[dict], b: list[dict], key: str):
    assert [e["step"] for e in a] == [e["step"] for e in b] and a
    for x, y in zip(a, b):
        assert x["train_loss"] == pytest.approx(y["train_loss"], rel=1e-4)
        assert x["val"][key] == pytest.approx(y["val"][key], rel=1e-4)
        assert x["best"] == y["best"]


@pytest.fixture(scope="module")
def pair(names, tmp_path_factory):
    """The same run trained by 2 gloo ranks (`train --nproc 2`, a child process) and by one process."""
    tmp = tmp_path_factory.mktemp("pair")
    cfg = small(epochs=8, patience=1, data=str(names))   # the fixture is learnt by epoch 2: an early stop follows
    two, one = tmp / "two", tmp / "one"
    r = run_ranks([*cfg_to_argv(cfg), "--run-dir", str(two), "--checkpoints", str(tmp), "--json"])
    done = Trainer(cfg, tmp, run_dir=one).run()
    return {"cfg": cfg, "two": two, "one": one, "out": r, "done": done, "tmp": tmp}


def test_two_ranks_train_as_one_process(pair):
    """2 gloo ranks: the same steps, losses and metrics as one process (and the same early stop, which rank 0
    decides mid-run and tells the other rank); only rank 0 writes; config.json records the world size."""
    two, one, r, done = pair["two"], pair["one"], pair["out"], pair["done"]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["reason"] == "early_stop" and out["run_dir"] == str(two)
    assert (r.stdout + r.stderr).count("test accuracy") == 1         # one rank speaks
    assert isinstance(done, Done) and done.reason == "early_stop"

    assert_same_evals(evals(two), evals(one), "loss")
    assert evals(two)[-1]["step"] < 8 * 6                          # stopped before the end, on both ranks
    steps2, steps1 = rf.read_jsonl(two / rf.STEPS), rf.read_jsonl(one / rf.STEPS)
    assert [s["loss"] for s in steps2] == pytest.approx([s["loss"] for s in steps1], rel=1e-4)
    test2 = rf.read_json(two / rf.TEST)["test"]
    assert test2["accuracy"] == pytest.approx(done.test_metrics["accuracy"])
    assert test2["loss"] == pytest.approx(done.test_metrics["loss"], rel=1e-4)
    assert rf.read_json(two / rf.CONFIG)["world_size"] == 2 and rf.read_json(one / rf.CONFIG)["world_size"] == 1
    status = rf.read_status(two)
    assert status.state == "done" and not status.live
    assert "2 ranks (gloo)" in rf.read_json(two / rf.STATUS)["note"]
    assert sorted(p.name for p in pair["tmp"].iterdir()) == ["one", "two"]   # no other run folder


def test_a_run_saved_with_2_ranks_resumes_with_1(pair, tmp_path):
    """The 2-rank run resumed by one process goes on exactly as the one-process run resumed the same way."""
    for name in ("one", "two"):
        shutil.copytree(pair[name], tmp_path / name)
    more = TrainConfig.from_dict({**pair["cfg"].to_dict(), "epochs": 5, "patience": 0})
    for name in ("one", "two"):
        assert isinstance(Trainer(more, tmp_path, resume_from=tmp_path / name).run(), Done)
    a, b = evals(tmp_path / "two"), evals(tmp_path / "one")
    assert a[-1]["step"] == 5 * 6 and len(a) > len(evals(pair["two"]))
    assert_same_evals(a, b, "loss")
    assert rf.read_json(rf.resume_dir(tmp_path / "two") / "state.json")["world_size"] == 1
    assert rf.read_json(tmp_path / "two" / rf.CONFIG)["world_size"] == 2     # as it was created
    assert "resumed with 1 rank (saved with 2)" in rf.read_json(tmp_path / "two" / rf.STATUS)["note"]


# one rank of a 2-rank run (started without torchrun: RANK, WORLD_SIZE, MASTER_* in its environment) that rank 0
# stops after its evaluation at a given step (the ranks stop together, at the next step's control); argv: the config
# as JSON, the run folder, the step
STOPPED_RANK = """
import json, sys
from namestudio.engine.config import TrainConfig
from namestudio.engine.events import Eval
from namestudio.engine.train import Trainer
cfg, run_dir, stop = TrainConfig.from_dict(json.loads(sys.argv[1])), sys.argv[2], int(sys.argv[3])
trainer = Trainer(cfg, run_dir + "-ck", lambda e: isinstance(e, Eval) and e.step == stop and trainer.cancel(),
                  run_dir=run_dir)
result = trainer.run()
print(type(result).__name__, getattr(result, "reason", None) or getattr(result, "message", None))
from namestudio.engine.distributed import exit_rank
exit_rank(0)     # as a rank of `train --nproc` leaves (tui/cli.py end)
"""


def test_a_run_stopped_and_resumed_with_2_ranks_goes_on_as_the_run_not_stopped(names, tmp_path):
    """With dropout and a batch that splits unevenly (15 names: shards of 8 and 7) the ranks' generators part.
    The resume point kept rank 0's alone and both ranks took it back: other dropout masks on rank 1, other losses
    and weights than the run never stopped. Now each rank takes back its own generators (and the loss sums of its
    open windows: stopped at step 6, 2 steps into a Step window), so the run goes on exactly as if never stopped."""
    cfg = small(epochs=2, batch_size=15, log_every=4, eval_every=6, dropout=0.3, patience=0, data=str(names))
    whole, part = tmp_path / "whole", tmp_path / "part"
    run_ranks([*cfg_to_argv(cfg), "--run-dir", str(whole), "--checkpoints", str(tmp_path / "ck")])
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")}
    port = str(free_port())
    ranks = [subprocess.Popen([sys.executable, "-c", STOPPED_RANK, json.dumps(cfg.to_dict()), str(part), "6"],
                              env={**env, "RANK": str(r), "LOCAL_RANK": str(r), "WORLD_SIZE": "2",
                                   "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for r in range(2)]
    try:
        outs = [p.communicate(timeout=120)[0] for p in ranks]
    finally:
        for p in ranks:
            p.kill()
    assert all(out.strip().endswith("Done stopped") for out in outs), outs
    assert rf.load_resume_point(part)[2]["step"] == 6
    run_ranks(["--resume", str(part), "--checkpoints", str(tmp_path / "ck")])

    got, want = rf.read_jsonl(part / rf.STEPS), rf.read_jsonl(whole / rf.STEPS)
    assert [s["step"] for s in got] == [s["step"] for s in want] and want[-1]["step"] == 2 * 7
    assert [s["loss"] for s in got] == [s["loss"] for s in want]
    got, want = evals(part), evals(whole)
    assert [(e["step"], e["train_loss"], e["val"]["loss"]) for e in got] == \
           [(e["step"], e["train_loss"], e["val"]["loss"]) for e in want]
    wa, wb = rf.load_weights(whole / rf.WEIGHTS), rf.load_weights(part / rf.WEIGHTS)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


# a process that imported torch and ends through the command's exit (tui/cli.py end); argv: the exit code
ENDING = """
import atexit, sys
import torch
from namestudio.tui.cli import end
atexit.register(lambda: print("finalised", flush=True))
print("done", end="")     # no newline: still in the buffer when the process ends
end(int(sys.argv[1]))
"""


@pytest.mark.parametrize("rank", [True, False])
def test_a_rank_leaves_without_the_interpreters_finalisation_and_keeps_its_exit_code_and_output(rank):
    """A rank that ended well sometimes aborted in the interpreter's finalisation (torch's process-group objects
    destroyed in no set order: SIGABRT, and `train --nproc` called the run's rank dead). A rank now leaves
    without it: its output flushed, its exit code kept. Any other command ends as usual."""
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "TORCHELASTIC_RUN_ID")}
    if rank:
        env.update(RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1")
    r = subprocess.run([sys.executable, "-c", ENDING, "3"], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 3, r.stderr
    assert r.stdout == ("done" if rank else "donefinalised\n"), r.stdout


# ---- the command line -------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, says", [
    (["--nproc", "0"], "--nproc must be at least 1 (got 0)"),
    (["--nproc", "-2"], "--nproc must be at least 1 (got -2)"),
    (["--nproc", "4096", "--device", "cpu"], "--nproc 4096: this machine has"),
    (["--nproc", "2", "--device", "mps"], "no MPS backend"),
    (["--nnodes", "0"], "--nnodes 0: give the number of machines"),
    (["--nnodes", "3:2"], "--nnodes 3:2: give the number of machines"),
    (["--node-rank", "5"], "--node-rank goes with --nnodes"),
    (["--nnodes", "2", "--node-rank", "2"], "--node-rank 2: give this machine's index, 0 to 1"),
])
def test_a_bad_nproc_is_one_line(argv, says, capsys, tmp_path):
    assert cli.main(["train", *argv, "--checkpoints", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("namestudio: error: ") and says in err and err.count("\n") == 1
    assert not any(tmp_path.iterdir())


def test_the_launcher_exits_130_for_a_stopped_run_and_leaves_no_folder_for_one_that_never_began(names, tmp_path):
    """`train --nproc 2` ends as one process does: stopped before its end (here by `namestudio stop`), exit 130
    and the resume hint; a run that never began (bad data) leaves no run folder behind."""
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")}
    ck = tmp_path / "ck"
    base = [sys.executable, "-m", "namestudio.tui.cli", "train", "--nproc", "2", "--master-addr", "127.0.0.1",
            "--checkpoints", str(ck)]
    cfg = small(epochs=100_000, data=str(names))                   # runs until stopped
    proc = subprocess.Popen([*base, "--master-port", str(free_port()), *cfg_to_argv(cfg)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            runs = rf.list_runs(ck)
            if runs and rf.read_jsonl(Path(runs[0]["path"]) / rf.METRICS):     # an evaluation: a resume point
                break
            time.sleep(0.3)
        assert len(runs) == 1, runs
        rf.send_control(Path(runs[0]["path"]), "stop")
        out, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, out[-2000:]
    hint = re.search(r"namestudio train --resume (\S+)` continues it", out)    # a path any folder resolves
    assert hint and rf.resolve_run(hint.group(1)).resolve() == Path(runs[0]["path"]).resolve()
    assert rf.read_status(Path(runs[0]["path"])).state == "stopped"

    r = subprocess.run([*base, "--master-port", str(free_port()), "--data", str(tmp_path / "nope"), "--epochs", "1",
                        "--threads", "1"], env=env, text=True, capture_output=True, timeout=120)
    assert r.returncode == 1 and "dataset source not found" in r.stderr and "run folder:" not in r.stderr
    assert [p.name for p in ck.iterdir()] == [Path(runs[0]["path"]).name]      # no new folder


def test_a_ctrl_c_before_the_ranks_began_exits_130_not_0(names, monkeypatch, capsys, tmp_path):
    """A Ctrl-C while the ranks still started (no run folder of theirs yet) ended `train --nproc 2` with exit 0:
    the agent's SignalException read as success, and `train … && next` went on. It exits 130, "interrupted", as
    one process does, and leaves no run folder."""
    from torch.distributed.elastic.multiprocessing.api import SignalException

    import torch.distributed.run as torchrun

    def interrupted(args):
        raise SignalException("Process 1 got signal: 2", sigval=2)
    monkeypatch.setattr(torchrun, "run", interrupted)
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(k, raising=False)
    for k in ("TORCHELASTIC_SIGNALS_TO_HANDLE", cli.HANGUP_KEEPS_ON, ddp.AGENT_PID, "OMP_NUM_THREADS",
              "PYTHONUNBUFFERED"):     # what the launcher sets in its environment: put back after the test
        monkeypatch.setenv(k, os.environ.get(k, ""))
        monkeypatch.delenv(k)
    assert ddp.launch(["--nproc-per-node", "2", "-m", "x"], threads=1) == ddp.STOPPED_EXIT
    ck = tmp_path / "ck"
    code = cli.main(["train", "--nproc", "2", "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
                     "--data", str(names), "--epochs", "1", "--threads", "1", "--checkpoints", str(ck)])
    assert code == 130 and "namestudio: interrupted" in capsys.readouterr().err
    assert not ck.exists() or not any(ck.iterdir())                        # no run folder left behind


def test_nproc_under_torchrun_is_refused(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "x")
    assert cli.main(["train", "--nproc", "2", "--checkpoints", str(tmp_path)]) == 1
    assert "under torchrun, leave them out" in capsys.readouterr().err


def test_check_nproc_counts_gpus_and_cores():
    assert ddp.check_nproc(2, "cpu", cores=2, gpus=0) == "cpu"
    assert ddp.check_nproc(4, "auto", cores=2, gpus=4) == "cuda"     # GPUs, not cores, bound CUDA ranks
    with pytest.raises(ddp.DistributedError, match="has 2 CUDA devices and each rank needs its own"):
        ddp.check_nproc(3, "auto", cores=64, gpus=2)
    assert ddp.check_nproc(8, "cpu", cores=8, gpus=2) == "cpu"       # CPU ranks on a GPU box
    with pytest.raises(ddp.DistributedError, match="has 8 CPU cores"):
        ddp.check_nproc(9, "cpu", cores=8, gpus=2)
    with pytest.raises(ddp.DistributedError, match="no CUDA device"):
        ddp.check_nproc(1, "cuda", cores=8, gpus=0)


def test_torchrun_options_pass_through_and_help_documents_them():
    args = ddp.torchrun_args(2, {"nnodes": "2", "node_rank": 1, "master_addr": "10.0.0.1", "master_port": 29500,
                                 "rdzv_backend": None}, ["train", "--epochs", "3"])
    assert args[:10] == ["--nproc-per-node", "2", "--nnodes", "2", "--node-rank", "1", "--master-addr", "10.0.0.1",
                         "--master-port", "29500"]
    assert args[-5:] == ["-m", "namestudio.tui.cli", "train", "--epochs", "3"]
    shown = ddp.shown_command(args)
    assert shown.startswith("torchrun --nproc-per-node 2 ") and "-m namestudio train --epochs 3" in shown
    from torch.distributed.run import parse_args
    parsed = parse_args(args)     # torchrun itself accepts exactly this command line
    assert parsed.nproc_per_node == "2" and parsed.node_rank == 1 and parsed.module and parsed.training_script == "namestudio.tui.cli"
    helptext = cli.build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    helptext = " ".join(helptext.split())
    for flag in ("--nproc", "--nnodes", "--node-rank", "--master-addr", "--master-port", "--rdzv-backend",
                 "--rdzv-endpoint", "--rdzv-id", "--rdzv-conf", "torchrun --nproc-per-node N -m namestudio train"):
        assert flag in helptext


def test_resume_passes_only_what_was_given():
    """A launcher resuming a run hands the ranks only the options the user gave (the run has the rest)."""
    assert cli._given_argv({"epochs": 9, "amp": False, "lr": 0.5}) == ["--epochs", "9", "--lr", "0.5", "--no-amp"]
    assert cli._given_argv({}) == []


def test_launched_runs_take_nproc():
    cfg = small()
    assert train_argv(cfg, Path("r"), 10)[-2:] == ["--nice", "10"]
    assert train_argv(cfg, Path("r"), 10, nproc=3)[-2:] == ["--nproc", "3"]


def test_python_dash_m_namestudio():
    """`python -m namestudio` (and so `torchrun -m namestudio train`) is the namestudio command."""
    r = subprocess.run([sys.executable, "-m", "namestudio", "--version"], capture_output=True, text=True, cwd="/")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("namestudio ")


# ---- sharing a batch between ranks --------------------------------------------------------------------------
@pytest.mark.parametrize("task, weighting", [("classify", 0.0), ("classify", 1.0), ("generate", 0.0)])
def test_the_ranks_weights_add_up_to_the_one_process_mean(names, tmp_path, task, weighting):
    trainer = Trainer(small(task, class_weighting=weighting), tmp_path, dataset=load_dataset(str(names)))
    trainer.setup()
    idx = trainer.epoch_batches(0)[0]
    for world in (2, 3, len(idx) + 2):          # the last: some ranks get no name at all
        parts = []
        for rank in range(world):
            trainer.ranks = ddp.Ranks(rank=rank, world=world)
            parts.append(trainer._share(idx))
        assert sum(w for _, w in parts) == pytest.approx(1.0)
        real = [p for p, w in parts if w > 0]
        assert sorted(torch.cat(real).tolist()) == sorted(idx.tolist())          # every name once
        if world > len(idx):
            assert [w for _, w in parts][len(idx):] == [0.0] * (world - len(idx))
        # the weighted per-rank losses are the batch's loss
        trainer.ranks = ddp.Ranks()
        whole = trainer._loss(trainer.train_data, idx).item()
        assert sum(w * trainer._loss(trainer.train_data, p).item() for p, w in parts if w) == pytest.approx(whole, rel=1e-5)


# ---- the GPU path, run on the CPU ---------------------------------------------------------------------------
def test_amp_picks_bf16_where_supported_else_fp16(monkeypatch):
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert amp_dtype(cuda) is torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert amp_dtype(cuda) is torch.float16
    assert amp_dtype(cuda, enabled=False) is None and amp_dtype(torch.device("cpu")) is None


def test_data_moves_to_the_device_once(names):
    ds = load_dataset(str(names))
    from namestudio.data import Vocab
    vocab = Vocab.build(n for n, _ in ds.pairs)
    enc = encode(ds.pairs, vocab, {lab: i for i, lab in enumerate(ds.labels)}, "generate")
    meta = torch.device("meta")         # a device other than the CPU that every build of torch has
    moved = to_device(enc, meta)
    assert moved.ids.device == meta and moved.target.device == meta and moved.y.device == meta
    assert moved.lengths.device.type == "cpu"                    # pack_padded_sequence wants them there
    kept = to_device(enc, meta, labels=False)
    assert kept.y.device.type == "cpu" and kept.ids.device == meta
    assert to_device(enc, torch.device("cpu")).ids is enc.ids    # on the CPU nothing is copied


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_mixed_precision_training_runs(names, tmp_path, monkeypatch, dtype):
    """The AMP path (autocast with the chosen dtype; a loss scaler for fp16 only), forced on the CPU."""
    seen = []
    real_autocast = torch.autocast

    def spy(*a, **kw):
        seen.append((kw.get("dtype"), kw.get("enabled")))
        return real_autocast(*a, **kw)

    monkeypatch.setattr(engine_train, "amp_dtype", lambda device, enabled=True: dtype)
    monkeypatch.setattr(torch, "autocast", spy)
    trainer = Trainer(small(epochs=1), tmp_path, dataset=load_dataset(str(names)))
    trainer.setup()
    assert trainer.amp is dtype and trainer.scaler.is_enabled() == (dtype is torch.float16)
    losses = [trainer.train_step(idx).item() for idx in trainer.epoch_batches(0)[:3]]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert (dtype, True) in seen
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())   # the weights stay fp32


def test_compile_and_cuda_graphs_options(names, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(torch, "compile", lambda model, **kw: calls.append(kw) or model)
    trainer = Trainer(small(epochs=1, compile=True), tmp_path, dataset=load_dataset(str(names)))
    trainer.setup()
    assert calls == [{"mode": None}]
    # CUDA graphs (torch.compile's 'reduce-overhead' mode) need CUDA: one line, before any training
    result = Trainer(small(epochs=1, cuda_graphs=True), tmp_path, dataset=load_dataset(str(names))).run()
    assert isinstance(result, Failed) and "--cuda-graphs needs a CUDA device" in result.message
    assert "\n" not in result.message
    assert TrainConfig().compile is False and TrainConfig().cuda_graphs is False


def test_ranks_leave_together_after_a_good_run_and_at_once_after_a_failure(names, tmp_path, monkeypatch):
    """A rank that left the group while rank 0 still scored the test aborted at exit now and then (SIGABRT,
    ~1 two-rank run in 10): after a good run every rank waits at a barrier first; after a failure none does."""
    calls = []
    monkeypatch.setattr(ddp.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(ddp.dist, "barrier", lambda: calls.append("barrier"))
    monkeypatch.setattr(ddp.dist, "destroy_process_group", lambda: calls.append("destroy"))
    ddp.shutdown()
    assert calls == ["barrier", "destroy"]
    calls.clear()
    ddp.shutdown(wait_for_all=False)
    assert calls == ["destroy"]
    monkeypatch.undo()

    seen = []
    monkeypatch.setattr(ddp, "shutdown", lambda wait_for_all=True: seen.append(wait_for_all))
    data = load_dataset(str(names))
    assert isinstance(Trainer(small(epochs=1), tmp_path / "ck", dataset=data).run(), Done)
    monkeypatch.setattr(Trainer, "_run", lambda self: (_ for _ in ()).throw(RuntimeError("boom")))
    assert isinstance(Trainer(small(epochs=1), tmp_path / "ck", dataset=data).run(), Failed)
    assert seen == [True, False]


def test_a_barrier_broken_by_a_rank_that_failed_is_not_a_second_error(monkeypatch):
    calls = []

    def broken():
        raise RuntimeError("Connection closed by peer")
    monkeypatch.setattr(ddp.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(ddp.dist, "barrier", broken)
    monkeypatch.setattr(ddp.dist, "destroy_process_group", lambda: calls.append("destroy"))
    ddp.shutdown()
    assert calls == ["destroy"]


def _processes_mentioning(text: str) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if text.encode() in (d / "cmdline").read_bytes():
                    out.append(int(d.name))
            except OSError:
                pass
    return out


def _where_stuck(pids: list[int]) -> str:
    """What each live process is doing, for a failure message: its state, its kernel wait, and its Python
    stacks when py-spy is installed."""
    said = []
    for p in pids:
        try:
            state = next(line for line in Path(f"/proc/{p}/status").read_text().splitlines() if line.startswith("State"))
            wchan = Path(f"/proc/{p}/wchan").read_text()
        except (OSError, StopIteration):
            state = wchan = "?"
        said.append(f"pid {p}: {state}, wchan {wchan}")
        if shutil.which("py-spy"):
            said.append(subprocess.run(["py-spy", "dump", "--pid", str(p)], capture_output=True, text=True).stdout)
    return "\n".join(said)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(PR_SET_PDEATHSIG) is Linux's")
def test_the_ranks_stop_when_their_launcher_is_killed(names, tmp_path):
    """kill -9 of `train --nproc 2`: torch starts each rank in a session of its own, and both trained on as
    orphans until `namestudio stop`. Now each rank stops (cleanly: SIGTERM) when its agent's process ends."""
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")}
    ck = tmp_path / "ck"
    argv = [sys.executable, "-m", "namestudio.tui.cli", "train", "--nproc", "2", "--master-addr", "127.0.0.1",
            "--master-port", str(free_port()), "--checkpoints", str(ck), *cfg_to_argv(small(epochs=100_000,
                                                                                               data=str(names)))]
    out = tmp_path / "out.txt"      # the launcher's and the ranks' output: shown if a rank outlives it
    with open(out, "wb") as sink:
        proc = subprocess.Popen(argv, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            runs = rf.list_runs(ck)
            if runs and rf.read_jsonl(Path(runs[0]["path"]) / rf.STEPS):
                break
            time.sleep(0.3)
        assert runs, "the ranks did not start"
        ranks = [p for p in _processes_mentioning(str(ck)) if p != proc.pid]
        assert len(ranks) >= 2, ranks
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and [p for p in ranks if rf.pid_alive(p)]:
            time.sleep(0.3)
        alive = [p for p in ranks if rf.pid_alive(p)]
        assert not alive, f"ranks outlived their launcher: {_where_stuck(alive)}\n{out.read_text()[-3000:]}"
    finally:
        for p in _processes_mentioning(str(ck)):
            try:
                os.kill(p, 9)
            except OSError:
                pass
    assert rf.read_status(Path(runs[0]["path"])).state in ("stopped", "failed")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(PR_SET_PDEATHSIG) is Linux's")
def test_a_rank_checks_its_agent_by_pid_not_by_pid_1():
    """In a container the agent may be pid 1: a rank took a parent pid of 1 for a dead agent and stopped every
    run at step 0. It now compares its parent with the agent's pid (`train --nproc` passes it)."""
    code = ("import os, signal, time; signal.signal(signal.SIGTERM, lambda *a: (print('stopped'), os._exit(3)))\n"
            "from namestudio.engine import distributed as ddp; ddp.die_with_agent(); time.sleep(0.3); print('trains')")
    env = {**os.environ, "TORCHELASTIC_RUN_ID": "x"}
    alive = subprocess.run([sys.executable, "-c", code], env={**env, "NAMESTUDIO_AGENT_PID": str(os.getpid())},
                           capture_output=True, text=True, timeout=60)
    assert alive.stdout.strip() == "trains", alive.stderr
    gone = subprocess.run([sys.executable, "-c", code], env={**env, "NAMESTUDIO_AGENT_PID": "999999999"},
                          capture_output=True, text=True, timeout=60)      # its agent is not its parent: gone
    assert gone.stdout.strip() == "stopped" and gone.returncode == 3


def test_a_rank_stuck_after_its_agent_ended_leaves_after_the_grace():
    """The last resort beside PR_SET_PDEATHSIG: a rank whose agent is gone is asked to stop again, and one that
    still has not stopped after ORPHAN_GRACE_S leaves (here: a SIGTERM handler that stops nothing)."""
    code = ("import os, signal, threading, time; from namestudio.engine import distributed as ddp\n"
            "signal.signal(signal.SIGTERM, lambda *a: print('asked', flush=True)); ddp.ORPHAN_GRACE_S = 0.5\n"
            "threading.Thread(target=ddp._outlive_agent, args=(999999999, 0.05), daemon=True).start()\n"
            "time.sleep(60); print('trained on')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=90)
    assert done.returncode == ddp.STOPPED_EXIT, (done.returncode, done.stderr)
    assert done.stdout.split() == ["asked"] and "it had not stopped; it leaves now" in done.stderr


def _join_env(monkeypatch, port: int) -> None:
    for k, v in {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "TORCHELASTIC_USE_AGENT_STORE": "True",
                 "TORCHELASTIC_RUN_ID": "t", "TORCHELASTIC_RESTART_COUNT": "0"}.items():
        monkeypatch.setenv(k, v)


def test_ranks_asked_to_stop_before_all_joined_leave_together_and_never_wait_in_torch(monkeypatch):
    """A rank joining the process group blocked in C++ (its signal handler never ran) until every rank came: a
    Ctrl-C that killed one rank as it started left the others waiting until torchrun killed them (5 minutes).
    The ranks now meet in torchrun's store first, where a stop is heard, and agree once: all go on or all leave."""
    import datetime
    master = torch.distributed.TCPStore("127.0.0.1", 0, 1, True, timeout=datetime.timedelta(seconds=30))
    _join_env(monkeypatch, master.port)
    came, decided = ddp.join_keys()
    two = lambda rank: ddp.Ranks(rank=rank, world=2, local_rank=rank, local_world=2)
    timeout = datetime.timedelta(seconds=30)
    polls = []
    with pytest.raises(ddp.StoppedBeforeStart):          # rank 1 never comes; rank 0 is asked to stop meanwhile
        ddp._join(two(0), lambda: polls.append(1) or len(polls) > 3, timeout)
    assert master.get(decided) == b"stop" and master.add(came, 0) == 1
    with pytest.raises(ddp.StoppedBeforeStart):          # rank 1 comes late: it hears the others' stop
        ddp._join(two(1), lambda: False, timeout)

    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")    # the next launch: both come, nobody stops
    came, decided = ddp.join_keys()
    master.add(came, 1)                                   # rank 1 came already
    assert ddp._join(two(0), lambda: False, timeout) is not None and master.get(decided) == b"go"
    assert ddp._join(two(1), lambda: True, timeout) is not None   # a stop after "go": the run stops (cancel)
    assert ddp.join_keys({"TORCHELASTIC_RUN_ID": "x"}) != ddp.join_keys({"TORCHELASTIC_RUN_ID": "y"})


def test_the_agent_stops_the_ranks_with_sigterm_on_ctrl_c_and_leaves_hangups_to_them(monkeypatch):
    """Ctrl-C of `train --nproc`: the agent passed SIGINT on, and a rank whose interpreter still started printed
    a KeyboardInterrupt traceback; it now sends SIGTERM (a rank that has no handler yet ends quietly). torchrun
    also set its own list of signals over the one `train --nproc` gave, SIGHUP in it: a hangup stopped the
    ranks, which go on after one."""

    from torch.distributed.elastic.multiprocessing.api import SignalException

    import torch.distributed.run as torchrun
    seen = {}

    from torch.distributed.elastic.multiprocessing.api import _terminate_process_handler

    def agent(parsed):               # torchrun's agent: its handlers, as it starts the ranks; then a Ctrl-C
        seen["signals"] = set(parsed.signals_to_handle.split(","))
        for name in seen["signals"]:
            signal.signal(getattr(signal, name), _terminate_process_handler)
        try:
            signal.getsignal(signal.SIGINT)(signal.SIGINT, None)
        except SignalException as e:
            seen["passed_on"] = e.sigval
            raise
    monkeypatch.setattr(torchrun, "run", agent)
    for k in ("OMP_NUM_THREADS", "PYTHONUNBUFFERED"):
        monkeypatch.setenv(k, os.environ.get(k, "1"))
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)}
    try:
        assert ddp.launch(["--nproc-per-node", "2", "-m", "x"], threads=1) == ddp.STOPPED_EXIT
    finally:
        now = signal.getsignal(signal.SIGINT)
        for s, handler in before.items():
            signal.signal(s, handler)
    assert seen["passed_on"] == signal.SIGTERM
    assert "SIGHUP" not in seen["signals"] and "SIGINT" not in seen["signals"] and "SIGTERM" in seen["signals"]
    assert now is before[signal.SIGINT]     # put back


@pytest.mark.parametrize("what, rank", [("startup", "1"), ("torch", "0")])
def test_a_ctrl_c_while_the_ranks_start_is_one_line_exit_130_and_no_run_folder(names, tmp_path, what, rank):
    """Ctrl-C on `train --nproc 2` while its ranks still start, the other rank waiting to join: the ranks
    printed KeyboardInterrupt tracebacks (from Python's startup or an import), "namestudio: interrupted" once
    per process, and a rank waiting to join the process group for one that had died waited there until torchrun
    killed it (5 minutes). Now: "namestudio: interrupted" once, exit 130, no run folder, as one process."""
    ck, port = tmp_path / "ck", free_port()     # one rank held inside Python's startup, or importing torch
    env = hold_at(tmp_path, what, rank, {k: v for k, v in os.environ.items()
                                         if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")})
    proc = subprocess.Popen([sys.executable, "-m", "namestudio.tui.cli", "train", "--nproc", "2", "--master-addr",
                             "127.0.0.1", "--master-port", str(port), "--checkpoints", str(ck),
                             *cfg_to_argv(small(epochs=1, data=str(names)))],
                            env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "held").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert (tmp_path / "held").exists(), proc.communicate(timeout=60)
        import datetime   # the rank not held waits to join (torchrun's store: run id "none", its default)
        store = torch.distributed.TCPStore("127.0.0.1", port, is_master=False, timeout=datetime.timedelta(seconds=60))
        came, _ = ddp.join_keys({"TORCHELASTIC_RUN_ID": "none", "TORCHELASTIC_RESTART_COUNT": "0"})
        while store.add(came, 0) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.add(came, 0) == 1, "the other rank never came to the join"
        os.killpg(proc.pid, signal.SIGINT)                # Ctrl-C: the terminal signals the whole group
        (tmp_path / "release").touch()
        out, err = proc.communicate(timeout=120)          # torchrun would have waited 300 s for a rank stuck in C++
    finally:
        for p in [proc.pid, *_processes_mentioning(str(ck))]:   # (the ranks have sessions of their own)
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
    assert proc.returncode == 130, out + err
    assert err.strip() == "namestudio: interrupted" and "Traceback" not in out, out + err
    assert not ck.exists() or not any(ck.iterdir())      # no run folder left behind


def test_a_torch_without_signals_to_handle_still_launches(monkeypatch):
    """torchrun's --signals-to-handle came with torch 2.9; launch passed it whatever the torch, so on an older one
    (pyproject admits torch>=2.2) every `train --nproc` failed with "bad torchrun options". Now it is passed only
    to a torchrun that has it."""
    import argparse

    import torch.distributed.run as torchrun
    real = torchrun.get_args_parser

    def old_parser():                  # torchrun's options, less the one an older torch did not have
        parser = real()
        fresh = argparse.ArgumentParser(prog=parser.prog)
        for action in parser._actions:
            if action.option_strings and "--signals-to-handle" not in action.option_strings \
                    and "-h" not in action.option_strings:
                fresh._add_action(action)
            elif not action.option_strings:
                fresh._add_action(action)
        return fresh
    seen = {}
    monkeypatch.setattr(torchrun, "get_args_parser", old_parser)
    monkeypatch.setattr(torchrun, "run", lambda parsed: seen.setdefault("parsed", parsed))
    for k in ("OMP_NUM_THREADS", "PYTHONUNBUFFERED"):
        monkeypatch.setenv(k, os.environ.get(k, "1"))
    assert ddp.launch(["--nproc-per-node", "2", "-m", "x"], threads=1) == 0
    assert seen["parsed"].nproc_per_node == "2" and not hasattr(seen["parsed"], "signals_to_handle")
    monkeypatch.setattr(torchrun, "get_args_parser", real)      # a torch that has it: the agent's list is ours
    seen.clear()
    assert ddp.launch(["--nproc-per-node", "2", "-m", "x"], threads=1) == 0
    assert seen["parsed"].signals_to_handle == ddp.AGENT_SIGNALS
