"""One training loop for both tasks. It reports through events and knows nothing of any UI."""
from __future__ import annotations

from namestudio.data.errors import NamestudioError

import math
import random
import threading
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from namestudio.data import Split, Vocab, load_dataset, split_by_name

from . import checkpoint as ck
from .batches import Encoded, encode, epoch_batches
from .config import TrainConfig, default_threads
from .device import resolve_device
from .events import Done, Eval, Failed, Started, Step
from .metrics import classification_report, confusion_matrix, perplexity
from .models import build_model


class Cancelled(Exception):
    pass


class TrainingError(NamestudioError):
    """A run that cannot go on; the message is one line."""


class Trainer:
    """Train one model. ``run()`` blocks; ``pause()``, ``resume()`` and ``cancel()`` may be called from any thread.

    Events go to ``on_event`` as they happen: Started, Step, Eval, then Done or Failed.
    """

    def __init__(self, config: TrainConfig, checkpoints: str | Path = "checkpoints",
                 on_event: Callable | None = None, resume_from: str | Path | None = None, dataset=None):
        self.cfg = config
        self.checkpoints = Path(checkpoints)
        self.on_event = on_event or (lambda e: None)
        self.resume_from = Path(resume_from) if resume_from else None
        self.dataset = dataset
        self._cancel = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self.run_dir: Path | None = None

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

    def _checkpoint_control(self):
        """Called once per batch: waits while paused, raises Cancelled when cancelled."""
        if not self._running.is_set():
            self._running.wait()
        if self._cancel.is_set():
            raise Cancelled()

    # ---- the run ------------------------------------------------------------------
    def run(self) -> Done | Failed:
        try:
            result = self._run()
        except Exception as e:  # every failure becomes one event with one line
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            if not isinstance(e, (TrainingError, ValueError, ck.CheckpointError)) and type(e).__name__ != "DataError":
                msg = f"{type(e).__name__}: {msg}"
            result = Failed(message=msg, run_dir=str(self.run_dir) if self.run_dir else None)
        self.on_event(result)
        return result

    def setup(self):
        cfg = self.cfg
        cfg.validate()
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        torch.set_num_threads(max(1, cfg.threads or default_threads()))
        self.device, self.device_note = resolve_device(cfg.device)
        self.start_step, self.state = 0, {}
        if self.resume_from:
            self.run_dir = self.resume_from
            saved = ck.read_json(self.run_dir / ck.CONFIG)
            split = ck.read_json(self.run_dir / ck.SPLIT)
            self.split = Split(train=[tuple(p) for p in split["train"]], val=[tuple(p) for p in split["val"]],
                               test=[tuple(p) for p in split["test"]], seed=split["seed"])
            self.labels, self.vocab = saved["labels"], Vocab.from_list(saved["vocab"])
            self.data_source = saved["data_source"]
            self.state = ck.read_json(self.run_dir / ck.STATE)
            self.start_step = self.state["step"]
        else:
            ds = self.dataset or load_dataset(cfg.data, ascii_fold=cfg.ascii_fold)
            self.data_source = ds.source
            self.split = split_by_name(ds.pairs, seed=cfg.split_seed, val=cfg.val_fraction, test=cfg.test_fraction)
            if not self.split.train or not self.split.val:
                raise TrainingError(f"{ds.source}: too few names to split into train and validation")
            self.labels = list(ds.labels)
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
        if self.resume_from:
            self.model.load_state_dict(ck.load_weights(self.run_dir / ck.LAST))
            opt = ck.load_torch(self.run_dir / ck.OPTIM)
            self.optimizer.load_state_dict(opt["optimizer"])
            if self.scheduler and opt.get("scheduler"):
                self.scheduler.load_state_dict(opt["scheduler"])
        else:
            self.run_dir = ck.new_run_dir(self.checkpoints, cfg.task, cfg.model)
            self._write_run_files()

    def _make_scheduler(self):
        cfg = self.cfg
        if cfg.schedule == "cosine":
            return torch.optim.lr_scheduler.LambdaLR(
                self.optimizer, lambda s: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(s / max(1, self.total_steps), 1.0))))
        if cfg.schedule == "step":
            return torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=max(1, self.steps_per_epoch * 3), gamma=0.5)
        return None

    def _write_run_files(self):
        n_params = sum(p.numel() for p in self.model.parameters())
        ck.atomic_write_json(self.run_dir / ck.SPLIT, {
            "seed": self.split.seed, "train": self.split.train, "val": self.split.val, "test": self.split.test})
        ck.atomic_write_json(self.run_dir / ck.CONFIG, {
            "format": 1, "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "train": self.cfg.to_dict(),
            "labels": self.labels, "vocab": self.vocab.to_list(), "data_source": self.data_source,
            "split_seed": self.split.seed, "split_counts": {k: len(getattr(self.split, k)) for k in ("train", "val", "test")},
            "n_params": n_params, "torch": torch.__version__})

    def _run(self) -> Done:
        self.setup()
        cfg = self.cfg
        self.on_event(Started(run_dir=str(self.run_dir), config=cfg.to_dict(), labels=self.labels,
                              total_steps=self.total_steps, steps_per_epoch=self.steps_per_epoch,
                              n_train=len(self.train_data), device=str(self.device), note=self.device_note,
                              start_step=self.start_step))
        best = self.state.get("best")
        best_step = self.state.get("best_step", 0)
        bad_evals = self.state.get("bad_evals", 0)
        step = self.start_step
        train_seconds = self.state.get("train_seconds", 0.0)
        eval_every = cfg.eval_every or self.steps_per_epoch
        reason = "finished"
        t0 = time.perf_counter() - train_seconds
        window_loss, window_steps, window_names, window_t = torch.zeros((), device=self.device), 0, 0, time.perf_counter()
        since_eval_loss, since_eval_steps = torch.zeros((), device=self.device), 0
        self.model.train()
        try:
            while step < self.total_steps:
                epoch = step // self.steps_per_epoch
                batches = self.epoch_batches(epoch)
                for idx in batches[step % self.steps_per_epoch:]:
                    self._checkpoint_control()
                    loss = self.train_step(idx)
                    step += 1
                    window_loss += loss
                    since_eval_loss += loss
                    window_steps += 1
                    since_eval_steps += 1
                    window_names += len(idx)
                    if step % cfg.log_every == 0 or step == self.total_steps:
                        mean = (window_loss / window_steps).item()  # the one sync per logging window
                        if not math.isfinite(mean):
                            raise TrainingError(f"training loss became {mean} at step {step}; stopped, the last good "
                                                f"checkpoint is kept (try a lower learning rate)")
                        now = time.perf_counter()
                        rate = window_names / max(now - window_t, 1e-9)
                        elapsed = now - t0
                        done_frac = (step - self.start_step) / max(1, self.total_steps - self.start_step)
                        eta = (now - t0 - train_seconds) * (1 - done_frac) / max(done_frac, 1e-9)
                        self.on_event(Step(step=step, epoch=step / self.steps_per_epoch, loss=mean, names_per_s=rate,
                                           elapsed=elapsed, eta=eta, total_steps=self.total_steps))
                        window_loss.zero_(); window_steps = window_names = 0; window_t = now
                    if step % eval_every == 0 or step == self.total_steps:
                        train_loss = (since_eval_loss / max(1, since_eval_steps)).item()
                        if not math.isfinite(train_loss):
                            raise TrainingError(f"training loss became {train_loss} at step {step}; stopped, the last "
                                                f"good checkpoint is kept (try a lower learning rate)")
                        since_eval_loss.zero_(); since_eval_steps = 0
                        metrics = self.evaluate(self.val_data)
                        value = metrics[cfg.monitor]
                        improved = best is None or (value > best if cfg.monitor == "accuracy" else value < best)
                        if improved:
                            best, best_step, bad_evals = value, step, 0
                            ck.save_weights(self.model.state_dict(), self.run_dir / ck.WEIGHTS)
                        else:
                            bad_evals += 1
                        elapsed = time.perf_counter() - t0
                        ck.append_jsonl(self.run_dir / ck.METRICS, {
                            "step": step, "epoch": round(step / self.steps_per_epoch, 3), "elapsed": round(elapsed, 3),
                            "train_loss": train_loss, "val": {k: v for k, v in metrics.items()
                                                              if k not in ("confusion", "confusion_normalized", "per_class")},
                            "best": improved})
                        self._save_resume_state(step, best, best_step, bad_evals, elapsed)
                        self.on_event(Eval(step=step, epoch=step / self.steps_per_epoch, train_loss=train_loss,
                                           metrics=metrics, best=improved, elapsed=elapsed))
                        self.model.train()
                        if cfg.patience and bad_evals >= cfg.patience:
                            reason = "early_stop"
                            break
                    if step >= self.total_steps:
                        break
                if reason == "early_stop":
                    break
            if cfg.max_steps and step >= cfg.max_steps and step < self.steps_per_epoch * cfg.epochs:
                reason = "max_steps"
        except Cancelled:
            reason = "cancelled"
        train_seconds = time.perf_counter() - t0
        if not (self.run_dir / ck.WEIGHTS).exists():  # cancelled before the first evaluation: keep what we have
            ck.save_weights(self.model.state_dict(), self.run_dir / ck.WEIGHTS)
        self.model.load_state_dict(ck.load_weights(self.run_dir / ck.WEIGHTS))
        test = self.evaluate(self.test_data)
        ck.atomic_write_json(self.run_dir / ck.TEST, {
            "test": test, "train_seconds": train_seconds, "reason": reason, "best_step": best_step,
            "steps": step, "device": str(self.device)})
        return Done(run_dir=str(self.run_dir), test_metrics=test, train_seconds=train_seconds, reason=reason,
                    best_step=best_step)

    def _save_resume_state(self, step, best, best_step, bad_evals, elapsed):
        ck.save_weights(self.model.state_dict(), self.run_dir / ck.LAST)
        ck.save_torch({"optimizer": self.optimizer.state_dict(),
                       "scheduler": self.scheduler.state_dict() if self.scheduler else None}, self.run_dir / ck.OPTIM)
        ck.atomic_write_json(self.run_dir / ck.STATE, {"step": step, "best": best, "best_step": best_step,
                                                       "bad_evals": bad_evals, "train_seconds": elapsed})

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
