import json
import os
import threading
import time
from pathlib import Path

import pytest
import torch

from helpers import write_names_folder
from namestudio.data import load_dataset
from namestudio.engine import runfolder as ck
from namestudio.engine.config import TrainConfig
from namestudio.engine.events import Done, Eval, Failed, Started, Status, Step
from namestudio.engine.infer import load_run
from namestudio.engine.train import Trainer


def small(task="classify", **kw):
    base = dict(task=task, model="lstm", embed=8, hidden=24, epochs=6, batch_size=16, lr=1e-2, log_every=2,
                patience=0, threads=1, seed=0)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return load_dataset(str(write_names_folder(tmp_path_factory.mktemp("tiny") / "names")))


@pytest.mark.parametrize("task", ["classify", "generate"])
def test_training_end_to_end_loss_falls(task, tiny, tmp_path):
    events = []
    result = Trainer(small(task), tmp_path, events.append, dataset=tiny).run()
    assert isinstance(result, Done), result
    assert isinstance(events[0], Started) and events[-1] is result
    steps = [e for e in events if isinstance(e, Step)]
    evals = [e for e in events if isinstance(e, Eval)]
    assert len(evals) == 6  # once per epoch
    first, last = sum(e.loss for e in steps[:2]) / 2, sum(e.loss for e in steps[-2:]) / 2
    assert last < 0.75 * first, (first, last)
    run = ck.resolve_run(result.run_dir)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["labels"] == ["Gaelic", "Nordic", "Slavic"] and cfg["split_seed"] == 0 and cfg["vocab"][:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    assert len(ck.read_jsonl(run / "metrics.jsonl")) == 6
    test = json.loads((run / "test_metrics.json").read_text())["test"]
    if task == "classify":
        assert test["accuracy"] > 0.8  # the fixture's labels are easy letter patterns
        assert len(test["confusion"]) == 3 and sum(map(sum, test["confusion"])) == test["n"]
    else:
        assert evals[-1].metrics["nll"] < evals[0].metrics["nll"]
        assert test["perplexity"] == pytest.approx(torch.tensor(test["nll"]).exp().item(), rel=1e-4)


def test_split_is_by_name_and_recorded(tiny, tmp_path):
    result = Trainer(small(epochs=1), tmp_path, dataset=tiny).run()
    split = json.loads((ck.resolve_run(result.run_dir) / "split.json").read_text())
    names = [{n for n, _ in split[k]} for k in ("train", "val", "test")]
    assert not (names[0] & names[1]) and not (names[0] & names[2]) and not (names[1] & names[2])
    assert sum(map(len, names)) == len({n for n, _ in tiny.pairs})


def test_same_seed_same_result(tiny, tmp_path):
    a = Trainer(small(epochs=2), tmp_path / "a", dataset=tiny).run()
    b = Trainer(small(epochs=2), tmp_path / "b", dataset=tiny).run()
    assert a.test_metrics["loss"] == pytest.approx(b.test_metrics["loss"], rel=1e-6)


def test_cancel_is_seen_within_one_batch_and_keeps_a_checkpoint(tiny, tmp_path):
    steps = []

    def on_event(e):
        if isinstance(e, Step):
            steps.append(e.step)
            trainer.cancel()

    trainer = Trainer(small(epochs=50, log_every=1), tmp_path, on_event, dataset=tiny)
    result = trainer.run()
    assert result.reason == "stopped"
    saved = json.loads((ck.resolve_run(result.run_dir) / "test_metrics.json").read_text())
    assert saved["steps"] == steps[0] == 1  # no batch ran after the cancel
    assert load_run(result.run_dir).classify(["Karov"], 2)  # the kept checkpoint loads


def test_pause_and_cancel_from_another_thread(tiny, tmp_path):
    seen = []
    paused_at = threading.Event()
    trainer = Trainer(small(epochs=200, log_every=1), tmp_path, lambda e: seen.append(e), dataset=tiny)

    def watcher(e):
        seen.append(e)
        if isinstance(e, Step) and e.step == 3:
            trainer.pause()
            paused_at.set()

    trainer.on_event = watcher
    th = threading.Thread(target=trainer.run)
    th.start()
    assert paused_at.wait(30)
    n = len([e for e in seen if isinstance(e, Step)])
    th.join(0.5)
    assert th.is_alive() and trainer.paused
    assert len([e for e in seen if isinstance(e, Step)]) <= n + 1  # at most the batch in flight finishes
    trainer.cancel()
    th.join(30)
    assert not th.is_alive()
    assert isinstance(seen[-1], Done) and seen[-1].reason == "stopped"


def test_a_resume_point_due_as_the_run_pauses_is_saved_before_the_pause(tiny, tmp_path):
    """A timed resume point falls due at the end of a step and is saved at the next step's control (where every
    rank meets). A pause arriving at that control must not hold it back: a kill during a long pause would lose
    the steps since the save before."""
    saved_when_paused = []

    def on(e):
        if isinstance(e, Step) and e.step == 4:
            trainer.pause()
        if isinstance(e, Status) and e.state == "paused":
            saved_when_paused.append(ck.load_resume_point(trainer.run_dir)[2]["step"])
            trainer.cancel()

    # save_every_s=0: a resume point due after every step, as 60 s of training would give on a real run
    trainer = Trainer(small(epochs=2, log_every=1), tmp_path, [on], dataset=tiny, save_every_s=0.0)
    result = trainer.run()
    assert isinstance(result, Done) and result.reason == "stopped" and result.steps == 4
    assert saved_when_paused == [4]


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tiny, tmp_path, monkeypatch):
    trainer = Trainer(small(epochs=20, eval_every=2, log_every=1), tmp_path, dataset=tiny)
    real = trainer.train_step
    calls = {"n": 0}

    def poisoned(idx):
        calls["n"] += 1
        loss = real(idx)
        return loss * float("nan") if calls["n"] >= 5 else loss

    monkeypatch.setattr(trainer, "train_step", poisoned)
    result = trainer.run()
    assert isinstance(result, Failed)
    assert "nan" in result.message.lower() and "\n" not in result.message
    assert load_run(result.run_dir).classify(["Karov"], 1)  # the best checkpoint from before the NaN


