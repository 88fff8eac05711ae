"""One training loop for both tasks. It reports through events and knows nothing of any UI.

The shape, as in makemore: prepare the data, the model and the optimizer (no disk writes), then one flat
loop that trains, logs, evaluates and saves. Everything the loop says is an event, sent to a list of sinks:
the run-folder writer (engine/runfolder.RunWriter), the CLI's printer, or a test's list.
"""
from __future__ import annotations

import json
import math
import os
import random
import threading
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from namestudio.data import Split, Vocab, load_dataset, split_by_name
from namestudio.data.errors import NamestudioError

from . import distributed as ddp
from . import runfolder as rf
from .batches import Encoded, encode, epoch_batches
from .config import TrainConfig, default_threads
from .device import amp_dtype, check_fits, rank_device, resolve_device, to_device
from .events import Done, Eval, Failed, Started, Status, Step
from .metrics import classification_report, confusion_matrix, perplexity
from .models import build_model

SAVE_EVERY_S = 60.0   # a resumable state at least this often (seconds of training), as well as at evaluations


class NothingToResume(NamestudioError):
    """A resume with nothing left to train; not a failure, and nothing is written. ``refused``: the resume's own
    settings left nothing (--epochs below the run's progress): an error, the run still as it was."""

    def __init__(self, message: str, refused: bool = False):
        super().__init__(message)
        self.refused = refused


class TrainingError(NamestudioError):
    """A run that cannot go on; the message is one line."""


SMALL_DATA = 5000    # pairs: a source this small may be too small to split (a larger one never is, in practice)


def check_labels(ds, cfg: TrainConfig) -> None:
    """What train refuses of a source's labels before it splits it: a classifier of one language."""
    labels = list(ds.labels)
    if cfg.task == "classify" and len(labels) < 2:
        raise TrainingError(f"{ds.source}: one language only ({', '.join(labels) or 'none'}): a "
                            f"classifier needs at least two (or train a generator: --task generate)")


def split_to_train(ds, cfg: TrainConfig) -> Split:
    """The split a new run of ``cfg`` trains on from the dataset ``ds``, with what train refuses before it builds
    anything: a classifier of one language, too few names to split into train and validation. `compare` checks
    its data with it before it makes an experiment folder (engine/experiment.py: check_data)."""
    check_labels(ds, cfg)
    split = split_by_name(ds.pairs, seed=cfg.split_seed, val=cfg.val_fraction, test=cfg.test_fraction)
    if not split.train or not split.val:
        raise TrainingError(f"{ds.source}: too few names to split into train and validation")
    return split


