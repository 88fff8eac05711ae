"""Every hyperparameter of a run, in one dataclass."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

TASKS = ("classify", "generate")
DEVICES = ("auto", "cpu", "cuda", "mps")


def default_threads() -> int:
    """Torch CPU threads when none are asked for. These models are small: a second thread gains little,
    and when another process busies a core, OpenMP threads wait on each other (measured 10-20x slower per
    step on 2 cores). So: 1 thread up to 2 cores, else all cores but one, at most 4."""
    cores = os.cpu_count() or 1
    return 1 if cores <= 2 else min(4, cores - 1)


@dataclass
class TrainConfig:
    task: str = "classify"
    model: str = "lstm"               # rnn | lstm | gru | mylstm
    data: str | None = None           # source; None means the default (pytorch-names if on disk, else builtin)
    ascii_fold: bool = False
    # model shape
    embed: int = 64                   # 0 = one-hot letters
    hidden: int | None = None         # None: 128 for classifiers, 256 for generators
    layers: int = 1
    bidirectional: bool | None = None  # None: on for classifiers (generators are always one-way)
    dropout: float | None = None      # None: 0.1 for classifiers, 0.2 for generators
    label_init: bool = True           # generators: the label also sets the initial hidden state
    # optimisation
    epochs: int | None = None         # None: 14 for classifiers, 15 for generators
    batch_size: int = 128
    lr: float = 5e-3
    weight_decay: float = 1e-2
    clip: float = 5.0                 # gradient-norm clipping, as the seeds did
    schedule: str = "cosine"          # none | cosine | step
    class_weighting: float = 0.25    # classifiers: loss weight per class = (1/freq)^this (0 = plain cross-entropy)
    eval_every: int = 0               # evaluate every N steps; 0 = once per epoch
    patience: int = 3                 # early stop after this many evaluations without improvement (0 = never)
    # reproducibility and hardware
    seed: int = 0
    split_seed: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    device: str = "auto"
    amp: bool = True                  # mixed precision, used on CUDA only
    threads: int = 0                  # torch CPU threads; 0 = auto (see default_threads)
    log_every: int = 20               # steps between step events
    max_steps: int = 0                # stop after this many steps (0 = no limit); for benchmarks and tests

    def __post_init__(self):
        if self.hidden is None:
            self.hidden = 128 if self.task == "classify" else 256
        if self.epochs is None:
            self.epochs = 14 if self.task == "classify" else 15
        if self.dropout is None:
            self.dropout = 0.1 if self.task == "classify" else 0.2
        if self.bidirectional is None:
            self.bidirectional = self.task == "classify"
        if self.task == "generate":
            self.bidirectional = False

    @property
    def monitor(self) -> str:
        """The validation metric that picks the best weights and stops early."""
        return "accuracy" if self.task == "classify" else "nll"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def validate(self) -> None:
        from .models import MODELS  # quality: ngram and hybrid are models too
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; choose {' or '.join(TASKS)}")
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; choose one of {', '.join(MODELS)}")
        if self.device not in DEVICES:
            raise ValueError(f"unknown device {self.device!r}; choose one of {', '.join(DEVICES)}")
        for name in ("epochs", "batch_size", "hidden", "layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not 0 <= self.dropout < 1:
            raise ValueError("dropout must be in [0, 1)")
        if self.lr <= 0:
            raise ValueError("learning rate must be positive")
        if self.schedule not in ("none", "cosine", "step"):
            raise ValueError(f"unknown schedule {self.schedule!r}; choose none, cosine or step")