def test_resume_continues_from_the_saved_step(tiny, tmp_path):
    first = Trainer(small(epochs=2), tmp_path, dataset=tiny).run()
    run = ck.resolve_run(first.run_dir)
    before = ck.read_json(ck.resume_dir(run) / "state.json")["step"]
    cfg = TrainConfig.from_dict(ck.read_json(run / "config.json")["train"])
    cfg.epochs = 4
    events = []
    second = Trainer(cfg, tmp_path, events.append, resume_from=run).run()
    assert isinstance(second, Done), second
    started = events[0]
    assert started.start_step == before and started.run_dir == str(run)
    evals = ck.read_jsonl(run / "metrics.jsonl")
    assert [e["step"] for e in evals] == sorted({e["step"] for e in evals}) and len(evals) == 4
    assert ck.read_json(ck.resume_dir(run) / "state.json")["step"] == 2 * before
    assert [p.name for p in run.glob("resume-*")] == [f"resume-{2 * before}"]  # older resume points are gone


@pytest.mark.parametrize("task", ["classify", "generate"])
def test_a_run_stopped_and_resumed_logs_and_keeps_what_the_run_not_stopped_does(task, tiny, tmp_path):
    """With dropout (on by default) a resumed run drew other masks from a re-seeded generator and kept other
    weights; its first Step and Eval after the resume averaged only the steps since the resume."""
    from namestudio.engine.events import Eval
    cfg = dict(epochs=4, log_every=4, eval_every=6, dropout=0.3, lm_order=0)
    whole = Trainer(small(task, **cfg), tmp_path / "a", dataset=tiny).run()
    holder = {}

    def stop_at_6(e):                              # after the evaluation at step 6: 2 steps into a Step window
        if isinstance(e, Eval) and e.step == 6:
            holder["t"].cancel()
    first = holder["t"] = Trainer(small(task, **cfg), tmp_path / "b", [stop_at_6], dataset=tiny)
    assert first.run().reason == "stopped"
    resumed = Trainer(small(task, **cfg), tmp_path / "b", resume_from=first.run_dir).run()
    assert isinstance(resumed, Done) and resumed.reason == "finished"
    a, b = Path(whole.run_dir), first.run_dir
    for name in (ck.STEPS, ck.METRICS):
        key = "loss" if name == ck.STEPS else "train_loss"
        got, want = ck.read_jsonl(b / name), ck.read_jsonl(a / name)
        assert [r["step"] for r in got] == [r["step"] for r in want]
        assert [r[key] for r in got] == pytest.approx([r[key] for r in want], rel=1e-5, abs=1e-6), name
    wa, wb = ck.load_weights(a / ck.WEIGHTS), ck.load_weights(b / ck.WEIGHTS)
    assert max((wa[k] - wb[k]).abs().max().item() for k in wa) < 1e-5


