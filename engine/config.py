"""Every hyperparameter of a run, in one dataclass, and the one definition of each option.

Each field carries its help text, its command-line flag, its choices and its bounds (dataclass field
metadata). From that one definition come the ``namestudio train`` options (:func:`add_train_arguments`),
reading them back (:func:`config_from_args`), the exact command line of a config (:func:`cfg_to_argv`, which
the TUI uses to launch a run), the TUI form's defaults and choices (:func:`option`), and validation
(:meth:`TrainConfig.validate`). This module imports neither torch nor textual, so ``--help`` stays instant.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
from dataclasses import dataclass, field

from namestudio.data.errors import NamestudioError

TABLE_TEMPERATURES = (0.5, 0.8, 1.0, 1.2)   # the temperature table's rows (sample --table, the Generate pane)
MAX_TEMPERATURE = 100.0   # far past uniform letters; above ~3.4e38 the logits' float32 division gave NaN

TASKS = ("classify", "generate")
MODELS = ("rnn", "lstm", "gru", "mylstm", "ngram", "hybrid")  # engine/models.py registers exactly these (a test checks)
DEVICES = ("auto", "cpu", "cuda", "mps")
SCHEDULES = ("none", "cosine", "step")
RECIPES = ("modern", "tutorial")
OPTIMIZERS = ("adamw", "sgd")


class ConfigError(NamestudioError, ValueError):
    """An option out of range or of the wrong kind; the message names the option."""


def default_threads() -> int:
    """Torch CPU threads when none are asked for. These models are small: a second thread gains little,
    and when another process busies a core, OpenMP threads wait on each other (measured 10-20x slower per
    step on 2 cores). So: 1 thread up to 2 cores, else all cores but one, at most 4."""
    cores = os.cpu_count() or 1
    return 1 if cores <= 2 else min(4, cores - 1)


def opt(default, help: str, *, flag: str | None = None, choices: tuple | None = None, lo=None, hi=None,
        lo_open: bool = False, hi_open: bool = False, cli: bool = True, metavar: str | None = None,
        only: str | None = None):
    """A config field with its one definition: help, flag, choices and bounds ([lo, hi]; open ends if asked);
    ``only``: the task it acts on (the other task ignores it, so a command line that sets it there is refused)."""
    return field(default=default, metadata={"help": help, "flag": flag, "choices": choices, "lo": lo, "hi": hi,
                                            "lo_open": lo_open, "hi_open": hi_open, "cli": cli,
                                            "metavar": metavar, "only": only})


# task-dependent defaults: None in the dataclass, resolved in __post_init__
TASK_DEFAULTS = {
    "hidden": {"classify": 128, "generate": 256},
    "epochs": {"classify": 14, "generate": 15},
    "dropout": {"classify": 0.1, "generate": 0.2},
    "bidirectional": {"classify": True, "generate": False},
    "lr": {"classify": 5e-3, "generate": 1e-2},  # quality: generators, val NLL 1.806 -> 1.796 (2 seeds)
    "lm_order": {"classify": 5, "generate": 6},  # issue 9: the n-gram blend's order, chosen on validation
}


@dataclass
class TrainConfig:
    task: str = opt("classify", "what to train: a language classifier or a name generator", choices=TASKS)
    model: str = opt("lstm", "the recurrent cell; or ngram (hashed n-gram bag) or hybrid (lstm + n-gram bag), "
                             "classifiers only", choices=MODELS)
    data: str | None = opt(None, "data source SRC (default: pytorch-names if on disk, else builtin)", metavar="SRC")
    ascii_fold: bool = opt(False, "fold names to ASCII letters", flag="--ascii")
    # model shape
    embed: int = opt(64, "character embedding size; 0 = one-hot letters", lo=0, hi=4096)
    hidden: int | None = opt(None, "hidden size", lo=1, hi=8192)
    layers: int = opt(1, "stacked RNN layers", lo=1, hi=16)
    bidirectional: bool | None = opt(None, "classifiers: read names both ways (generators are always one-way)",
                                       only="classify")
    dropout: float | None = opt(None, "dropout probability", lo=0, hi=1, hi_open=True)
    label_init: bool = opt(True, "generators: the language also sets the initial hidden state", only="generate")
    members: int = opt(1, "an ensemble: N networks of this shape trained side by side (each from its own "
                          "initialisation, on the same batches) and read as the mean of their probabilities; "
                          "N times the training time", lo=1, hi=16)
    # optimisation
    epochs: int | None = opt(None, "passes over the training names", lo=1, hi=100_000)
    batch_size: int = opt(128, "names per step", lo=1, hi=1_000_000)
    lr: float | None = opt(None, "AdamW learning rate", lo=0, hi=10, lo_open=True)
    weight_decay: float = opt(1e-2, "AdamW weight decay", lo=0, hi=10)
    clip: float = opt(5.0, "gradient-norm clipping; 0 = off", lo=0, hi=1e6)
    schedule: str = opt("cosine", "learning-rate schedule", choices=SCHEDULES)
    class_weighting: float = opt(0.25, "classifiers: loss weight per class = (1/frequency)^this; 0 = plain "
                                       "cross-entropy, 1 = fully balanced", lo=0, hi=2, only="classify")
    lm_order: int | None = opt(None, "after training, combine the network with a character n-gram language model "
                                     "per language of this order, weighted as the validation split says; "
                                     "0 = the network alone", lo=0, hi=8)
    eval_every: int = opt(0, "evaluate every N steps; 0 = once per epoch", lo=0, hi=10**9)
    patience: int = opt(3, "stop early after this many evaluations without improvement; 0 = never", lo=0, hi=10**6)
    # reproducibility and hardware
    seed: int = opt(0, "training seed", lo=0, hi=2**63 - 1)
    split_seed: int = opt(0, "data split seed", lo=0, hi=2**63 - 1)
    val_fraction: float = opt(0.1, "share of unique names held out for validation", lo=0, hi=0.5, lo_open=True)
    test_fraction: float = opt(0.1, "share of unique names held out for the test", lo=0, hi=0.5, lo_open=True)
    device: str = opt("auto", "where to train; a device asked for but absent is an error", choices=DEVICES)
    amp: bool = opt(True, "mixed precision (CUDA only)")
    threads: int = opt(0, "torch CPU threads; 0 = auto (1 on 2 cores or fewer, else cores-1 up to 4)", lo=0, hi=1024)
    log_every: int = opt(20, "steps between logged training losses", lo=1, hi=10**9)
    max_steps: int = opt(0, "stop after N steps; 0 = no limit", lo=0, hi=10**12)
    compile: bool = opt(False, "try torch.compile on the model (the first steps are slow while it compiles)")
    cuda_graphs: bool = opt(False, "CUDA only: replay the steps as CUDA graphs (torch.compile mode "
                                   "'reduce-overhead')")
    # recipes (issue 10): a recipe only fills in the options a command line leaves out (apply_recipe)
    recipe: str = opt("modern", "training recipe: modern (the defaults listed here) or tutorial (the PyTorch "
                                "tutorial's: one-hot letters, one name per step, plain SGD at 0.005, no schedule, "
                                "no clipping; generators: its i2h/i2o/o2o cell with dropout and the language one-hot "
                                "at every step); options given explicitly win", choices=RECIPES)
    optimizer: str = opt("adamw", "optimizer: adamw, or sgd (plain SGD: no momentum)", choices=OPTIMIZERS)

    def __post_init__(self):
        for name, by_task in TASK_DEFAULTS.items():
            if getattr(self, name) is None and self.task in by_task:
                setattr(self, name, by_task[self.task])
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
        if not isinstance(d, dict):
            raise ConfigError(f"a saved config must be a JSON object, not {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def validate(self) -> "TrainConfig":
        """Check every field against its definition; ConfigError names the option at fault."""
        for f in dataclasses.fields(self):
            check_value(f, getattr(self, f.name))
        if self.task == "generate" and self.model in ("ngram", "hybrid"):  # classifier-only models
            raise ConfigError(f"--model {self.model} is a classifier only; generators use rnn, lstm, gru or mylstm")
        if self.val_fraction + self.test_fraction >= 1:   # each may be 0.5, not both: no name would be left to train
            raise ConfigError(f"--val-fraction + --test-fraction must be below 1 (got {self.val_fraction:g} + "
                              f"{self.test_fraction:g}): no names would be left to train on")
        check_recipe(self)
        return self


# ---- recipes (issue 10) ------------------------------------------------------------------------------------------
# What a recipe sets, per task, for the options a command line (or a caller) leaves out. "modern" is the
# dataclass defaults. "tutorial" is the PyTorch char-RNN tutorials' setup: one-hot letters, one name per step,
# plain SGD at 0.005, no schedule, no clipping, no class weights. Its generator is the tutorial's own
# i2h/i2o/o2o cell (engine/models.py TutorialGenerator, built for model "rnn") with dropout 0.1 and the language
# one-hot at every step. (The tutorial's generator steps SGD at 0.0005 on the loss summed over a name's letters;
# here the loss is the mean over letters, so 0.005 is about the same step for names of 7-10 letters.)
RECIPE_DEFAULTS: dict[str, dict[str, dict]] = {
    "modern": {"classify": {}, "generate": {}},
    "tutorial": {
        "classify": dict(embed=0, hidden=128, layers=1, bidirectional=False, dropout=0.0, batch_size=1,
                         optimizer="sgd", lr=0.005, weight_decay=0.0, clip=0.0, schedule="none",
                         class_weighting=0.0, lm_order=0, amp=False),
        "generate": dict(model="rnn", embed=0, hidden=128, layers=1, dropout=0.1, label_init=False, batch_size=1,
                         optimizer="sgd", lr=0.005, weight_decay=0.0, clip=0.0, schedule="none", lm_order=0, amp=False),
    },
}


def apply_recipe(options: dict) -> dict:
    """``options`` (field -> value, as given) with the recipe's choices filled in where they are left out."""
    recipe, task = options.get("recipe") or "modern", options.get("task") or "classify"
    return {**RECIPE_DEFAULTS.get(recipe, {}).get(task, {}), **options}