class Trainer:
    """Train one model. ``run()`` blocks; ``pause()``, ``resume()`` and ``cancel()`` may be called from any
    thread, and a run folder's control.json (``namestudio stop|pause|resume``) does the same.

    Events go to every sink in ``on_event`` (a callable or a list) as they happen: Started, Step, Eval,
    Status, then Done or Failed. The run folder is written by a RunWriter sink that run() adds itself.
    ``run_dir`` trains into that folder (``train --run-dir``); ``resume_from`` continues a saved run.

    Started by torchrun (engine/distributed.py), every rank runs a Trainer: rank 0 reads the data and the run
    it resumes, writes the run folder, evaluates and sends the events; the other ranks train their share of
    each batch and are silent.
    """

    def __init__(self, config: TrainConfig, checkpoints: str | Path = "checkpoints",
                 on_event: Callable | list | None = None, resume_from: str | Path | None = None, dataset=None,
                 run_dir: str | Path | None = None, save_every_s: float = SAVE_EVERY_S):
        self.cfg = config
        self.checkpoints = Path(checkpoints)
        self.on_event = on_event if on_event is None or callable(on_event) else _fan_out(list(on_event))
        self.resume_from = Path(resume_from) if resume_from else None
        self.dataset = dataset
        self.save_every_s = save_every_s
        self.run_dir: Path | None = self.resume_from or (Path(run_dir) if run_dir else None)
        self.writer: rf.RunWriter | None = None
        self.lock: rf.RunLock | None = None
        self.watcher: rf.ControlWatcher | None = None
        self._started = False                # Started emitted: the run trains (on)
        self.at_step = 0                     # the step the weights are at (the resume point's, then each step's)
        if self.resume_from is not None:     # known before setup reads the point (a stop while the data loads
            self.at_step = (rf.resume_progress(self.resume_from) or (0, None))[0]   # says what it keeps)
        self._resume_rng: dict | None = None  # the random generators' states saved with the resume point
        self._acc: dict = {}                  # the open loss windows (Step, Eval) of the loop, saved with it too
        self._save_due = False                # rank 0's timer: a resume point is due (the ranks agree on it)
        self._save_now = False                # ... agreed at this step's control: every rank takes part in it
        self._timed_save: Callable[[], None] | None = None   # _run's: that save, at the step the loop is at
        self._gathered: tuple[int, list | None] | None = None  # (step, each rank's _rank_state: rank 0 only)
        self._ended_status: bytes | None = None  # a resumed run's status.json as it ended (see _open_run_dir)
        self._saving = False                  # a resume point is being written: an abort() waits for it
        self._abort_asked = False
        self._cancel = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self.ranks = ddp.Ranks.from_env()
        self.peer_failed = False   # a rank other than 0 that stopped because rank 0 could not start

    # ---- control, from any thread -------------------------------------------------
    def pause(self):
        self._running.clear()

    def resume(self):
        self._running.set()

    def cancel(self):
        self._cancel.set()
        self._running.set()

    def abort(self):
        """Stop at once, untested (a second Ctrl-C; from a signal handler, in the main thread): raises
        KeyboardInterrupt now, or, while a resume point is being written, right after it (it is kept whole).
        ``run()`` then writes the end: stopped, with what was saved."""
        self.cancel()
        if self._saving:
            self._abort_asked = True
        else:
            raise KeyboardInterrupt

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def _apply(self, command: str | None) -> None:
        if command == "stop":
            self.cancel()
        elif command == "pause":
            self.pause()
        elif command == "resume":
            self.resume()

    def _local_flag(self) -> int:
        if self.watcher:                     # one os.stat of control.json (rank 0 only has a watcher)
            self._apply(self.watcher.poll())
        return ddp.STOP if self._cancel.is_set() else ddp.GO if self._running.is_set() else ddp.PAUSE

    def _control(self) -> int:
        """Once per batch, on every rank: go, stop or early stop (the largest flag of all ranks wins); waits
        while paused. With several ranks this is one tiny all-reduce, so a stop seen by any rank stops them all.
        It also carries rank 0's timer: ``_save_now`` says a resume point is to be saved at this step."""
        flag, self._save_now = ddp.agree(self._local_flag(), self.ranks, self._save_due)
        if flag != ddp.PAUSE:
            return flag
        if self._save_now and self._timed_save:   # a save that fell due now is made before the pause, not after
            self._timed_save()
        t = time.perf_counter()
        self.emit(Status("paused"))
        while flag == ddp.PAUSE:
            if self._running.is_set():
                time.sleep(0.2)            # another rank paused: the ranks meet again about 5 times a second
            else:
                self._running.wait(0.2)    # this one paused: on at once when resumed or stopped
            flag, self._save_now = ddp.agree(self._local_flag(), self.ranks, self._save_due)
        self.paused_seconds += time.perf_counter() - t
        if flag != ddp.STOP:
            self.emit(Status("running"))
        return flag

    def _should_stop(self) -> bool:
        """Once per batch: True when asked to stop (waits while paused)."""
        return self._control() == ddp.STOP

    # ---- events -------------------------------------------------------------------
    def emit(self, event) -> None:
        """The run-folder writer first (files are on disk before anyone hears of them), then the other sinks.
        Ranks other than 0 say nothing."""
        if not self.ranks.main:
            return
        if self.writer:
            self.writer(event)
        if self.on_event:
            self.on_event(event)

    # ---- the run ------------------------------------------------------------------
    def run(self) -> Done | Failed:
        """Train to the end; Done or Failed. A KeyboardInterrupt (``abort()``: a second Ctrl-C) ends the run at
        once, and is raised again once its end is written (``_interrupted``)."""
        result = None
        try:
            try:
                result = self._run()
            except NothingToResume as e:   # the run folder stays as it was: nothing is written
                self._put_back_status()
                result = Failed(message=str(e), run_dir=str(self.run_dir), nothing_to_do=not e.refused)
                if self.on_event:
                    self.on_event(result)
                return result
            except Exception as e:  # every failure becomes one event with one line
                result = Failed(message=_one_line(e), run_dir=str(self.run_dir) if self.run_dir else None)
                if self._ended_state() == "done" and not self._started:
                    # a resume of a done run that failed before it trained on (a device not here, say): the run
                    # stays done, its status untouched (it read failed, with its progress gone)
                    if self.on_event:
                        self.on_event(result)
                    return result
            try:
                self.emit(result)
            except rf.RunFolderError as e:  # the writer could not write the end (disk full): say so
                result = Failed(message=str(e), run_dir=str(self.run_dir) if self.run_dir else None)
                if self.on_event:
                    self.on_event(result)
        except KeyboardInterrupt:
            self._interrupted(result)
            if result is not None:     # the end was reached before the interrupt: it stands, written whole
                return result
            raise
        finally:
            if self.writer:
                self.writer.close()
            if self.lock:
                self.lock.release()
            ddp.shutdown(wait_for_all=isinstance(result, Done))
        return result

    def _put_back_status(self) -> None:
        """A resume that ends before it trains on: the run's status as this trainer found it (a format-1 run had
        no status.json), and no heartbeat after it. A done run's status was never touched (_open_run_dir)."""
        if self.writer is None or self.resume_from is None or self._ended_state() == "done":
            return
        self.writer.close()
        if self._ended_status is not None:
            rf.atomic_write_bytes(self.run_dir / rf.STATUS, self._ended_status)
        else:
            (self.run_dir / rf.STATUS).unlink(missing_ok=True)

    def _interrupted(self, result) -> None:
        """The end of a run interrupted wherever it was (KeyboardInterrupt: ``abort()``, a second Ctrl-C): never
        left "stopping" or "running". What was saved stays as it is (every file is written atomically, a resume
        point whole or not at all) and nothing more is saved: the model may be half-way through a step. The
        status says stopped, at the step of its resume point, not tested. An end already reached (a Done or
        Failed being written) is written whole, and stands; a resume that had not trained on yet leaves the run
        as it was; a new run with no config.json yet gets a stopped status and no other file."""
        if not self.ranks.main or self.writer is None:
            return
        try:
            if result is not None:                     # the end was reached: write it (again), whole
                self.emit(result)
                return
            if not self._started and self.resume_from is not None:   # a resume that had not trained on: the
                self._put_back_status()                               # run as it was
                return
            if not (self.run_dir / rf.CONFIG).is_file():   # a new run interrupted before it had a config: no run
                self.writer.write(state=rf.STOPPED, reason=rf.STOPPED)   # files (--run-dir takes the folder
                return                                                  # again); its status says how it ended
            try:
                folder = rf.resume_dir(self.run_dir)
                saved = rf.read_json(folder / rf.STATE, dict) if folder is not None else {}
            except rf.RunFolderError:
                saved = {}
            step = saved.get("step") if isinstance(saved.get("step"), int) else 0
            seconds = saved.get("train_seconds") if isinstance(saved.get("train_seconds"), (int, float)) else 0.0
            best = saved.get("best_step") if isinstance(saved.get("best_step"), int) else 0
            done = Done(run_dir=str(self.run_dir), test_metrics={}, train_seconds=float(seconds), reason=rf.STOPPED,
                        best_step=best, steps=step, device=str(getattr(self, "device", "")),
                        untested=rf.NOT_TESTED if self._started else rf.UNTRAINED)
            self.emit(done)
        except rf.RunFolderError as e:                 # a full disk: the status stays as it was; say why
            _say(f"the end of run {self.run_dir.name} could not be written: {e}")

    def _open_run_dir(self) -> None:
        """Lock the run folder (and start its status) before anything is read from or written to it."""
        if self.resume_from is None:
            rf.prepare_run_dir(self.run_dir)
        self.lock = rf.RunLock(self.run_dir).acquire()
        status = self.run_dir / rf.STATUS        # a resumed run's status as it ended: kept if there is nothing to do
        self._ended_status = status.read_bytes() if self.resume_from is not None and status.is_file() else None
        try:                                     # a launcher's "starting" status: this attempt is live since then
            found = rf.read_status(self.run_dir) if status.is_file() else None
        except rf.RunFolderError:
            found = None
        self.writer = rf.RunWriter(self.run_dir)
        self.live_since = self.writer.status.started
        if (found is not None and found.state == "starting" and isinstance(found.started, (int, float))
                and found.pid in (os.getpid(), os.getppid())):    # this process's launch (or its torchrun agent's)
            self.live_since = min(self.live_since, found.started)
        if self._ended_state() != "done":        # a done run stays done until it is sure to train on (Started)
            self.writer.write()                  # status "starting", with this pid, kept fresh while the data
            self.writer.start_heartbeat()        # loads (from another host, only the heartbeat says it is live)
        # commands sent since this attempt showed live count, even if sent before this line (the launcher's
        # status says "starting" while this process still imports torch); an earlier attempt's never do
        self.watcher = rf.ControlWatcher(self.run_dir, since=self.live_since)

    def setup(self):
        """Data, split, vocabulary, model, optimizer and schedule: everything in memory, no disk writes.
        With several ranks, rank 0 prepares the plan (data, split, resume point) and the others receive it."""
        self.cfg.validate()
        ddp.init(self.ranks, stop=self._cancel.is_set)
        plan = None
        if self.ranks.main:
            try:
                plan = self._plan()
            except BaseException as e:
                self._tell_peers(e)
                raise
        plan = ddp.share(plan, self.ranks)
        if "error" in plan:
            self.peer_failed = True
            raise TrainingError(f"rank 0 could not start: {plan['error']}")
        if not self.ranks.main:
            self.cfg = TrainConfig.from_dict(plan["cfg"])
        cfg = self.cfg
        self.split, self.labels, self.vocab = plan["split"], plan["labels"], Vocab.from_list(plan["vocab"])
        self.data_source, resume = plan["data_source"], plan["resume"]
        self.state = resume[2] if resume else {}
        self.start_step = self.at_step = self.state.get("step", 0)
        threads = cfg.threads or max(1, default_threads() // self.ranks.local_world)
        torch.set_num_threads(max(1, threads))
        self.device, self.device_note = resolve_device(cfg.device)
        self.device = rank_device(self.device, self.ranks.local_rank)
        if self.ranks.distributed:
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            self.device_note = "; ".join(filter(None, [self.device_note, f"{self.ranks.world} ranks ({backend})"]))
        with torch.device("meta"):    # its size first, without memory: one that cannot fit is one line, not an OOM
            shape = build_model(cfg.task, cfg.model, len(self.vocab), len(self.labels), embed=cfg.embed,
                                hidden=cfg.hidden, layers=cfg.layers, bidirectional=cfg.bidirectional,
                                dropout=cfg.dropout, label_init=cfg.label_init, recipe=cfg.recipe, members=cfg.members)
        check_fits(sum(p.numel() for p in shape.parameters()), self.device)
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        self.model = build_model(cfg.task, cfg.model, len(self.vocab), len(self.labels), embed=cfg.embed,
                                 hidden=cfg.hidden, layers=cfg.layers, bidirectional=cfg.bidirectional,
                                 dropout=cfg.dropout, label_init=cfg.label_init, recipe=cfg.recipe,
                                 members=cfg.members).to(self.device)
        label_index = {lab: i for i, lab in enumerate(self.labels)}
        train = encode(self.split.train, self.vocab, label_index, cfg.task)
        self.train_y, self.train_lengths = train.y, train.lengths      # on the CPU, for sharing batches out
        # the data lives on the device: moved once here, a batch is then an index into it
        self.train_data = to_device(train, self.device)
        self.val_data = to_device(encode(self.split.val, self.vocab, label_index, cfg.task), self.device, labels=False)
        self.test_data = to_device(encode(self.split.test, self.vocab, label_index, cfg.task), self.device, labels=False)
        self.steps_per_epoch = math.ceil(len(self.train_data) / cfg.batch_size)
        self.total_steps = self.steps_per_epoch * cfg.epochs
        if cfg.max_steps:
            self.total_steps = min(self.total_steps, cfg.max_steps)
        # the fused AdamW kernel (one op for all parameters) where the device has it
        fused = {"fused": True} if self.device.type in ("cpu", "cuda") else {}
        if cfg.optimizer == "sgd":      # plain SGD, as the tutorial recipe steps (engine/config.py RECIPE_DEFAULTS)
            self.optimizer = torch.optim.SGD(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        else:
            self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, **fused)
        self.scheduler = self._make_scheduler()
        # mixed precision on CUDA: bf16 where the GPU has it, else fp16 with a loss scaler
        self.amp = amp_dtype(self.device, cfg.amp) or False
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp == torch.float16)
        self.class_weights = self.class_weights_cpu = None
        if cfg.task == "classify" and cfg.class_weighting > 0:
            counts = torch.bincount(self.train_y, minlength=len(self.labels)).double().clamp(min=1)
            w = (counts.sum() / counts) ** cfg.class_weighting
            self.class_weights_cpu = (w / (w * counts).sum() * counts.sum()).float()
            self.class_weights = self.class_weights_cpu.to(self.device)
        if resume:
            weights, opt, _ = resume
            try:
                self.model.load_state_dict(weights)
                self.optimizer.load_state_dict(opt["optimizer"])
                if self.scheduler and opt.get("scheduler"):
                    self.scheduler.load_state_dict(opt["scheduler"])
                if opt.get("scaler") and self.scaler.is_enabled():
                    self.scaler.load_state_dict(opt["scaler"])
                self._resume_rng = opt.get("rng") if isinstance(opt.get("rng"), dict) else None
            except (KeyError, TypeError, ValueError, RuntimeError) as e:
                where = rf.resume_dir(self.resume_from) if self.ranks.main else "the resume point"
                raise rf.RunFolderError(f"{where}: the resume point does not fit this run ({_one_line(e)[:120]})") from None
        self.train_model = self._wrap(self.model)

    def _plan(self) -> dict:
        """What every rank must agree on, read once (by rank 0): the config, the split, labels, vocabulary,
        data source and the resume point."""
        cfg = self.cfg
        resolve_device(cfg.device)       # a device asked for but absent: the error before the data is read
        if self.resume_from:
            saved = rf.read_config(self.resume_from)
            split = rf.read_json(self.resume_from / rf.SPLIT, dict)
            try:
                split = Split(train=[tuple(p) for p in split["train"]], val=[tuple(p) for p in split["val"]],
                              test=[tuple(p) for p in split["test"]], seed=split["seed"])
                labels, vocab, source = saved["labels"], saved["vocab"], saved["data_source"]
            except (KeyError, TypeError) as e:
                raise rf.RunFolderError(f"{self.resume_from}: config.json or split.json lacks {e}") from None
            unknown = sorted({lab for part in (split.train, split.val, split.test) for _, lab in part} - set(labels))
            if unknown:
                raise rf.RunFolderError(f"{self.resume_from / rf.CONFIG}: damaged (split.json has the label "
                                        f"{unknown[0]!r}, which its labels lack)")
            resume = rf.load_resume_point(self.resume_from)
            if (self.resume_from / rf.WEIGHTS).exists():   # the best weights are tested at the end: a damaged
                rf.load_weights(self.resume_from / rf.WEIGHTS)   # file is said now, before training changes the run
        else:
            ds = self.dataset or load_dataset(cfg.data, ascii_fold=cfg.ascii_fold)
            source, labels, resume = ds.source, list(ds.labels), None
            split = split_to_train(ds, cfg)
            vocab = Vocab.build(n for n, _ in split.train).to_list()
        return {"cfg": cfg.to_dict(), "split": split, "labels": labels, "vocab": vocab, "data_source": source,
                "resume": resume}

    def _tell_peers(self, e: BaseException) -> None:
        """Rank 0 could not start: the other ranks hear why and stop quietly (instead of waiting for it)."""
        if self.ranks.distributed and self.ranks.main and ddp.dist.is_initialized():   # (not: a stop before it)
            try:
                ddp.share({"error": _one_line(e)}, self.ranks)
            except Exception:
                pass

    def _wrap(self, model):
        """The module the training step runs: DistributedDataParallel with several ranks, then torch.compile
        (or CUDA graphs through its 'reduce-overhead' mode) when asked for. Saving and evaluating use the bare
        model (same parameters)."""
        cfg = self.cfg
        if cfg.cuda_graphs and self.device.type != "cuda":
            raise TrainingError(f"--cuda-graphs needs a CUDA device (this run trains on {self.device.type}); "
                                f"leave it off or train with --device cuda")
        if self.ranks.distributed:
            from torch.nn.parallel import DistributedDataParallel
            model = DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if cfg.compile or cfg.cuda_graphs:
            model = torch.compile(model, mode="reduce-overhead" if cfg.cuda_graphs else None)
        return model

    def _make_scheduler(self):
        cfg = self.cfg
        if cfg.schedule == "cosine":
            return torch.optim.lr_scheduler.LambdaLR(
                self.optimizer, lambda s: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(s / max(1, self.total_steps), 1.0))))
        if cfg.schedule == "step":
            return torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=max(1, self.steps_per_epoch * 3), gamma=0.5)
        return None

    def _run_meta(self) -> dict:
        return {"created": time.strftime("%Y-%m-%dT%H:%M:%S"), "train": self.cfg.to_dict(), "labels": self.labels,
                "vocab": self.vocab.to_list(), "data_source": self.data_source, "split_seed": self.split.seed,
                "split_counts": {k: len(getattr(self.split, k)) for k in ("train", "val", "test")},
                "n_params": sum(p.numel() for p in self.model.parameters()), "torch": torch.__version__,
                "world_size": self.ranks.world}

    def _check_something_to_resume(self) -> None:
        """A done run resumed with no step left to train (its own epochs, or --max-steps below its step): say so and
        change nothing (the trainer would test it again and rewrite its end). One process only: with several ranks
        the others cannot see the run's status."""
        if self.ranks.world != 1 or self.start_step < self.total_steps:
            return
        if self._ended_state() == "done":       # its status was left as it was (_open_run_dir): nothing changed
            short, limit, further = self._limit_words()
            where = (short if self.start_step == self.total_steps else
                     f"past {limit}")       # was "step 226 of 113 with 1 epochs", then "the 5 steps of 5 epochs"
            raise NothingToResume(f"run {self.run_dir.name} is done (step {self.start_step:,}, {where}): nothing to "
                                  f"resume; {further} trains it further")
        before = rf.read_json(self.run_dir / rf.CONFIG, dict).get("train") or {}
        if any(before.get(k) != getattr(self.cfg, k) for k in ("epochs", "max_steps")):   # lowered by this resume
            _, limit, further = self._limit_words()
            trained = self.start_step / max(1, self.steps_per_epoch)
            raise NothingToResume(f"run {self.run_dir.name} has trained {self.start_step:,} steps ({trained:.2f} "
                                  f"epochs), as many as {limit} or more: give {further} to train it on", refused=True)

    def _limit_words(self) -> tuple[str, str, str]:
        """(what ends the run, shortly and with its steps; what would let it train further): its epochs ("the end
        of 3 epochs", "the 264 steps of 3 epochs", "--epochs N with more epochs"), or --max-steps where that comes
        first ("the --max-steps 5 limit", "the 5 steps --max-steps 5 allows (5 epochs are 440)", "a --max-steps above 264
        (or 0: none)"). It said "the 5 steps of 5 epochs and --max-steps 5", as if 5 epochs were 5 steps, and
        offered more epochs, which would not have trained a step more."""
        epochs = f"{self.cfg.epochs} epoch{'s' * (self.cfg.epochs != 1)}"
        by_epochs = self.steps_per_epoch * self.cfg.epochs
        if self.cfg.max_steps and self.cfg.max_steps < by_epochs:
            return (f"the --max-steps {self.cfg.max_steps:,} limit", f"the {self.total_steps:,} steps --max-steps "
                    f"{self.cfg.max_steps:,} allows ({epochs} {'are' if self.cfg.epochs != 1 else 'is'} {by_epochs:,})",
                    f"a --max-steps above {self.start_step:,} (or 0: none)")
        return f"the end of {epochs}", f"the {self.total_steps:,} steps of {epochs}", "--epochs N with more epochs"

    def _ended_state(self) -> str | None:
        """The state in a resumed run's status.json as this trainer found it (None: not a resume, or unreadable)."""
        try:
            return json.loads(self._ended_status).get("state") if self._ended_status else None
        except (ValueError, AttributeError):
            return None

    def _record_resumed_settings(self) -> None:
        """A resume that changed settings (``train --resume RUN --epochs 7``): config.json says what the run trains
        with now, and ``resumed_with`` lists each resume's changes (what it was trained with before stays known)."""
        meta = rf.read_json(self.run_dir / rf.CONFIG, dict)
        before, now = meta.get("train") or {}, self.cfg.to_dict()
        changed = {k: v for k, v in now.items() if before.get(k) != v}
        if changed:
            meta["train"] = now
            meta["resumed_with"] = [*meta.get("resumed_with", []), {"step": self.start_step, **changed}]
            rf.atomic_write_json(self.run_dir / rf.CONFIG, meta)

    def _run(self) -> Done:
        cfg = self.cfg
        cfg.validate()
        main = self.ranks.main
        if main and self.run_dir is not None:     # --run-dir or --resume: lock it before reading or writing
            try:
                ddp.init(self.ranks, stop=self._cancel.is_set)
                self._open_run_dir()
            except BaseException as e:
                self._tell_peers(e)
                raise
        self.setup()                              # prepare: no disk writes
        cfg = self.cfg                            # (ranks other than 0 got rank 0's)
        if main:
            if self.run_dir is None:
                self.run_dir = rf.new_run_dir(self.checkpoints, cfg.task, cfg.model)
                self._open_run_dir()
            if self.resume_from:
                self._check_something_to_resume()
                rf.clean_for_resume(self.run_dir, self.start_step, keep_since=self.live_since)
                self._record_resumed_settings()
                saved_world = self.state.get("world_size", 1)
                if saved_world != self.ranks.world:
                    self.device_note = "; ".join(filter(None, [
                        self.device_note, f"resumed with {self.ranks.world} rank{'s' * (self.ranks.world != 1)} "
                                          f"(saved with {saved_world})"]))
            else:
                rf.write_run_files(self.run_dir, self._run_meta(), {"seed": self.split.seed, "train": self.split.train,
                                                                    "val": self.split.val, "test": self.split.test})
        self._started = True
        self.emit(Started(run_dir=str(self.run_dir), config=cfg.to_dict(), labels=self.labels,
                          total_steps=self.total_steps, steps_per_epoch=self.steps_per_epoch,
                          n_train=len(self.train_data), device=str(self.device), note=self.device_note,
                          start_step=self.start_step, data_source=self.data_source or ""))
        spe, total = self.steps_per_epoch, self.total_steps
        eval_every = cfg.eval_every or spe
        self.best = self.state.get("best")
        self.best_step = self.state.get("best_step", 0)
        self.bad_evals = self.state.get("bad_evals", 0)
        self.paused_seconds = 0.0
        t0 = time.perf_counter() - self.state.get("train_seconds", 0.0)
        elapsed = lambda: time.perf_counter() - t0 - self.paused_seconds  # training time, pauses left out
        last_save = elapsed()
        step, reason = self.start_step, "finished"
        window = {"loss": torch.zeros((), device=self.device), "steps": 0, "names": 0, "t": elapsed()}
        since_eval = {"loss": torch.zeros((), device=self.device), "steps": 0}
        # a resume goes on as if never stopped: the loss windows open at the resume point (the first Step and Eval
        # after it averaged only the steps since, and logged other figures), and the random generators where they
        # were (dropout drew other masks: other weights than the run not stopped). Each rank takes its own sums
        # when resumed with as many ranks as saved; with another number the windows open empty (rank 0's sums
        # are its share of the loss only)
        mine = self._own_part(self.state.get("rank_losses"))
        if mine is None and self.ranks.world == 1 and self.state.get("world_size", 1) == 1:   # before rank_losses
            mine = {name: self.state[name].get("loss") for name in ("window", "since_eval")
                    if isinstance(self.state.get(name), dict)}
        for name, acc in (("window", window), ("since_eval", since_eval)):
            saved, loss = self.state.get(name), (mine or {}).get(name)
            if isinstance(saved, dict) and isinstance(loss, (int, float)) and all(
                    isinstance(saved.get(k), (int, float)) for k in acc if k != "loss"):
                acc.update({k: saved[k] for k in acc if k != "loss"},
                           loss=torch.tensor(float(loss), device=self.device))
        self._acc = {"window": window, "since_eval": since_eval}
        if self._resume_rng is not None:
            self._restore_rng(self._resume_rng)
        self.model.train()

        def timed_save() -> None:     # rank 0's timer, agreed at a control: the state after the last step
            nonlocal last_save
            self._save_now = False
            self._gather_ranks(step)
            if main:
                self.save_resume_point(step, elapsed())
                last_save, self._save_due = elapsed(), False

        self._timed_save = timed_save
        while step < total and reason == "finished":
            for idx in self.epoch_batches(step // spe)[step % spe:]:
                flag = self._control()
                if flag != ddp.GO:
                    reason = rf.STOPPED if flag == ddp.STOP else "early_stop"
                    break
                if self._save_now:
                    timed_save()
                loss = self.train_step(idx)
                step += 1
                self.at_step = step
                for acc in (window, since_eval):
                    acc["loss"] += loss
                    acc["steps"] += 1
                window["names"] += len(idx)

                if step % cfg.log_every == 0 or step == total:
                    mean = self._finite(self._mean(window), step)  # one sync per window
                    now = elapsed()
                    done = (step - self.start_step) / max(1, total - self.start_step)
                    eta = (now - self.state.get("train_seconds", 0.0)) * (1 - done) / max(done, 1e-9)
                    self.emit(Step(step=step, epoch=step / spe, loss=mean, lr=self.optimizer.param_groups[0]["lr"],
                                   names_per_s=window["names"] / max(now - window["t"], 1e-9), elapsed=now, eta=eta,
                                   total_steps=total))
                    window.update(loss=window["loss"].zero_(), steps=0, names=0, t=now)

                if step % eval_every == 0 or step == total:
                    train_loss = self._finite(self._mean(since_eval), step)
                    since_eval.update(loss=since_eval["loss"].zero_(), steps=0)
                    self._gather_ranks(step)   # every rank reaches each evaluation: the resume point's parts
                    if main:   # rank 0 alone evaluates and decides; the others wait at the next step
                        metrics = self.evaluate(self.val_data)
                        value = metrics[cfg.monitor]
                        improved = self.best is None or (value > self.best if cfg.monitor == "accuracy" else value < self.best)
                        if improved:
                            self.best, self.best_step, self.bad_evals = value, step, 0
                            rf.save_weights(self.model.state_dict(), self.run_dir / rf.WEIGHTS)
                        else:
                            self.bad_evals += 1
                        self.emit(Eval(step=step, epoch=step / spe, train_loss=train_loss, metrics=metrics,
                                       best=improved, elapsed=elapsed()))
                        self.save_resume_point(step, elapsed())
                        last_save, self._save_due = elapsed(), False
                        self.model.train()
                        if cfg.patience and self.bad_evals >= cfg.patience and step < total:   # at the last
                            reason = "early_stop"        # evaluation patience stops nothing: the run finished
                            if step < total:   # the other ranks are at the next step's control: tell them
                                ddp.agree(ddp.EARLY_STOP, self.ranks)
                            break
                elif main and elapsed() - last_save >= self.save_every_s:   # a kill loses at most this much:
                    self._save_due = True        # saved at the next step's control, which every rank reaches
                if step >= total:
                    break
        if self._gathered is None or self._gathered[0] != step:   # the last resume point (_finish), if not saved yet
            self._gather_ranks(step)
        if reason == "finished" and cfg.max_steps and step >= cfg.max_steps and step < spe * cfg.epochs:
            reason = "max_steps"
        if reason == rf.STOPPED and step > 0:   # stopped before any step: nothing to test (_finish), said at once
            self.emit(Status("stopping"))
        if not main:
            return Done(run_dir="", test_metrics={}, train_seconds=elapsed(), reason=reason, steps=step,
                        device=str(self.device))
        return self._finish(step, reason, elapsed())

    def _mean(self, acc: dict) -> float:
        """The mean training loss since ``acc`` was reset: over every rank's share of the batches."""
        return ddp.total([(acc["loss"] / max(1, acc["steps"])).item()], self.ranks)[0]

    def _finish(self, step: int, reason: str, train_seconds: float) -> Done:
        """Keep the best weights (or, stopped before any evaluation, the current ones), a resume point at the
        last step, and the test metrics of the best weights. Stopped before its first step, a run has learned
        nothing: it keeps a resume point (`train --resume` trains it, on its split) and no weights, and is not
        tested (the untrained network's figures, or its n-gram blend's, would read as the model's)."""
        if step > self.start_step or rf.resume_dir(self.run_dir) is None:
            self.save_resume_point(step, train_seconds)   # no-op when the last evaluation saved this step
        if step == 0:
            return Done(run_dir=str(self.run_dir), test_metrics={}, train_seconds=train_seconds, reason=reason,
                        steps=0, device=str(self.device), untested=rf.UNTRAINED)
        if not (self.run_dir / rf.WEIGHTS).exists():
            rf.save_weights(self.model.state_dict(), self.run_dir / rf.WEIGHTS)
        self.model.load_state_dict(rf.load_weights(self.run_dir / rf.WEIGHTS))
        blended, blend = self._blend()
        test = evaluate(blended or self.model, self.test_data, self.cfg.task, self.labels, self.device, self.amp)
        if blend:
            test["lm_blend"] = blend
        if self.cfg.task == "classify":
            self._calibrate()
        return Done(run_dir=str(self.run_dir), test_metrics=test, train_seconds=train_seconds, reason=reason,
                    best_step=self.best_step, steps=step, device=str(self.device))

    def _blend(self):
        """The n-gram blend of the best weights (engine/blend.py): (the blended model or None, its report or
        None). Written as lm.safetensors, with that report, before the test is scored, so everything that loads the
        run (calibration, eval, classify, the TUI) reads the same model the test figures are about; a run stopped
        before its test is recorded is described from the file (runfolder.kept_blend), and `train --resume` of it
        chooses the blend afresh and tests it."""
        from .blend import fit_blend, fit_mix, remove_blend, save_blend
        remove_blend(self.run_dir)
        if not self.cfg.lm_order:
            return None, None
        fit = fit_blend if self.cfg.task == "classify" else fit_mix
        try:
            blended, report = fit(self.model, self.train_data, self.val_data, len(self.labels), len(self.vocab),
                                  self.cfg.lm_order, self.device)
            if blended is not None:      # with what was chosen in its header: the file says what it is, even
                save_blend(self.run_dir, blended, report)   # if the run stops before its test records it
        except (NamestudioError, RuntimeError, ValueError) as e:
            _say(f"n-gram blend skipped: {_one_line(e)}")
            return None, None
        return blended, report     # the report goes out with the test figures (Done); the CLI prints it

    def _calibrate(self) -> None:
        """Temperature scaling of the best weights, fitted on the validation split (calibration.json). A run whose
        calibration fails is still a good run: its probabilities are just not calibrated."""
        from .calibration import calibrate_run
        try:
            calibrate_run(self.run_dir)
        except (NamestudioError, RuntimeError, ValueError) as e:
            _say(f"calibration skipped: {_one_line(e)}")

    def _finite(self, loss: float, step: int) -> float:
        if math.isfinite(loss):
            return loss
        if self.run_dir is None or not self.ranks.main:
            kept = "rank 0 keeps the best weights so far"
        elif (self.run_dir / rf.WEIGHTS).exists():
            kept = f"the best weights so far (step {self.best_step}) are kept in {self.run_dir.name}"
        else:
            kept = "no checkpoint exists yet (it failed before its first evaluation)"
        raise TrainingError(f"training loss became {loss} at step {step}; stopped; {kept}; "
                            f"try a lower learning rate or gradient clipping")

    def _rank_state(self) -> dict:
        """This rank's own part of a resume point: its random generators and the loss sums of its open windows."""
        rng = {"cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {"rng": rng, "loss": {name: float(a["loss"]) for name, a in self._acc.items()}}

    def _gather_ranks(self, step: int) -> None:
        """Every rank, at the same step (see _run): each rank's _rank_state to rank 0, for the resume point it
        saves at this step."""
        self._gathered = (step, ddp.gather(self._rank_state(), self.ranks))

    def _own_part(self, parts) -> dict | None:
        """This rank's entry of a per-rank list saved with the resume point, or None when there is none for it:
        saved before such lists, or with another number of ranks."""
        if (isinstance(parts, list) and len(parts) == self.ranks.world == self.state.get("world_size", 1)
                and isinstance(parts[self.ranks.rank], dict)):
            return parts[self.ranks.rank]
        return None

    def save_resume_point(self, step: int, train_seconds: float) -> None:
        """Rank 0: the resume point at ``step``. With several ranks, the other ranks' parts were gathered at this
        step (_gather_ranks); without them (never the case in _run) every rank would resume with rank 0's."""
        if step == getattr(self, "saved_step", None):
            return
        self._saving = True
        try:
            self._save_resume_point(step, train_seconds)
        finally:
            self._saving = False
        if self._abort_asked:            # asked to stop at once while it was written: now that it is whole
            raise KeyboardInterrupt

    def _save_resume_point(self, step: int, train_seconds: float) -> None:
        self.saved_step = step
        own = self._rank_state()            # rank 0's as it is now (after its evaluation)
        gathered = self._gathered[1] if self._gathered and self._gathered[0] == step else None
        parts = [own, *gathered[1:]] if gathered and len(gathered) == self.ranks.world else [own]
        rng = {**own["rng"], "ranks": [p["rng"] for p in parts]}   # rank 0's at the top: older readers take it
        acc = {name: {k: (float(v.item()) if isinstance(v, torch.Tensor) else v) for k, v in a.items()}
               for name, a in self._acc.items()}
        rf.save_resume_point(
            self.run_dir, step, self.model.state_dict(),
            {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict() if self.scheduler else None,
             "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None, "rng": rng},
            {"best": self.best, "best_step": self.best_step, "bad_evals": self.bad_evals,
             "train_seconds": train_seconds, "world_size": self.ranks.world, **acc,
             "rank_losses": [p["loss"] for p in parts]},
            epoch=step / max(1, self.steps_per_epoch))

    def _restore_rng(self, rng: dict) -> None:
        """The generators' states of the resume point: this rank's own when resumed with as many ranks as saved
        (``rng["ranks"]``, one per rank), else rank 0's (the top level: every rank takes it; resume points saved
        before per-rank states have only that)."""
        rng = self._own_part(rng.get("ranks")) or rng
        try:
            if isinstance(rng.get("cpu"), torch.Tensor):
                torch.set_rng_state(rng["cpu"])
            if self.device.type == "cuda" and isinstance(rng.get("cuda"), torch.Tensor):
                torch.cuda.set_rng_state(rng["cuda"], self.device)
        except (RuntimeError, TypeError, ValueError):
            pass     # a state this build cannot take (another torch): the run goes on from its seed's stream

    def epoch_batches(self, epoch: int) -> list[torch.Tensor]:
        """The batches of one epoch: the same for the same seed and epoch, so a resumed run picks up where it was.
        Every rank computes the same list; each trains its share of every batch (see train_step)."""
        return epoch_batches(self.train_lengths, self.cfg.batch_size,
                             torch.Generator().manual_seed((self.cfg.seed * 1000 + epoch) % 2**63))  # any valid seed

    def _share(self, idx: torch.Tensor) -> tuple[torch.Tensor, float]:
        """This rank's part of a global batch and its weight: the part's share of what the batch's mean loss
        averages over (names, class-weighted names for weighted classifiers, or characters for generators).
        The weights of all ranks add up to 1, so the averaged gradient is the one-process gradient."""
        part = ddp.shard(idx, self.ranks)
        if not self.ranks.distributed:
            return idx, 1.0
        if len(part) == 0:                     # a last batch smaller than the world: take part, weigh nothing
            return idx[:1], 0.0
        return part, self._amount(part) / self._amount(idx)

    def _amount(self, idx: torch.Tensor) -> float:
        if self.cfg.task == "generate":
            return float(self.train_lengths[idx].sum())
        if self.class_weights_cpu is not None:
            return float(self.class_weights_cpu[self.train_y[idx]].sum())
        return float(len(idx))

    def _loss(self, data: Encoded, idx: torch.Tensor):
        return batch_loss(self.train_model, data.batch(idx, self.device), self.cfg.task, self.amp, self.class_weights)[0]

    def train_step(self, idx: torch.Tensor) -> torch.Tensor:
        """One optimizer step on a global batch (this rank's share of it); returns this rank's part of the
        batch's mean loss (the whole of it in one process)."""
        part, weight = self._share(idx)
        loss = self._loss(self.train_data, part)
        # DDP averages the gradients over the ranks: scale so the average is the weighted sum
        scaled = loss * (weight * self.ranks.world) if self.ranks.distributed else loss
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(scaled).backward()
        if self.cfg.clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.scheduler:
            self.scheduler.step()
        return loss.detach() * weight if self.ranks.distributed else loss.detach()

    def evaluate(self, data: Encoded) -> dict:
        return evaluate(self.model, data, self.cfg.task, self.labels, self.device, self.amp)


def _fan_out(sinks: list[Callable]) -> Callable:
    def send(event) -> None:
        for sink in sinks:
            sink(event)
    return send


def _say(text: str) -> None:
    """A line for whoever reads stderr (the CLI's terminal; a launched run's train.log). A reader that went away
    (`train … 2>&1 | head -1`) must not fail the run that has trained: this line and the rest of stderr then
    go nowhere, as the CLI does with its own output."""
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stderr.fileno())
        except (OSError, ValueError, AttributeError):
            pass


def _one_line(e: BaseException) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return msg if isinstance(e, NamestudioError) else f"{type(e).__name__}: {msg}"


def batch_loss(model, batch, task: str, amp: bool = False, class_weights=None, reduction: str = "mean"):
    """(loss, logits) for one batch of either task."""
    with torch.autocast(device_type=batch.ids.device.type, dtype=amp if isinstance(amp, torch.dtype) else torch.float16,
                        enabled=bool(amp)):   # amp: False, True (fp16) or the dtype (Trainer.amp)
        if task == "classify":
            logits, target = model(batch.ids, batch.lengths), batch.y
        else:
            (logits, _), target = model(batch.ids, batch.y), batch.target
        if logits.dim() > target.dim() + 1:   # an Ensemble training: each member's logits, each scored on its own
            target = target.expand(logits.shape[0], *target.shape)
        flat = logits.float().flatten(0, -2)
        if task == "classify":
            return F.cross_entropy(flat, target.flatten(), weight=class_weights, reduction=reduction), logits
        return F.cross_entropy(flat, target.flatten(), ignore_index=0, reduction=reduction), logits


@torch.no_grad()
def evaluate(model, data: Encoded, task: str, labels: list[str], device, amp: bool = False, batch_size: int = 1024) -> dict:
    """Validation/test metrics. Classifiers: loss, accuracy, balanced accuracy, macro-F1, per-class, confusion.
    Generators: NLL per character (the end token included) and perplexity."""
    model.eval()
    total, count, preds = 0.0, 0, []
    order = torch.argsort(data.lengths, stable=True)   # batches of similar lengths: little padding
    for s in range(0, len(data), batch_size):
        idx = order[s:s + batch_size]
        loss, logits = batch_loss(model, data.batch(idx, device), task, amp, reduction="sum")
        total += loss.item()
        if task == "classify":
            count += len(idx)
            preds.append(logits.argmax(-1).cpu())
        else:
            count += int((data.target[idx] != 0).sum())
    mean = total / max(1, count)
    if task == "generate":
        return {"nll": mean, "perplexity": perplexity(mean), "n_chars": count}
    if not preds:
        return {"loss": mean, "accuracy": 0.0, "balanced_accuracy": 0.0, "macro_f1": 0.0, "n": 0}
    cm = confusion_matrix(data.y[order], torch.cat(preds), len(labels))
    return {"loss": mean, **classification_report(cm, labels)}


def train(config: TrainConfig, checkpoints="checkpoints", on_event=None, **kw) -> Done | Failed:
    return Trainer(config, checkpoints, on_event, **kw).run()