def test_a_resume_point_saved_before_per_rank_states_still_resumes_as_the_run_not_stopped(tiny, tmp_path):
    """A resume point from before the per-rank parts (one generator state, {"cpu": ...}, and rank 0's window
    sums alone) still loads, and one process goes on from it exactly as before."""
    cfg = dict(epochs=2, log_every=4, eval_every=6, dropout=0.3, lm_order=0)
    whole = Trainer(small(**cfg), tmp_path / "a", dataset=tiny).run()
    holder = {}
    first = holder["t"] = Trainer(small(**cfg), tmp_path / "b", [lambda e: isinstance(e, Eval) and e.step == 6
                                                                 and holder["t"].cancel()], dataset=tiny)
    assert first.run().reason == "stopped"
    folder = ck.resume_dir(first.run_dir)
    opt, state = ck.load_torch(folder / ck.OPTIM), ck.read_json(folder / ck.STATE)
    assert len(opt["rng"].pop("ranks")) == 1 and len(state.pop("rank_losses")) == 1
    ck.save_torch(opt, folder / ck.OPTIM)
    ck.atomic_write_json(folder / ck.STATE, state)
    assert isinstance(Trainer(small(**cfg), tmp_path / "b", resume_from=first.run_dir).run(), Done)
    for name, key in ((ck.STEPS, "loss"), (ck.METRICS, "train_loss")):
        got, want = ck.read_jsonl(first.run_dir / name), ck.read_jsonl(Path(whole.run_dir) / name)
        assert [(r["step"], r[key]) for r in got] == [(r["step"], r[key]) for r in want], name


def test_unknown_device_and_absent_cuda_are_clear_errors(tiny, tmp_path):
    result = Trainer(small(device="cuda"), tmp_path, dataset=tiny).run()
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert isinstance(result, Failed) and "cuda" in result.message and "not available" in result.message


def test_a_model_too_big_for_the_memory_is_one_line_before_anything_is_allocated(tiny, tmp_path, monkeypatch):
    """Every option in range, the model 400 billion parameters: the allocator's "can't allocate memory", or the
    machine swapping until the OOM killer came. Its size is now counted on the meta device and said."""
    from namestudio.engine import device as dev
    small_cfg = small()
    done = Trainer(small_cfg, tmp_path / "a", dataset=tiny).run()
    assert isinstance(done, Done)
    n = load_run(done.run_dir).meta["n_params"]
    monkeypatch.setattr(dev, "memory_of", lambda device: n * dev.TRAIN_BYTES_PER_PARAM - 1)   # just too small
    result = Trainer(small_cfg, tmp_path / "b", dataset=tiny).run()
    assert isinstance(result, Failed) and f"the model has {n:,} parameters: training it needs about" in result.message
    assert "give a smaller --hidden" in result.message and "\n" not in result.message
    monkeypatch.setattr(dev, "memory_of", lambda device: n * dev.TRAIN_BYTES_PER_PARAM)      # just enough
    again = Trainer(small_cfg, tmp_path / "c", dataset=tiny).run()
    assert isinstance(again, Done) and again.test_metrics["loss"] == done.test_metrics["loss"]   # no RNG moved


def test_nan_before_any_checkpoint_says_none_exists(tiny, tmp_path, monkeypatch):
    trainer = Trainer(small(epochs=20, log_every=1), tmp_path, dataset=tiny)
    real = trainer.train_step
    monkeypatch.setattr(trainer, "train_step", lambda idx: real(idx) * float("nan"))
    result = trainer.run()
    assert isinstance(result, Failed) and "no checkpoint exists yet" in result.message
    assert "kept" not in result.message
    assert ck.read_status(result.run_dir).state == "failed"
    assert ck.read_status(result.run_dir).error == result.message