def check_recipe(cfg: "TrainConfig") -> None:
    if cfg.recipe == "tutorial" and cfg.task == "generate" and cfg.model != "rnn":
        raise ConfigError(f"--recipe tutorial: generators use the tutorial's own i2h/i2o/o2o cell; use --model rnn "
                          f"(not {cfg.model})")


# ---- the one definition, read ------------------------------------------------------------------------------------
def fields() -> list[dataclasses.Field]:
    return list(dataclasses.fields(TrainConfig))


def _field(name: str) -> dataclasses.Field:
    for f in dataclasses.fields(TrainConfig):
        if f.name == name:
            return f
    raise KeyError(name)


def flag_of(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _kind(f: dataclasses.Field) -> type:
    t = str(f.type)
    return bool if "bool" in t else int if "int" in t else float if "float" in t else str


def model_label(model: str | None, members: int | None = 1) -> str:
    """A run's model as shown to people: the cell, and "×N" for an ensemble of N networks (``--members``)."""
    return f"{model or ''} ×{members}" if isinstance(members, int) and members > 1 else (model or "")


def option(name: str, task: str | None = None) -> dict:
    """One option as the TUI form needs it: flag, help, default (for a task), choices, bounds and kind."""
    f = _field(name)
    m = f.metadata
    default = f.default
    if default is None and name in TASK_DEFAULTS:
        default = TASK_DEFAULTS[name].get(task or "classify")
    return {"name": name, "flag": flag_of(f), "help": m["help"], "default": default, "choices": m["choices"],
            "lo": m["lo"], "hi": m["hi"], "kind": _kind(f).__name__}


def _describe_range(m: dict) -> str:
    lo, hi = m["lo"], m["hi"]
    left = "(" if m["lo_open"] else "["
    right = ")" if m["hi_open"] else "]"
    if lo is not None and hi is not None and hi < 10**5:
        return f"in {left}{lo}, {hi}{right}"
    if lo is not None:
        return f"{'>' if m['lo_open'] else '≥'} {lo}"
    return f"{'<' if m['hi_open'] else '≤'} {hi}"


def check_value(f: dataclasses.Field, value) -> None:
    m, flag, kind = f.metadata, flag_of(f), _kind(f)
    if value is None:
        if f.default is None:
            return
        raise ConfigError(f"{flag} needs a value")
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{flag} must be true or false, not {value!r}")
        return
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{flag} must be text, not {value!r}")
        if m["choices"] and value not in m["choices"]:
            raise ConfigError(f"{flag}: unknown {f.name} {value!r}; choose one of {', '.join(m['choices'])}")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{flag} must be a number, not {value!r}")
    if kind is int and not float(value).is_integer():
        raise ConfigError(f"{flag} must be a whole number, not {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{flag} must be a finite number, not {value}")
    lo, hi = m["lo"], m["hi"]
    if lo is not None and (value < lo or (m["lo_open"] and value == lo)):
        raise ConfigError(f"{flag} must be {_describe_range(m)} (got {value})")
    if hi is not None and (value > hi or (m["hi_open"] and value == hi)):
        top = _describe_range(m) if hi < 10**5 else f"{'<' if m['hi_open'] else '≤'} {hi:,}"   # a wide range's top
        raise ConfigError(f"{flag} must be {top} (got {value})")


# ---- the one definition, as command-line options -----------------------------------------------------------------
def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Every config field as a `namestudio train` option. Defaults stay None, so a command line says only what
    it sets (``--resume`` keeps the saved config and takes only a few overrides)."""
    for f in dataclasses.fields(TrainConfig):
        m = f.metadata
        if not m["cli"]:
            continue
        kind, flag = _kind(f), flag_of(f)
        default = f.default if f.default is not None else None
        if f.name in TASK_DEFAULTS:
            shown = ", ".join(f"{v} {t}" for t, v in TASK_DEFAULTS[f.name].items())
        else:
            shown = "" if default is None else str(default)
        help_text = m["help"] + (f" (default: {shown})" if shown else "")
        if kind is bool:
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            parser.add_argument(flag, dest=f.name, type=kind, choices=m["choices"], default=None,
                                metavar=m["metavar"] or (None if m["choices"] else f.name.upper()), help=help_text)
    parser.add_argument("--unidirectional", dest="bidirectional", action="store_false", default=None,
                        help="the same as --no-bidirectional")


def given_options(args: argparse.Namespace) -> dict:
    """The config fields a command line set (everything it left out stays at the config's default). ConfigError
    for an option of one task set to what the other task cannot do (`--task generate --class-weighting 2` was
    ignored without a word; `--no-bidirectional` on a generator is what it does, and passes)."""
    names = {f.name for f in dataclasses.fields(TrainConfig) if f.metadata["cli"]}
    given = {k: v for k, v in vars(args).items() if k in names and v is not None}
    task = given.get("task") or TrainConfig.task
    hit = other_task_option(given, task)
    if hit is not None:
        f, value = hit
        flag = flag_of(f) if value is not False else "--no-" + flag_of(f)[2:]
        raise ConfigError(f"{flag} is for {TASK_WORDS[f.metadata['only']][0]} only; this run is "
                          f"{TASK_WORDS[task][1]} (--task {task})")
    return apply_recipe(given)


TASK_WORDS = {"classify": ("classifiers", "a classifier"), "generate": ("generators", "a generator")}


def other_task_option(options: dict, task: str) -> tuple[dataclasses.Field, object] | None:
    """The first of ``options`` (field -> value) that only the other task acts on, set to something ``task`` does
    not do anyway (`--no-bidirectional` on a generator is what it does), with its value; None when there is none."""
    for f in dataclasses.fields(TrainConfig):
        only = f.metadata["only"]
        if only and only != task and f.name in options:
            default = TASK_DEFAULTS[f.name][task] if f.name in TASK_DEFAULTS else f.default
            if options[f.name] != default:
                return f, options[f.name]
    return None


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(**given_options(args)).validate()


def cfg_to_argv(cfg: TrainConfig) -> list[str]:
    """The `namestudio train` options that rebuild exactly this config (config_from_args(parse(argv)) == cfg), but
    for the options of the other task, which this one ignores (left out: `train` refuses them)."""
    argv: list[str] = []
    for f in dataclasses.fields(TrainConfig):
        if not f.metadata["cli"] or f.metadata["only"] not in (None, cfg.task):
            continue
        value, flag = getattr(cfg, f.name), flag_of(f)
        if value is None:
            continue
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + flag[2:])
        else:
            argv += [flag, repr(value) if isinstance(value, float) else str(value)]
    return argv
