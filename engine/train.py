"""One training loop for both tasks. It reports through events and knows nothing of any UI.

The shape, as in makemore: prepare the data, the model and the optimizer (no disk writes), then one flat
loop that trains, logs, evaluates and saves. Everything the loop says is an event, sent to a list of sinks:
the run-folder writer (engine/runfolder.RunWriter), the CLI's printer, or a test's list.
"""
from __future__ import annotations

import math
import random
import threading
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from namestudio.data import Split, Vocab, load_dataset, split_by_name
from namestudio.data.errors import NamestudioError

from . import runfolder as rf
from .batches import Encoded, encode, epoch_batches
from .config import TrainConfig, default_threads
from .device import resolve_device
from .events import Done, Eval, Failed, Started, Status, Step
from .metrics import classification_report, confusion_matrix, perplexity
from .models import build_model

SAVE_EVERY_S = 60.0   # a resumable state at least this often (seconds of training), as well as at evaluations


class TrainingError(NamestudioError):
    """A run that cannot go on; the message is one line."""


class Trainer:
    """Train one model. ``run()`` blocks; ``pause()``, ``resume()`` and ``cancel()`` may be called from any
    thread, and a run folder's control.json (``namestudio stop|pause|resume``) does the same.

    Events go to every sink in ``on_event`` (a callable or a list) as they happen: Started, Step, Eval,
    Status, then Done or Failed. The run folder is written by a RunWriter sink that run() adds itself.
    ``run_dir`` trains into that folder (``train --run-dir``); ``resume_from`` continues a saved run.
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
        self._cancel = threading.Event()
        self._running = threading.Event()
        self._running.set()

    # ---- control, from any thread -------------------------------------------------
    def pause(self):
        self._running.clear()

    def resume(self):
        self._running.set()

    def cancel(self):
        self._cancel.set()
        self._running.set()

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

    def _should_stop(self) -> bool:
        """Once per batch: one os.stat of control.json; waits while paused. True when asked to stop."""
        if self.watcher:
            self._apply(self.watcher.poll())
        if not self._running.is_set():
            t = time.perf_counter()
            self.emit(Status("paused"))
            while not self._running.wait(0.2):
                if self.watcher:
                    self._apply(self.watcher.poll())
            self.paused_seconds += time.perf_counter() - t
            if not self._cancel.is_set():
                self.emit(Status("running"))
        return self._cancel.is_set()

    # ---- events -------------------------------------------------------------------
    def emit(self, event) -> None:
        """The run-folder writer first (files are on disk before anyone hears of them), then the other sinks."""
        if self.writer:
            self.writer(event)
        if self.on_event:
            self.on_event(event)

    # ---- the run ------------------------------------------------------------------
    def run(self) -> Done | Failed:
        try:
            try:
                result = self._run()
            except Exception as e:  # every failure becomes one event with one line
                result = Failed(message=_one_line(e), run_dir=str(self.run_dir) if self.run_dir else None)
            try:
                self.emit(result)
            except rf.RunFolderError as e:  # the writer could not write the end (disk full): say so
                result = Failed(message=str(e), run_dir=str(self.run_dir) if self.run_dir else None)
                if self.on_event:
                    self.on_event(result)
        finally:
            if self.writer:
                self.writer.close()
            if self.lock:
                self.lock.release()
        return result

    def _open_run_dir(self) -> None:
        """Lock the run folder (and start its status) before anything is read from or written to it."""
        if self.resume_from is None:
            rf.prepare_run_dir(self.run_dir)
        self.lock = rf.RunLock(self.run_dir).acquire()
        self.writer = rf.RunWriter(self.run_dir)
        self.writer.write()                      # status "starting", with this pid
        self.watcher = rf.ControlWatcher(self.run_dir)

    def setup(self):
        """Data, split, vocabulary, model, optimizer and schedule: everything in memory, no disk writes."""
        cfg = self.cfg
        cfg.validate()
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        torch.set_num_threads(max(1, cfg.threads or default_threads()))
        self.device, self.device_note = resolve_device(cfg.device)
        self.start_step, self.state, resume = 0, {}, None
        if self.resume_from:
            saved = rf.read_json(self.resume_from / rf.CONFIG, dict)
            split = rf.read_json(self.resume_from / rf.SPLIT, dict)
            try:
                self.split = Split(train=[tuple(p) for p in split["train"]], val=[tuple(p) for p in split["val"]],
                                   test=[tuple(p) for p in split["test"]], seed=split["seed"])
                self.labels, self.vocab = saved["labels"], Vocab.from_list(saved["vocab"])
                self.data_source = saved["data_source"]
            except (KeyError, TypeError) as e:
                raise rf.RunFolderError(f"{self.resume_from}: config.json or split.json lacks {e}") from None
            resume = rf.load_resume_point(self.resume_from)
            self.state = resume[2]
            self.start_step = self.state["step"]
        else:
            ds = self.dataset or load_dataset(cfg.data, ascii_fold=cfg.ascii_fold)
            self.data_source = ds.source
            self.labels = list(ds.labels)
            if cfg.task == "classify" and len(self.labels) < 2:
                raise TrainingError(f"{ds.source}: one language only ({', '.join(self.labels) or 'none'}): a "
                                    f"classifier needs at least two (or train a generator: --task generate)")
            self.split = split_by_name(ds.pairs, seed=cfg.split_seed, val=cfg.val_fraction, test=cfg.test_fraction)
            if not self.split.train or not self.split.val:
                raise TrainingError(f"{ds.source}: too few names to split into train and validation")
            self.vocab = Vocab.build(n for n, _ in self.split.train)
        self.model = build_model(cfg.task, cfg.model, len(self.vocab), len(self.labels), embed=cfg.embed,
                                 hidden=cfg.hidden, layers=cfg.layers, bidirectional=cfg.bidirectional,
                                 dropout=cfg.dropout, label_init=cfg.label_init).to(self.device)
        label_index = {lab: i for i, lab in enumerate(self.labels)}
        self.train_data = encode(self.split.train, self.vocab, label_index, cfg.task)
        self.val_data = encode(self.split.val, self.vocab, label_index, cfg.task)
        self.test_data = encode(self.split.test, self.vocab, label_index, cfg.task)
        self.steps_per_epoch = math.ceil(len(self.train_data) / cfg.batch_size)
        self.total_steps = self.steps_per_epoch * cfg.epochs
        if cfg.max_steps:
            self.total_steps = min(self.total_steps, cfg.max_steps)
        # the fused AdamW kernel (one op for all parameters) where the device has it
        fused = {"fused": True} if self.device.type in ("cpu", "cuda") else {}
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, **fused)
        self.scheduler = self._make_scheduler()
        self.amp = cfg.amp and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.class_weights = None
        if cfg.task == "classify" and cfg.class_weighting > 0:
            counts = torch.bincount(self.train_data.y, minlength=len(self.labels)).double().clamp(min=1)
            w = (counts.sum() / counts) ** cfg.class_weighting
            self.class_weights = (w / (w * counts).sum() * counts.sum()).float().to(self.device)
        if resume:
            weights, opt, _ = resume
            try:
                self.model.load_state_dict(weights)
                self.optimizer.load_state_dict(opt["optimizer"])
                if self.scheduler and opt.get("scheduler"):
                    self.scheduler.load_state_dict(opt["scheduler"])
            except (KeyError, TypeError, ValueError, RuntimeError) as e:
                where = rf.resume_dir(self.resume_from)
                raise rf.RunFolderError(f"{where}: the resume point does not fit this run ({_one_line(e)[:120]})") from None

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
                "n_params": sum(p.numel() for p in self.model.parameters()), "torch": torch.__version__}

    def _run(self) -> Done:
        cfg = self.cfg
        cfg.validate()
        if self.run_dir is not None:              # --run-dir or --resume: lock it before reading or writing
            self._open_run_dir()
        self.setup()                              # prepare: no disk writes
        if self.run_dir is None:
            self.run_dir = rf.new_run_dir(self.checkpoints, cfg.task, cfg.model)
            self._open_run_dir()
        if self.resume_from:
            rf.clean_for_resume(self.run_dir, self.start_step)
        else:
            rf.write_run_files(self.run_dir, self._run_meta(), {"seed": self.split.seed, "train": self.split.train,
                                                                "val": self.split.val, "test": self.split.test})
        self.emit(Started(run_dir=str(self.run_dir), config=cfg.to_dict(), labels=self.labels,
                          total_steps=self.total_steps, steps_per_epoch=self.steps_per_epoch,
                          n_train=len(self.train_data), device=str(self.device), note=self.device_note,
                          start_step=self.start_step))
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
        self.model.train()
        while step < total and reason == "finished":
            for idx in self.epoch_batches(step // spe)[step % spe:]:
                if self._should_stop():
                    reason = "cancelled"
                    break
                loss = self.train_step(idx)
                step += 1
                for acc in (window, since_eval):
                    acc["loss"] += loss
                    acc["steps"] += 1
                window["names"] += len(idx)

                if step % cfg.log_every == 0 or step == total:
                    mean = self._finite((window["loss"] / window["steps"]).item(), step)  # one sync per window
                    now = elapsed()
                    done = (step - self.start_step) / max(1, total - self.start_step)
                    eta = (now - self.state.get("train_seconds", 0.0)) * (1 - done) / max(done, 1e-9)
                    self.emit(Step(step=step, epoch=step / spe, loss=mean, lr=self.optimizer.param_groups[0]["lr"],
                                   names_per_s=window["names"] / max(now - window["t"], 1e-9), elapsed=now, eta=eta,
                                   total_steps=total))
                    window.update(loss=window["loss"].zero_(), steps=0, names=0, t=now)

                if step % eval_every == 0 or step == total:
                    train_loss = self._finite((since_eval["loss"] / max(1, since_eval["steps"])).item(), step)
                    since_eval.update(loss=since_eval["loss"].zero_(), steps=0)
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
                    last_save = elapsed()
                    self.model.train()
                    if cfg.patience and self.bad_evals >= cfg.patience:
                        reason = "early_stop"
                        break
                elif elapsed() - last_save >= self.save_every_s:   # a kill loses at most this much training
                    self.save_resume_point(step, elapsed())
                    last_save = elapsed()
                if step >= total:
                    break
        if reason == "finished" and cfg.max_steps and step >= cfg.max_steps and step < spe * cfg.epochs:
            reason = "max_steps"
        if reason == "cancelled":
            self.emit(Status("stopping"))
        return self._finish(step, reason, elapsed())

    def _finish(self, step: int, reason: str, train_seconds: float) -> Done:
        """Keep the best weights (or, stopped before any evaluation, the current ones), a resume point at the
        last step, and the test metrics of the best weights."""
        if step > self.start_step or rf.resume_dir(self.run_dir) is None:
            self.save_resume_point(step, train_seconds)   # no-op when the last evaluation saved this step
        if not (self.run_dir / rf.WEIGHTS).exists():
            rf.save_weights(self.model.state_dict(), self.run_dir / rf.WEIGHTS)
        self.model.load_state_dict(rf.load_weights(self.run_dir / rf.WEIGHTS))
        test = self.evaluate(self.test_data)
        return Done(run_dir=str(self.run_dir), test_metrics=test, train_seconds=train_seconds, reason=reason,
                    best_step=self.best_step, steps=step, device=str(self.device))

    def _finite(self, loss: float, step: int) -> float:
        if math.isfinite(loss):
            return loss
        if (self.run_dir / rf.WEIGHTS).exists():
            kept = f"the best weights so far (step {self.best_step}) are kept in {self.run_dir.name}"
        else:
            kept = "no checkpoint exists yet (it failed before its first evaluation)"
        raise TrainingError(f"training loss became {loss} at step {step}; stopped; {kept}; "
                            f"try a lower learning rate or gradient clipping")

    def save_resume_point(self, step: int, train_seconds: float) -> None:
        if step == getattr(self, "saved_step", None):
            return
        self.saved_step = step
        rf.save_resume_point(
            self.run_dir, step, self.model.state_dict(),
            {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict() if self.scheduler else None},
            {"best": self.best, "best_step": self.best_step, "bad_evals": self.bad_evals,
             "train_seconds": train_seconds})

    def epoch_batches(self, epoch: int) -> list[torch.Tensor]:
        """The batches of one epoch: the same for the same seed and epoch, so a resumed run picks up where it was."""
        return epoch_batches(self.train_data.lengths, self.cfg.batch_size,
                             torch.Generator().manual_seed(self.cfg.seed * 1000 + epoch))

    def _loss(self, data: Encoded, idx: torch.Tensor):
        return batch_loss(self.model, data.batch(idx, self.device), self.cfg.task, self.amp, self.class_weights)[0]

    def train_step(self, idx: torch.Tensor) -> torch.Tensor:
        loss = self._loss(self.train_data, idx)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.scheduler:
            self.scheduler.step()
        return loss.detach()

    def evaluate(self, data: Encoded) -> dict:
        return evaluate(self.model, data, self.cfg.task, self.labels, self.device, self.amp)


def _fan_out(sinks: list[Callable]) -> Callable:
    def send(event) -> None:
        for sink in sinks:
            sink(event)
    return send


def _one_line(e: BaseException) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return msg if isinstance(e, NamestudioError) else f"{type(e).__name__}: {msg}"


def batch_loss(model, batch, task: str, amp: bool = False, class_weights=None, reduction: str = "mean"):
    """(loss, logits) for one batch of either task."""
    with torch.autocast(device_type=batch.ids.device.type, dtype=torch.float16, enabled=amp):
        if task == "classify":
            logits = model(batch.ids, batch.lengths)
            return F.cross_entropy(logits.float(), batch.y, weight=class_weights, reduction=reduction), logits
        logits, _ = model(batch.ids, batch.y)
        return F.cross_entropy(logits.float().flatten(0, 1), batch.target.flatten(), ignore_index=0,
                               reduction=reduction), logits


@torch.no_grad()
def evaluate(model, data: Encoded, task: str, labels: list[str], device, amp: bool = False, batch_size: int = 1024) -> dict:
    """Validation/test metrics. Classifiers: loss, accuracy, balanced accuracy, macro-F1, per-class, confusion.
    Generators: NLL per character (the end token included) and perplexity."""
    model.eval()
    total, count, preds = 0.0, 0, []
    for s in range(0, len(data), batch_size):
        idx = torch.arange(s, min(s + batch_size, len(data)))
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
    cm = confusion_matrix(data.y, torch.cat(preds), len(labels))
    return {"loss": mean, **classification_report(cm, labels)}


def train(config: TrainConfig, checkpoints="checkpoints", on_event=None, **kw) -> Done | Failed:
    return Trainer(config, checkpoints, on_event, **kw).run()