def test_a_one_class_classifier_is_refused(tmp_path):
    from namestudio.data import load_dataset
    (tmp_path / "names").mkdir()
    (tmp_path / "names" / "Solo.txt").write_text("\n".join(f"Name{chr(97 + i)}{chr(97 + j)}" for i in range(8)
                                                           for j in range(8)) + "\n")
    ds = load_dataset(str(tmp_path / "names"))
    result = Trainer(small(), tmp_path / "ck", dataset=ds).run()
    assert isinstance(result, Failed) and "one language only (Solo)" in result.message
    assert not (tmp_path / "ck").exists() or not list((tmp_path / "ck").iterdir())  # nothing written


def test_a_timed_resume_point_makes_a_run_killed_before_its_first_evaluation_resumable(tiny, tmp_path):
    class Killed(Exception):
        pass

    def die(e):
        if isinstance(e, Step) and e.step == 4:
            raise Killed("simulated crash")

    # save_every_s=0: a resume point after every step, as 60 s of training would give on a real run
    trainer = Trainer(small(epochs=2, log_every=1), tmp_path, [die], dataset=tiny, save_every_s=0.0)
    assert isinstance(trainer.run(), Failed)
    run = trainer.run_dir
    assert not (run / ck.METRICS).exists()                       # no evaluation happened
    assert ck.load_resume_point(run)[2]["step"] == 3               # saved after step 3; step 4 was logged, then died
    row = ck.list_runs(tmp_path)[0]
    assert row["resumable"] and row["state"] == "failed"
    cfg = TrainConfig.from_dict(ck.read_json(run / "config.json")["train"])
    events = []
    assert isinstance(Trainer(cfg, tmp_path, events.append, resume_from=run).run(), Done)
    assert events[0].start_step == 3
    steps = [r["step"] for r in ck.read_jsonl(run / ck.STEPS)]
    assert steps == list(range(1, steps[-1] + 1))                # every step once


def test_resume_cuts_the_logs_back_to_the_resume_step_and_cleans_temporaries(tiny, tmp_path):
    first = Trainer(small(epochs=2), tmp_path, dataset=tiny).run()
    run = ck.resolve_run(first.run_dir)
    at = ck.load_resume_point(run)[2]["step"]
    # a kill after appending, before the next resume point: lines past the resume step, a torn line, temporaries
    with open(run / ck.STEPS, "a") as f:
        f.write(json.dumps({"step": at + 2, "epoch": 9, "loss": 1.0}) + "\n" + '{"step": ')
    with open(run / ck.METRICS, "a") as f:
        f.write(json.dumps({"step": at + 6, "epoch": 9, "train_loss": 1.0, "val": {}}) + "\n")
    (run / ".split.json.abc.tmp").write_text("x")
    (run / f"resume-{at + 6}").mkdir()                            # a half-written resume folder
    (run / f"resume-{at + 6}" / ".last.safetensors.x.tmp").write_text("x")
    cfg = TrainConfig.from_dict(ck.read_json(run / "config.json")["train"])
    cfg.epochs = 3
    assert isinstance(Trainer(cfg, tmp_path, resume_from=run).run(), Done)
    for name in (ck.STEPS, ck.METRICS):
        logged = [r["step"] for r in ck.read_jsonl(run / name)]
        assert logged == sorted(set(logged)), (name, logged)
    assert len(ck.read_jsonl(run / ck.METRICS)) == 3
    assert not list(run.glob(".*.tmp")) and [p.name for p in run.glob("resume-*")] == [f"resume-{at * 3 // 2}"]


def test_a_second_trainer_on_a_locked_run_is_refused(tiny, tmp_path):
    first = Trainer(small(epochs=1), tmp_path, dataset=tiny).run()
    run = ck.resolve_run(first.run_dir)
    before = ck.read_json(run / ck.STATUS)
    cfg = TrainConfig.from_dict(ck.read_json(run / "config.json")["train"])
    with ck.RunLock(run):                                         # as a trainer in another process holds it
        result = Trainer(cfg, tmp_path, resume_from=run).run()
    assert isinstance(result, Failed) and result.message == f"run {run.name} is being trained by pid {os.getpid()}"
    assert ck.read_json(run / ck.STATUS) == before                # the refused trainer wrote nothing


def test_control_file_pauses_and_stops_an_in_process_run(tiny, tmp_path):
    seen = []

    def on_event(e):
        seen.append(e)
        if isinstance(e, Step) and e.step == 2:
            ck.atomic_write_json(trainer.run_dir / ck.CONTROL, {"command": "pause", "at": time.time()})
        if isinstance(e, Status) and e.state == "paused":
            ck.atomic_write_json(trainer.run_dir / ck.CONTROL, {"command": "stop", "at": time.time()})

    trainer = Trainer(small(epochs=50, log_every=1), tmp_path, on_event, dataset=tiny)
    result = trainer.run()
    assert isinstance(result, Done) and result.reason == "stopped" and result.steps == 2
    states = [e.state for e in seen if isinstance(e, Status)]
    assert states == ["paused", "stopping"]
    assert ck.read_status(trainer.run_dir).state == "stopped"


def test_the_largest_seed_the_config_takes_trains(tiny, tmp_path):
    top = 2**63 - 1                                            # the config's bound for --seed
    trainer = Trainer(small(seed=top), tmp_path, dataset=tiny)
    trainer.setup()
    first = trainer.epoch_batches(3)                           # seed·1000 + epoch overflowed int64 here
    assert [b.tolist() for b in first] == [b.tolist() for b in trainer.epoch_batches(3)]   # still deterministic
    assert sorted(i for b in first for i in b.tolist()) == list(range(sum(len(b) for b in first)))


def test_a_run_stopped_before_its_first_step_is_untrained_and_not_tested(tiny, tmp_path, capsys):
    """Stopped before its first optimiser step, a run tested its untrained network (with the n-gram blend fitted
    to it: test accuracy 1.000 on this data) and `runs`, `eval` and the TUI showed those figures as the model's."""
    from namestudio.tui.cli import main
    from namestudio.tui.render import run_cells
    from namestudio.tui.widgets import usable

    seen = []

    def on(e):
        seen.append(e)
        if isinstance(e, Started):
            trainer.cancel()       # seen at the first step's control, before that step trains

    trainer = Trainer(small(epochs=3), tmp_path, on, dataset=tiny)
    result = trainer.run()
    assert isinstance(result, Done) and result.reason == "stopped" and result.steps == 0
    assert not any(isinstance(e, Status) for e in seen)   # no "stopping: testing the best weights": none to test
    assert result.test_metrics == {} and result.untested == ck.UNTRAINED
    run = Path(result.run_dir)
    assert not (run / ck.WEIGHTS).exists() and not (run / ck.LM).exists() and not (run / ck.CALIBRATION).exists()
    assert ck.read_test(run)["test"] == {} and ck.read_test(run)["untested"] == ck.UNTRAINED
    assert ck.load_resume_point(run)[2]["step"] == 0           # resumable: `train --resume` trains it
    row = ck.list_runs(tmp_path)[0]
    assert row["state"] == "stopped" and row["untested"] == ck.UNTRAINED and row["resumable"]
    assert not any(k.startswith(("test_", "best_val")) for k in row)
    assert run_cells(row)["state"] == "stopped, untrained · resumable" and run_cells(row)["test"] == ""
    assert not usable(row)                                      # the TUI's selectors do not offer it
    with pytest.raises(ck.RunFolderError, match="was stopped before any training"):
        load_run(run)
    assert main(["eval", str(run)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "stopped before any training" in err[0] and "--resume" in err[0]
    resumed = Trainer(small(epochs=1), tmp_path, resume_from=run).run()   # and it trains on from there
    assert isinstance(resumed, Done) and resumed.steps > 0 and resumed.test_metrics and not resumed.untested
    assert "untested" not in ck.list_runs(tmp_path)[0] and ck.list_runs(tmp_path)[0]["weights"]


def test_a_second_stop_ends_the_run_at_once_stopped_and_untested_with_what_was_saved(tiny, tmp_path):
    """A second Ctrl-C during the stop (here: as the run says "stopping") raised KeyboardInterrupt through the
    trainer and left status.json at "stopping" for good. Now the run ends at once: stopped, at the step of its
    resume point, not tested, its best weights and resume point kept, its lock free; then the interrupt goes on."""
    def on(e):
        if isinstance(e, Eval) and e.step == 4:
            trainer.cancel()                          # the first Ctrl-C
        if isinstance(e, Status) and e.state == "stopping":
            trainer.abort()                           # the second, as the best weights are about to be tested

    trainer = Trainer(small(epochs=50, log_every=1, eval_every=2), tmp_path, on, dataset=tiny)
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    run = trainer.run_dir
    st = ck.read_status(run)
    assert st.state == st.reason == "stopped" and not st.live and st.step == 4
    test = ck.read_test(run)
    assert test["test"] == {} and test["untested"] == ck.NOT_TESTED and test["steps"] == 4
    assert ck.load_resume_point(run)[2]["step"] == 4 and load_run(run).classify(["Karov"], 2)   # kept, usable
    row = ck.list_runs(tmp_path)[0]
    assert row["state"] == "stopped" and row["untested"] == ck.NOT_TESTED and "test_accuracy" not in row
    ck.RunLock(run).acquire().release()               # the lock went with the run


def test_a_second_stop_while_the_resume_point_is_written_waits_for_it(tiny, tmp_path, monkeypatch):
    """A second Ctrl-C that lands while the stop's resume point is written must not lose it: the interrupt waits
    until the resume point is whole, then the run ends at its step."""
    real = ck.save_resume_point
    seen = []

    def saving(run_dir, step, *a, **kw):
        trainer.abort()                               # lands in the middle of the save ...
        seen.append(step)
        return real(run_dir, step, *a, **kw)          # ... which goes on to its end

    def on(e):
        if isinstance(e, Step) and e.step == 3:
            trainer.cancel()

    monkeypatch.setattr(ck, "save_resume_point", saving)
    trainer = Trainer(small(epochs=50, log_every=1, eval_every=1000), tmp_path, on, dataset=tiny)
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    assert seen == [3] and ck.load_resume_point(trainer.run_dir)[2]["step"] == 3
    st = ck.read_status(trainer.run_dir)
    assert st.state == "stopped" and st.step == 3 and ck.read_test(trainer.run_dir)["untested"] == ck.NOT_TESTED
    assert not (trainer.run_dir / ck.WEIGHTS).exists()    # no evaluation yet: no best weights, and `eval` says so
    with pytest.raises(ck.RunFolderError, match="stopped before its first evaluation.*--resume"):
        load_run(trainer.run_dir)


def test_a_stopped_run_that_was_evaluated_and_lost_its_weights_reads_damaged(tiny, tmp_path):
    """Its weights deleted, a run stopped after evaluations was listed as healthy (beside its test figures) while
    `classify` and `eval` said it "was stopped before its first evaluation". It reads as a done run does."""
    def on(e):
        if isinstance(e, Step) and e.step == 3:
            trainer.cancel()

    trainer = Trainer(small(epochs=50, log_every=1, eval_every=1), tmp_path, on, dataset=tiny)
    run = Path(trainer.run().run_dir)
    assert ck.read_status(run).state == "stopped" and ck.read_test(run).get("test")
    (run / ck.WEIGHTS).unlink()
    with pytest.raises(ck.RunFolderError, match=r"model\.safetensors: no such weights file"):
        load_run(run)
    row = next(r for r in ck.list_runs(tmp_path) if r["path"] == str(run))
    assert row["state"] == "damaged" and "no such weights file" in row["error"], row


def test_a_second_stop_as_a_resume_sets_up_leaves_the_run_as_it_was(tiny, tmp_path, monkeypatch):
    """Interrupted before it trained on, a resume must not rewrite the run's end (it would read stopped at
    another step, or lose a done run's state): its status is put back as it was."""
    def on(e):
        if isinstance(e, Step) and e.step == 2:
            trainer.cancel()

    trainer = Trainer(small(epochs=50, log_every=1, eval_every=1), tmp_path, on, dataset=tiny)
    run = Path(trainer.run().run_dir)
    before = (run / ck.STATUS).read_bytes(), (run / ck.TEST).read_bytes()
    real_setup = Trainer.setup

    def setup(self):
        real_setup(self)
        self.abort()                                  # the second Ctrl-C, before the first step trains

    monkeypatch.setattr(Trainer, "setup", setup)
    resumed = Trainer(small(epochs=50, log_every=1, eval_every=1), tmp_path, resume_from=run)
    with pytest.raises(KeyboardInterrupt):
        resumed.run()
    assert ((run / ck.STATUS).read_bytes(), (run / ck.TEST).read_bytes()) == before
    ck.RunLock(run).acquire().release()
    # a run of the first format (no status.json, a test_metrics.json that says "cancelled"): as it was too
    (run / ck.STATUS).unlink()
    test = {**json.loads((run / ck.TEST).read_text()), "reason": "cancelled"}
    ck.atomic_write_json(run / ck.TEST, test)
    before = (run / ck.TEST).read_bytes()
    with pytest.raises(KeyboardInterrupt):
        Trainer(small(epochs=50, log_every=1, eval_every=1), tmp_path, resume_from=run).run()
    assert (run / ck.TEST).read_bytes() == before and not (run / ck.STATUS).exists()   # its figures kept


def test_a_second_stop_before_a_new_run_has_its_config_leaves_its_folder_free(tiny, tmp_path, monkeypatch):
    """Two Ctrl-C as a `--run-dir` run set up wrote a "stopped, untrained" end (test_metrics.json) into a folder
    with no config.json: `train --run-dir` then refused the folder ("already holds a run"), `--resume` and
    `eval` said config.json was missing, and `runs` showed a phantom row. The folder now gets a stopped status
    and nothing else, and takes a new run."""
    real_plan = Trainer._plan

    def plan(self):
        self.abort()                                  # the second Ctrl-C, while the data loads
        return real_plan(self)

    monkeypatch.setattr(Trainer, "_plan", plan)
    folder = tmp_path / "myrun"
    with pytest.raises(KeyboardInterrupt):
        Trainer(small(epochs=1), tmp_path, run_dir=folder, dataset=tiny).run()
    assert not (folder / ck.TEST).exists() and not (folder / ck.CONFIG).exists()
    assert ck.read_status(folder).state == "stopped"
    monkeypatch.setattr(Trainer, "_plan", real_plan)
    again = Trainer(small(epochs=1), tmp_path, run_dir=folder, dataset=tiny).run()
    assert isinstance(again, Done) and again.test_metrics


def test_a_second_stop_after_the_end_is_written_leaves_the_end_as_it_is(tiny, tmp_path):
    """An interrupt that landed just after a finished run wrote its end raised out of `train`, which then said
    "interrupted … is done as it was" and exited 130. The end stands: run() returns it."""
    ends = []

    def on(e):
        if isinstance(e, Done):
            ends.append(e)
            if len(ends) == 1:
                trainer.abort()                       # the second Ctrl-C, as the end is written (once)

    trainer = Trainer(small(epochs=1), tmp_path, on, dataset=tiny)
    result = trainer.run()
    assert isinstance(result, Done) and result.reason == "finished" and result.test_metrics
    assert ck.read_status(trainer.run_dir).state == "done" and ck.read_test(trainer.run_dir)["test"]


def test_a_run_keeps_its_heartbeat_while_its_data_loads(tiny, tmp_path, monkeypatch):
    """From another host only the heartbeat tells a live run from a dead one, and a run sent none from its
    "starting" status until it trained: a data load over STARTING_GRACE (5 minutes) read as stale there, and
    `stop` refused it. The heartbeat now runs from the moment the run folder is locked (a new run without
    --run-dir has no folder until its data is loaded)."""
    real_plan = Trainer._plan
    seen = []

    def plan(self):
        seen.append(self.writer._thread is not None and self.writer._thread.is_alive())
        return real_plan(self)

    monkeypatch.setattr(Trainer, "_plan", plan)
    # a launched run (the TUI's, `train --run-dir`): its folder is locked before the data loads
    done = Trainer(small(epochs=1), tmp_path, run_dir=tmp_path / "launched", dataset=tiny).run()
    assert seen == [True] and isinstance(done, Done)
    assert ck.read_status(done.run_dir).state == "done"


@pytest.mark.parametrize("epochs, reason", [(2, "finished"), (3, "early_stop")])
def test_patience_running_out_at_the_last_evaluation_is_a_finished_run(tiny, tmp_path, epochs, reason):
    """A run whose patience ran out at its very last evaluation trained every epoch: it read "early stop" (the
    reviewer's 14-epoch run, best at 11, "Done, early stop" beside "epoch 14.0/14 · 100%"). A learning rate too
    small to move the weights: the first evaluation is the best, and each later one is no better."""
    result = Trainer(small(epochs=epochs, patience=1, lr=1e-12), tmp_path, dataset=tiny).run()
    assert isinstance(result, Done) and result.reason == reason
    test = json.loads((ck.resolve_run(result.run_dir) / "test_metrics.json").read_text())
    assert test["reason"] == reason
    evals = ck.read_jsonl(ck.resolve_run(result.run_dir) / "metrics.jsonl")
    assert len(evals) == (epochs if reason == "finished" else 2)    # an early stop comes after epoch 2 of 3


def test_a_resume_whose_epochs_leave_no_step_is_refused_and_the_run_stays_as_it_was(tiny, tmp_path):
    """A stopped run resumed with --epochs below its progress was "finished" at once: tested, done, and its
    config.json saying epochs 1 after more than one epoch of training. It is refused now, the run untouched; the
    same resume with steps left trains on."""
    def on(e):
        if isinstance(e, Step) and e.step == 8:
            trainer.cancel()

    trainer = Trainer(small(epochs=3, log_every=1), tmp_path, on, dataset=tiny)
    first = trainer.run()
    run = Path(first.run_dir)
    assert first.reason == ck.STOPPED and trainer.steps_per_epoch < 8         # stopped past its first epoch
    before = {f: (run / f).read_bytes() for f in (ck.STATUS, ck.TEST, ck.CONFIG)}
    refused = Trainer(small(epochs=1, log_every=1), tmp_path, resume_from=run, dataset=tiny).run()
    assert isinstance(refused, Failed) and not refused.nothing_to_do
    assert "has trained 8 steps" in refused.message and "--epochs" in refused.message
    assert {f: (run / f).read_bytes() for f in before} == before
    ck.RunLock(run).acquire().release()                                      # not left locked
    again = Trainer(small(epochs=3, log_every=1), tmp_path, resume_from=run, dataset=tiny).run()
    assert isinstance(again, Done) and again.reason == "finished" and again.steps == 3 * trainer.steps_per_epoch


def test_a_stopped_runs_status_gives_the_epoch_of_its_last_step(tiny, tmp_path):
    """A run's end wrote its last step into status.json beside the epoch of its last logged Step (step 224 with
    the epoch of step 220): the epoch is that of the last step."""
    trainer = Trainer(small(epochs=3, log_every=5), tmp_path, dataset=tiny)
    real_step, done = trainer.train_step, []

    def train_step(*a, **kw):           # asked to stop after step 8: neither a logged step nor an evaluation
        out = real_step(*a, **kw)
        done.append(1)
        if len(done) == 8:
            trainer.cancel()
        return out
    trainer.train_step = train_step
    result = trainer.run()
    st = ck.read_status(Path(result.run_dir))
    assert st.state == ck.STOPPED and st.step == result.steps and result.steps % 5 != 0   # not a logged step
    assert st.epoch == pytest.approx(result.steps / trainer.steps_per_epoch, abs=1e-4)


def test_a_resumed_trainer_knows_its_step_before_it_reads_its_data(tmp_path):
    """A Ctrl-C while `train --resume` still loaded its data (a run killed before its first evaluation: no
    weights file) said "nothing trained yet: no weights to keep, nothing to test", for the step was 0 until setup
    read the resume point; the run then kept and tested its weights all the same. Now the step is the resume
    point's from the start, and the stop's words are those of a run that trained."""
    import torch

    from namestudio.engine import runfolder as rf
    from namestudio.engine.config import TrainConfig
    from namestudio.engine.train import Trainer
    run = tmp_path / "run1"
    run.mkdir()
    rf.save_resume_point(run, 40, {"w": torch.ones(2)}, {"optimizer": {}}, {"best": None}, epoch=2.0)
    trainer = Trainer(TrainConfig(), checkpoints=tmp_path, resume_from=run)
    assert trainer.at_step == 40
    assert rf.stop_keeps(trainer.run_dir, trainer.at_step) == "no checkpoint yet: the current weights are kept and tested"
    assert Trainer(TrainConfig(), checkpoints=tmp_path).at_step == 0
