"""Experiments: a set of runs trained on one data source, one split and one seed, grouped in one folder.

  checkpoints/exp-<YYYYmmdd-HHMMSS>-<task>/
      experiment.json      what the experiment is (settings, grid, runs) and where it stands (state, pid)
      experiment.lock      flock'ed by the `namestudio compare` process that runs it
      <label>/             one ordinary run folder per run (engine/runfolder.py), e.g. lstm/ or lstm-hidden=64/

Each run is an ordinary `namestudio train` child process (engine/process.py), N at a time. The run folders
are the source of truth for each run's progress; experiment.json only says which runs belong, with which
config, and what the controller last saw. ``compare --resume EXP`` keeps the runs that are done, resumes
those with a resume point and restarts the rest.

The second half of this module is the data the comparison views and the report need (results rows, curves,
confusion matrices, top-k and samples tables): plain lists and dicts, so a face only renders them.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from namestudio.data.errors import NamestudioError

from . import runfolder as rf
from .config import (MODELS, TASK_WORDS, TrainConfig, _field, _kind, apply_recipe, check_value, default_threads,
                     flag_of, other_task_option)
from .process import CLI_MODULE, launch_resume, launch_train, spawn

EXPERIMENT = "experiment.json"
EXP_LOCK = "experiment.lock"
FORMAT = 1
DEFAULT_MODELS = ("rnn", "lstm", "mylstm", "gru")
# every run of an experiment shares these: one task, one data source, one split (--set may not vary them)
SHARED_FIELDS = ("task", "model", "data", "ascii_fold", "split_seed", "val_fraction", "test_fraction")
RUN_STATES = ("pending", "running", "done", "failed", rf.STOPPED)   # an earlier version's "cancelled" reads as stopped
DEFAULT_NAMES = ("Dovesky", "Jackson", "Hou")


_A_KIND = {"int": "a whole number", "float": "a number", "str": "a text", "bool": "true or false"}


class ExperimentError(NamestudioError):
    """An experiment that cannot be made, found or continued; one line."""


class AmbiguousExperiment(ExperimentError):
    """A piece of an id that several experiments' ids hold."""


# ---- planning -----------------------------------------------------------------------------------
def parse_models(text: str | None) -> list[str]:
    models = [m.strip() for m in (",".join(DEFAULT_MODELS) if text is None else text).split(",") if m.strip()]
    if not models:
        raise ExperimentError("--models: give at least one model, e.g. rnn,lstm")
    for m in models:
        if m not in MODELS:
            raise ExperimentError(f"--models: unknown model {m!r}; choose from {', '.join(MODELS)}")
    if len(set(models)) != len(models):
        raise ExperimentError(f"--models: {','.join(models)} names a model twice")
    return models


def _parse_value(f: dataclasses.Field, text: str):
    kind, flag = _kind(f), flag_of(f)
    text = text.strip()
    try:
        if kind is bool:
            low = text.lower()
            if low not in ("true", "false", "yes", "no", "1", "0", "on", "off"):
                raise ValueError
            value = low in ("true", "yes", "1", "on")
        elif kind is int:
            value = int(text)
        elif kind is float:
            value = float(text)
        else:
            value = text
    except ValueError:
        raise ExperimentError(f"--set {f.name}: {text!r} is not {_A_KIND.get(kind.__name__, 'a ' + kind.__name__)} "
                              f"(as {flag} takes)") from None
    try:
        check_value(f, value)
    except NamestudioError as e:
        raise ExperimentError(f"--set {f.name}: {e}") from None
    return value


def parse_grid(items: list[str] | None) -> dict[str, list]:
    """``["hidden=64,128", "lr=0.002,0.005"]`` -> {"hidden": [64, 128], "lr": [0.002, 0.005]}, each value checked
    against the config field's one definition (engine/config.py)."""
    grid: dict[str, list] = {}
    for item in items or []:
        key, eq, values = item.partition("=")
        key = key.strip().replace("-", "_").lstrip("_")
        if not eq or not key or not values.strip():
            raise ExperimentError(f"--set {item!r}: write KEY=V1,V2 (e.g. --set hidden=64,128)")
        try:
            f = _field(key)
        except KeyError:
            raise ExperimentError(f"--set {key}: no such setting; see `namestudio train --help`") from None
        if key == "model":
            raise ExperimentError("--set model: the models to compare are listed with --models (e.g. --models rnn,gru)")
        if key in SHARED_FIELDS:
            raise ExperimentError(f"--set {key}: every run of an experiment shares one task, data source and "
                                  f"split; use its own option, once")
        if key in grid:
            raise ExperimentError(f"--set {key} is given twice; list every value once: --set {key}=V1,V2")
        parsed = [_parse_value(f, v) for v in values.split(",") if v.strip()]
        if len(set(map(repr, parsed))) != len(parsed):
            raise ExperimentError(f"--set {key}: a value is listed twice")
        grid[key] = parsed
    return grid


def _fmt(v) -> str:
    """A grid value in a run's label: short (1e-05, 0.5), but never so short that two values read alike
    (0.005 and 0.005000001 made one label, so two runs shared one folder)."""
    if isinstance(v, float):
        short = f"{v:g}"
        return short if float(short) == v else repr(v)
    return str(v).lower() if isinstance(v, bool) else str(v)


def plan_runs(base: dict, models: list[str], grid: dict[str, list]) -> list[dict]:
    """One entry per (model, grid point): {"label", "model", "overrides", "config"} with a validated config."""
    task = base.get("task") or TrainConfig.task
    for key, values in grid.items():    # what `train` refuses, --set refuses (it trained them all alike, labelled apart)
        hit = next((h for h in (other_task_option({key: v}, task) for v in values) if h is not None), None)
        if hit is not None:
            f, value = hit
            raise ExperimentError(f"--set {key}={_fmt(value)}: {key} is for {TASK_WORDS[f.metadata['only']][0]} only; "
                                  f"this experiment trains {TASK_WORDS[task][0]} (--task {task})")
    points: list[dict] = [{}]
    for key, values in grid.items():
        points = [{**p, key: v} for p in points for v in values]
    runs = []
    for m in models:
        for p in points:
            label = m + "".join(f"-{k}={_fmt(v)}" for k, v in p.items())
            cfg = TrainConfig(**apply_recipe({**base, **p, "model": m}))
            try:
                cfg.validate()
            except NamestudioError as e:
                raise ExperimentError(f"run {label}: {e}") from None
            runs.append({"label": label.replace("/", "_"), "model": m, "overrides": p, "config": cfg.to_dict()})
    if len(runs) > 256:
        raise ExperimentError(f"{len(runs)} runs: an experiment holds at most 256; trim --models or --set")
    seen: dict[str, dict] = {}
    for r in runs:             # each run is its own folder: one label twice would be two trainers in one folder
        key = r["label"].lower()                 # (a case-blind file system takes A and a for one name)
        if key in seen:
            raise ExperimentError(f"two runs would both be named {r['label']} ({_point(seen[key])} and "
                                  f"{_point(r)}); give each --model and --set value once")
        seen[key] = r
    return runs


def check_data(runs: list[dict]) -> str:
    """Read the runs' data now, as their trainers will (cached for them), and check it as `train` does before it
    builds anything (engine/train.py: split_to_train): a bad source, a classifier of one language, too few names
    to split are one line, not an experiment folder of failed runs. Returns the source as resolved (Dataset.source,
    what a run's config.json records as data_source): an absolute path, or the named source the default stands
    for ("builtin", "pytorch-names")."""
    from namestudio.data import load_dataset

    from .train import split_to_train
    checked: dict[tuple, str] = {}
    for r in runs:           # every run shares the data and split (SHARED_FIELDS): read once in practice
        cfg = TrainConfig.from_dict(r["config"])
        key = (cfg.data, cfg.ascii_fold, cfg.task, cfg.split_seed, cfg.val_fraction, cfg.test_fraction)
        if key not in checked:
            ds = load_dataset(cfg.data, ascii_fold=cfg.ascii_fold)
            split_to_train(ds, cfg)
            checked[key] = ds.source
    return next(iter(checked.values()))


def data_digest(config: dict) -> str:
    """sha256 of the (name, label) pairs a run's data reads as now (cleaned, sorted): what the runs of an
    experiment split alike. A run keeps its split in split.json; a run not begun yet reads the data anew."""
    import hashlib

    from namestudio.data import load_dataset
    cfg = TrainConfig.from_dict(config)
    digest = hashlib.sha256()
    for name, label in load_dataset(cfg.data, ascii_fold=cfg.ascii_fold).pairs:
        digest.update(f"{name}\t{label}\n".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def _as_typed(data) -> bool:
    """Data as an experiment made before runs recorded it resolved kept it: --data as typed, a relative path (or
    ``~/…``), or None for the default source. Named sources and absolute paths read the same from anywhere."""
    if data is None:
        return True
    from namestudio.data.sources import NAMED_SOURCES
    return str(data).partition("?")[0] not in NAMED_SOURCES and not Path(str(data)).is_absolute()


def _point(run: dict) -> str:
    return " ".join([f"model={run['model']}", *(f"{k}={v!r}" for k, v in run["overrides"].items())])


def default_parallel(cfg: TrainConfig, n_runs: int) -> int:
    """Runs at once: on CPU, the cores divided by each run's torch threads; on GPUs, one per device."""
    n = 0
    if cfg.device in ("auto", "cuda"):
        try:
            import torch
            n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        except Exception:
            n = 0
    if not n:
        n = (os.cpu_count() or 1) // max(1, cfg.threads or default_threads())
    return max(1, min(n, n_runs))


# ---- the folder ---------------------------------------------------------------------------------
def is_experiment(path: str | Path) -> bool:
    try:
        return (Path(path) / EXPERIMENT).is_file()
    except OSError:          # a name the system cannot look up (too long): no experiment there
        return False


def run_name(run_dir: str | Path) -> str:
    """A run's name as every command takes it: its folder's name, or ``EXP/RUN`` for an experiment's run (two
    experiments' ``rnn`` stay apart)."""
    run_dir = Path(run_dir)
    return f"{run_dir.parent.name}/{run_dir.name}" if is_experiment(run_dir.parent) else run_dir.name


def new_experiment(checkpoints: str | Path, base: dict, models: list[str], grid: dict[str, list],
                   parallel: int, source: str | None = None) -> Path:
    """Plan the runs, create ``exp-<time>-<task>/`` with experiment.json (every run pending); return the folder.
    Each run's config records the data as resolved now (``source``, what check_data returned; checked here when
    not given): an absolute path, or the named source the default stands for, never --data as typed (a relative
    path, or null), which a resume from another folder, or after `data download`, read as other data."""
    runs = plan_runs(base, models, grid)
    source = check_data(runs) if source is None else source
    for r in runs:
        r["config"]["data"] = source
    root = Path(checkpoints)
    task = runs[0]["config"]["task"]
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExperimentError(f"could not create {root}: {e.strerror or e}") from None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        exp = root / (f"exp-{stamp}-{task}" + (f"-{i + 1}" if i else ""))
        try:
            exp.mkdir()
            break
        except FileExistsError:
            continue
    else:
        raise ExperimentError(f"{root}: could not create a new experiment folder")
    # the fields every run's config holds alike (a grid point can change others than its own keys: a recipe sets
    # embed, optimizer, batch size ...), the grid's keys and the model left out
    settings = {k: v for k, v in runs[0]["config"].items()
                if k != "model" and k not in grid and all(k in r["config"] and r["config"][k] == v for r in runs)}
    doc = {"format": FORMAT, "kind": "experiment", "id": exp.name, "created": time.time(), "task": task,
           "models": models, "grid": grid, "settings": settings, "parallel": parallel, "state": "pending",
           "pid": None, "host": None, "heartbeat": None, "ended": None, "data_digest": data_digest(runs[0]["config"]),
           "runs": [{**r, "dir": r["label"], "state": "pending", "error": None, "attempts": 0} for r in runs]}
    rf.atomic_write_json(exp / EXPERIMENT, doc)
    return exp


def resolve_experiment(exp: str | Path, checkpoints: str | Path = "checkpoints") -> Path:
    """An experiment folder path, an id under the checkpoints folder, or a unique part of an id."""
    p = Path(exp)
    if is_experiment(p):
        return p
    root, text = Path(checkpoints), str(exp)
    if text and is_experiment(root / text):
        return root / text
    if root.is_dir() and text and "/" not in text:
        matches = sorted(d for d in root.iterdir() if text in d.name and is_experiment(d))
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise AmbiguousExperiment(f"experiment {text!r} is ambiguous: {', '.join(m.name for m in matches[:5])}")
    raise ExperimentError(f"no experiment {rf._shown(text)!r} (no {EXPERIMENT} there, nor an experiment id under {root})")


def _read_doc(exp: Path) -> dict:
    doc = rf.read_json(Path(exp) / EXPERIMENT, dict)
    if not isinstance(doc.get("runs"), list) or any(not isinstance(r, dict) or not isinstance(r.get("dir"), str)
                                                     for r in doc["runs"]):
        raise ExperimentError(f"{Path(exp) / EXPERIMENT}: damaged (no list of runs)")
    for r in doc["runs"]:
        if "/" in r["dir"] or r["dir"] in ("", ".", ".."):
            raise ExperimentError(f"{Path(exp) / EXPERIMENT}: damaged (run folder {r['dir']!r} is not inside it)")
        if "state" in r:
            r["state"] = rf.stopped_word(r["state"])
    if "state" in doc:
        doc["state"] = rf.stopped_word(doc["state"])
    return doc


def read_experiment(exp: str | Path) -> dict:
    """experiment.json with, per run, its ``path`` and its live status read from the run folder (``status``:
    a RunStatus; ``state`` refreshed from it), and the experiment's ``state`` made "stale" when the controller
    that was running it is gone. For the TUI: call it every second or so; it reads small files only."""
    exp = Path(exp)
    doc = _read_doc(exp)
    live = False
    for r in doc["runs"]:
        path = exp / r["dir"]
        r["path"] = str(path)
        try:
            st = rf.read_status(path) if path.is_dir() else None
        except rf.RunFolderError as e:
            st, r["error"] = None, str(e)
        r["status"] = st
        if st is not None:
            if st.live:
                r["state"], live = "running", True
            elif st.state == "done":
                r["state"] = "done"
            elif st.state in ("failed", rf.STOPPED):
                r["state"] = st.state
                r["error"] = st.error or r.get("error")
            elif st.stale:
                r["state"] = rf.STOPPED if r.get("state") != "failed" else "failed"
    if doc.get("state") == "running" and doc.get("host") == rf.HOST and not rf.pid_alive(doc.get("pid")):
        doc["state"] = "stale"
    doc["live"] = doc.get("state") == "running" or live
    doc["path"] = str(exp)
    return doc


def list_experiments(checkpoints: str | Path = "checkpoints") -> list[dict]:
    """One row per experiment folder under ``checkpoints``, newest first: id, path, task, state, runs, done."""
    root = Path(checkpoints)
    rows = []
    dirs = sorted((d for d in root.iterdir() if is_experiment(d)), reverse=True) if root.is_dir() else []
    for d in dirs:
        try:
            doc = read_experiment(d)
            rows.append({"id": d.name, "path": str(d), "task": doc.get("task"), "state": doc.get("state"),
                         "runs": len(doc["runs"]), "done": sum(r["state"] == "done" for r in doc["runs"])})
        except NamestudioError as e:
            rows.append({"id": d.name, "path": str(d), "state": "damaged", "error": str(e)})
    return rows


def list_all_runs(checkpoints: str | Path = "checkpoints") -> list[dict]:
    """Every run under ``checkpoints``: its own run folders (``runfolder.list_runs``, newest first), then each
    experiment's runs, named ``EXP/RUN`` as every command takes them (with ``experiment``: the EXP)."""
    root = Path(checkpoints)
    rows = rf.list_runs(root)
    try:
        experiments = list_experiments(root)
    except OSError:                  # the folder went away or cannot be read: its own runs still list
        return rows
    for exp in experiments:
        for row in rf.list_runs(exp["path"]):
            rows.append({**row, "run": f"{exp['id']}/{row['run']}", "experiment": exp["id"]})
    return rows


def run_dirs(exp: str | Path) -> list[tuple[str, Path]]:
    """(label, run folder) of every run of an experiment that has a run folder."""
    exp = Path(exp)
    return [(r["dir"], exp / r["dir"]) for r in _read_doc(exp)["runs"] if (exp / r["dir"]).is_dir()]


# ---- running it ---------------------------------------------------------------------------------
@dataclass
class RunView:
    """What the progress display shows for one run."""
    label: str
    state: str = "pending"
    step: int = 0
    total_steps: int = 0
    epoch: float = 0.0
    metric: float | None = None     # the last validation accuracy (classifiers) or NLL (generators)
    error: str | None = None


def _action(run_dir: Path) -> str:
    """What a (re)started experiment does with one run: keep, resume, restart or new."""
    if not run_dir.is_dir() or not any(run_dir.iterdir()):
        return "new"
    st = rf.read_status(run_dir)
    if st.live:
        if st.host != rf.HOST:
            raise ExperimentError(f"run {run_dir.name} is being trained on {st.host} by pid {st.pid}; stop it "
                                  f"first (namestudio stop {run_dir})")
        return "follow"    # left training by a controller that died (kill -9), or a `train --resume` of it
    if st.state == "done" and (run_dir / rf.TEST).is_file():
        return "keep"
    try:
        if rf.resume_dir(run_dir) is not None and (run_dir / rf.CONFIG).is_file():
            return "resume"
    except rf.RunFolderError:
        pass
    return "restart"


class _Followed:
    """A run already being trained by a process this controller did not start (on this host): polled through its
    run folder, as a child is through its Popen. ``signal`` asks that trainer (its session, when it leads one,
    as children started by a controller do)."""

    def __init__(self, run_dir: Path, pid: int):
        self.run_dir, self.pid = run_dir, pid

    def poll(self) -> int | None:
        try:
            st = rf.read_status(self.run_dir)
        except rf.RunFolderError:
            return None if rf.pid_alive(self.pid) else 1
        return None if st.live else 0

    def signal(self, sig: int) -> None:
        """Only while the run is live with this pid (a dead trainer's pid may be another process's now); its whole
        session when it leads one (a controller's or the TUI's child: its ranks too), else that process alone (a
        trainer started by hand in a shell, whose pipeline, `| tee` say, must not get the signal)."""
        try:
            st = rf.read_status(self.run_dir)
            if not st.live or st.pid != self.pid:
                return
            if os.getsid(self.pid) == self.pid:
                os.killpg(self.pid, sig)
            else:
                os.kill(self.pid, sig)
        except (ProcessLookupError, PermissionError, rf.RunFolderError):
            pass


def _signal(p, sig: int) -> None:
    """A child of this controller (the leader of its own session: every rank and helper gets it), or a followed run."""
    if isinstance(p, _Followed):
        p.signal(sig)
        return
    try:
        os.killpg(p.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _some(labels: list[str]) -> str:
    """A few runs by name, more by count ("rnn, gru"; "5 runs")."""
    return ", ".join(labels) if len(labels) <= 3 else f"{len(labels)} runs"


class Controller:
    """Runs an experiment's runs as child processes, ``parallel`` at a time, and keeps experiment.json up to
    date. ``run()`` blocks until every run has ended or ``stop()`` was called (from a signal handler, say)."""

    def __init__(self, exp: str | Path, parallel: int | None = None, nice: int = 10,
                 on_update: Callable[[list[RunView]], None] | None = None, poll_s: float = 0.25):
        self.exp = Path(exp)
        self.doc = _read_doc(self.exp)
        self.parallel = max(1, int(parallel or self.doc.get("parallel") or 1))
        self.nice = nice
        self.on_update = on_update
        self.poll_s = poll_s
        self.active: dict[str, subprocess.Popen | _Followed] = {}
        self.views = {r["dir"]: RunView(label=r["dir"], state=r.get("state", "pending")) for r in self.doc["runs"]}
        self.tails = {r["dir"]: rf.Tail(self.exp / r["dir"] / rf.METRICS) for r in self.doc["runs"]}
        self.stopping = False
        self.stops = 0            # stop() calls: 1 stop cleanly, 2 stop at once (untested), 3 kill
        self.killing = False
        self.lock: rf.RunLock | None = None
        self.started = time.time()
        self.launched: dict[str, float] = {}     # when each child of this controller was started (time.time())

    # from any thread or a signal handler
    def stop(self) -> None:
        """First call: ask every running child to stop cleanly (SIGTERM: the best weights are kept and tested);
        pending runs are not started. A second call asks again, as a second Ctrl-C does a `train`: each stops at
        once and records itself "stopped, untested" (it was killed, and then read as stale, before). A third call
        kills them (a child that does not answer)."""
        self.stops += 1
        self.killing = self.stops >= 3
        self.stopping = True
        for p in list(self.active.values()):
            _signal(p, self._stop_signal())

    def stop_keeps(self) -> str:
        """What a stop (``stop()``) keeps at this moment, for the line a face shows as it asks: each run in
        training, as ``runfolder.stop_keeps`` says it for a `train` (its best checkpoint, its current weights,
        or nothing, when it has not trained a step yet); the runs done, kept as they are; the runs not begun,
        not started. Then what asking again does, when a run trains."""
        parts = []
        trained = False
        for label in self.active:
            step = self.views[label].step
            try:
                step = max(step, rf.read_status(self.exp / label).step)   # the view may be a poll behind
            except (rf.RunFolderError, OSError):
                pass
            trained = trained or step > 0
            parts.append(f"{label}: {rf.stop_keeps(self.exp / label, step, reported=True)}")
        states = {r["dir"]: r.get("state") for r in self.doc["runs"] if r["dir"] not in self.active}
        done = [label for label, s in states.items() if s == "done"]
        pending = [label for label, s in states.items() if s in ("pending", None)]
        if done:
            parts.append(f"{_some(done)}: done, kept as {'it is' if len(done) == 1 else 'they are'}")
        if pending:
            parts.append(f"{_some(pending)}: not begun, and not started now")
        line = " · ".join(parts) or "no run is training"
        if self.active:
            one = len(self.active) == 1
            line += (f" (asked again: {'it stops' if one else 'they stop'} at once{', untested' if trained else ''}; "
                     f"a third time: {'it is' if one else 'they are'} killed)")
        return line

    def _stop_signal(self) -> int:
        return signal.SIGKILL if self.killing else signal.SIGTERM

    def _save(self, **changes) -> None:
        self.doc.update(changes, heartbeat=time.time())
        rf.atomic_write_json(self.exp / EXPERIMENT, self.doc)

    def _entry(self, label: str) -> dict:
        return next(r for r in self.doc["runs"] if r["dir"] == label)

    def _start(self, r: dict, action: str) -> None:
        run_dir = self.exp / r["dir"]
        self.launched[r["dir"]] = time.time()
        r["attempts"] = r.get("attempts", 0) + 1
        r["error"] = None
        if action == "resume":
            popen = launch_resume(run_dir, nice=self.nice, check=False).popen   # _action chose it: no second look
        else:
            if not isinstance(r.get("config"), dict):
                raise ExperimentError(f"{self.exp / EXPERIMENT}: damaged (run {r['dir']} has no settings to start "
                                      "it with)")
            cfg = TrainConfig.from_dict(r["config"])
            if action == "restart":
                shutil.rmtree(run_dir, ignore_errors=True)
            popen = launch_train(cfg, self.exp, nice=self.nice, run_dir=run_dir).popen
        self.tails[r["dir"]] = rf.Tail(run_dir / rf.METRICS)
        self.active[r["dir"]] = popen
        if self.stopping:         # a Ctrl-C between the launch and the line above: stop() did not see this child
            for _ in range(self.stops):   # as many asks as it missed: one stops it cleanly, two at once
                _signal(popen, self._stop_signal())
        r["state"] = "running"
        self.views[r["dir"]].state = "running"
        self._save()

    def _ended(self, label: str, code: int) -> None:
        r = self._entry(label)
        run_dir = self.exp / label
        try:
            st = rf.read_status(run_dir)
        except rf.RunFolderError as e:
            st = None
            r["error"] = str(e)
        launched = self.launched.get(label)
        if st is not None and launched is not None and (st.started or 0) < launched - 1:
            st = None     # the status of an earlier end: this child died before its trainer wrote one (a resume
            #               that failed at once read as that end's "stopped", and said to resume again)
        if st is not None and st.state == "done":
            r["state"] = "done"
            self._show_kept(label)
        elif st is not None and st.state == rf.STOPPED:
            r["state"] = rf.STOPPED
            self._show_kept(label)
        elif self.stopping and code is not None and code < 0:   # stopped as it started, before its handlers
            r["state"], r["error"] = rf.STOPPED, None
            if st is not None and st.state == "starting" and not (run_dir / rf.CONFIG).is_file():
                try:     # its launcher's "starting", and nothing of its own: stopped, as a run stopped before it
                    rf.write_status(run_dir, dataclasses.replace(        # had its settings says (it read stale)
                        st, state=rf.STOPPED, reason=rf.STOPPED, heartbeat=time.time()))
                except rf.RunFolderError:
                    pass
        else:
            r["state"] = "failed"
            lines = [line for line in rf.last_log_lines(run_dir, 5) if not line.startswith("$ ")]  # not its command
            how = f"killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
            gone = None
            if st is not None and st.stale:   # its trainer vanished mid-run (kill -9, out of memory): no error of its own
                point = rf.resume_progress(run_dir, st)   # its last heartbeat's step may be before or past it
                gone = (f"its trainer (pid {st.pid}) is gone (killed?)"
                        + (f"; `namestudio compare --resume {rf.as_arg(self.exp)}` resumes it from step {point[0]:,}"
                           if point is not None else f" at step {st.step:,}; `namestudio compare --resume "
                           f"{rf.as_arg(self.exp)}` resumes it from its last resume point"))
            r["error"] = (st.error if st is not None and st.error else None) or gone or r.get("error") or \
                (lines[-1] if lines else f"the trainer {how} before it wrote a word")
        self.views[label].state = r["state"]
        self.views[label].error = r["error"]
        self._save()

    def _refresh(self, labels=None) -> None:
        monitor = "accuracy" if self.doc.get("task") == "classify" else "nll"
        for label in labels if labels is not None else list(self.active):
            v = self.views[label]
            try:
                st = rf.read_status(self.exp / label)
                v.step, v.total_steps, v.epoch = st.step, st.total_steps, st.epoch
                if label in self.active and st.state in ("running", "paused", "stopping"):
                    v.state = st.state          # a run paused from elsewhere (`namestudio pause EXP/RUN`) shows so
            except rf.RunFolderError:
                pass
            for rec in self.tails[label].read_new():
                val = rec.get("val") or {}
                if isinstance(val.get(monitor), (int, float)):
                    v.metric = float(val[monitor])

    def run(self) -> dict:
        try:
            lock = rf.RunLock(self.exp)
            lock.path = self.exp / EXP_LOCK
            self.lock = lock.acquire()
        except rf.RunFolderError:
            raise ExperimentError(f"experiment {self.exp.name} is already being run (another `namestudio compare` "
                                  f"holds it)") from None
        try:
            self._pin_data()
            self._check_data_unchanged()
            return self._run()
        finally:
            for p in self.active.values():      # only on an unexpected error: never leave children behind
                if not isinstance(p, _Followed):
                    _signal(p, signal.SIGTERM)
            self.lock.release()

    def _run(self) -> dict:
        queue = []
        for r in self.doc["runs"]:
            action = _action(self.exp / r["dir"])
            if action == "keep":
                r["state"] = "done"
                self.views[r["dir"]].state = "done"
                self._fill_done_view(r["dir"])
            elif action == "follow":   # it trains already: wait for it (it takes one of the parallel places)
                self.active[r["dir"]] = _Followed(self.exp / r["dir"], rf.read_status(self.exp / r["dir"]).pid)
                r["state"] = self.views[r["dir"]].state = "running"
            else:
                r["state"] = "pending"
                queue.append((r, action))
        self._save(state="running", pid=os.getpid(), host=rf.HOST, parallel=self.parallel, ended=None)
        last_beat = time.time()
        while queue or self.active:
            while queue and not self.stopping and len(self.active) < self.parallel:
                r, action = queue.pop(0)
                try:
                    self._start(r, action)
                except (NamestudioError, OSError) as e:
                    r["state"], r["error"] = "failed", rf._first_line(e)
                    self.views[r["dir"]].state, self.views[r["dir"]].error = "failed", str(e)
                    self._save()
            for label, p in list(self.active.items()):
                code = p.poll()
                if code is not None:
                    del self.active[label]
                    self._refresh_one_last(label)
                    self._ended(label, code)
            if self.stopping and not self.active:
                break
            self._refresh()
            if self.on_update:
                self.on_update(list(self.views.values()))
            if time.time() - last_beat > 2.0:
                self._save()
                last_beat = time.time()
            time.sleep(self.poll_s)
        states = [r["state"] for r in self.doc["runs"]]
        state = rf.STOPPED if self.stopping and any(s != "done" for s in states) else \
            "failed" if "failed" in states else "done" if all(s == "done" for s in states) else rf.STOPPED
        self._save(state=state, ended=time.time())
        if self.on_update:
            self.on_update(list(self.views.values()))
        return self.doc

    def _check_data_unchanged(self) -> None:
        """Refused in one line, the experiment as it was, when a run not begun would read other names than the
        runs that trained: its data changed since the experiment began (`compare --resume` trained the runs left
        on the folder as it was then, and the table set them beside the others with no word)."""
        recorded = self.doc.get("data_digest")
        fresh = [r for r in self.doc["runs"] if not (self.exp / r["dir"] / rf.CONFIG).is_file()
                 and r.get("state") != "done" and isinstance(r.get("config"), dict)]
        began = [r["dir"] for r in self.doc["runs"] if (self.exp / r["dir"] / rf.CONFIG).is_file()]
        if not recorded or not fresh or not began:
            return
        try:
            now = data_digest(fresh[0]["config"])
        except NamestudioError as e:
            raise ExperimentError(f"experiment {self.exp.name}: its data does not read now: {rf._first_line(e)}") from None
        if now != recorded:
            data = fresh[0]["config"].get("data")
            raise ExperimentError(f"experiment {self.exp.name}: its data ({data}) changed since it began: "
                                  f"{', '.join(r['dir'] for r in fresh)} would split other names than {began[0]} "
                                  "trained on; put the data back, or compare on it as a new experiment")

    def _pin_data(self) -> None:
        """An experiment made before each run's config recorded its data resolved (experiment.json holding --data
        as typed): resolve it once, as a new experiment does (check_data), and record that in every run's config,
        so each run left and each later resume trains on the same data. Refused in one line, the experiment as it
        was, when that is not the data its runs trained on (their config.json's data_source): a relative path read
        from another folder, or the default source after `data download`."""
        typed = [r for r in self.doc["runs"] if isinstance(r.get("config"), dict) and _as_typed(r["config"].get("data"))]
        if not typed:
            return
        trained: dict[str, str] = {}          # data_source -> the first run that recorded it
        for r in self.doc["runs"]:
            if (self.exp / r["dir"] / rf.CONFIG).is_file():
                try:
                    if source := rf.data_source(rf.read_config(self.exp / r["dir"])):
                        trained.setdefault(source, r["dir"])
                except rf.RunFolderError:
                    pass
        data = typed[0]["config"].get("data")
        given = "data (the default source)" if data is None else f"--data {data}"
        try:
            source = check_data(typed)
        except NamestudioError as e:
            if not trained:
                raise
            first = next(iter(trained))
            raise ExperimentError(f"experiment {self.exp.name}: its runs trained on {first} ({trained[first]}), but "
                                  f"its {given} does not read here: {rf._first_line(e)}") from None
        other = next((s for s in trained if s != source), None)
        if other is not None:
            raise ExperimentError(f"experiment {self.exp.name}: its runs trained on {other} ({trained[other]}), but "
                                  f"its {given} reads {source} here; the runs left would train on other data")
        for r in typed:
            r["config"]["data"] = source
        if isinstance(self.doc.get("settings"), dict) and "data" in self.doc["settings"]:
            self.doc["settings"]["data"] = source
        self._save()

    def _refresh_one_last(self, label: str) -> None:
        self._refresh([label])

    def _fill_done_view(self, label: str) -> None:
        self._refresh([label])
        v = self.views[label]
        v.total_steps = v.total_steps or v.step
        self._show_kept(label)

    def _show_kept(self, label: str) -> None:
        """An ended run's figure: that of the model it keeps, as `runs` gives it (runfolder.kept_val), not its
        last evaluation's (what a live run shows)."""
        try:
            kept = rf.kept_val(self.exp / label, "accuracy" if self.doc.get("task") == "classify" else "nll")
        except rf.RunFolderError:
            kept = None
        if kept is not None:
            self.views[label].metric = kept


# ---- for a face that starts and stops experiments (the TUI) ------------------------------------
COMPARE_LOG = "compare.log"


def launch_compare(checkpoints: str | Path, options: dict, models: list[str] | None = None,
                   grid: dict[str, list] | None = None, parallel: int | None = None,
                   nice: int = 10) -> tuple[Path, subprocess.Popen]:
    """Create the experiment folder now (so a follower has its path at once), then run it with
    `namestudio compare --resume EXP` as a child in its own session (it outlives its launcher), its output
    in EXP/compare.log. Returns (experiment folder, the child). Follow it with ``read_experiment``."""
    models = models or list(DEFAULT_MODELS)
    runs = plan_runs(options, models, grid or {})
    parallel = parallel or default_parallel(TrainConfig.from_dict(runs[0]["config"]), len(runs))
    exp = new_experiment(checkpoints, options, models, grid or {}, parallel)
    argv = [sys.executable, "-m", CLI_MODULE, "compare", "--resume", str(exp), "--parallel", str(parallel),
            "--nice", str(int(nice))]
    return exp, spawn(argv, exp / COMPARE_LOG, say_command=False)


def stop_experiment(exp: str | Path) -> int:
    """Stop every run of an experiment cleanly: through the `compare` process running it (SIGTERM, as Ctrl-C),
    or, when that controller is gone (killed) while runs it started still train, by asking each of them to stop
    (control.json). Returns how many runs were asked directly (0: the controller was). ExperimentError when
    nothing of it runs on this host."""
    doc = read_experiment(exp)
    if doc.get("state") == "running" and doc.get("host") == rf.HOST and rf.pid_alive(doc.get("pid")):
        os.kill(int(doc["pid"]), signal.SIGTERM)
        return 0
    asked = 0
    for _, run_dir in run_dirs(exp):
        try:
            if rf.read_status(run_dir).live:
                rf.send_control(run_dir, "stop")
                asked += 1
        except rf.RunFolderError:
            continue
    if not asked:
        raise ExperimentError(f"experiment {Path(exp).name} is not running here (it is {doc.get('state')})")
    return asked


def run_or_experiment(item: str, checkpoints: str | Path = "checkpoints",
                      prefer_run: bool = False) -> tuple[Path | None, Path | None]:
    """What an id given on a command line names: (a run, None) or (None, an experiment). A whole path or id is
    what it is; a piece of an id must name a run or an experiment, never both (``prefer_run``: the one run it
    names wins, as `stop 0612` takes "any unique part of the run id" though a same-day experiment's id holds it
    too), and a piece that is ambiguous among runs stays an error (`stop 2026` stopped the one experiment whose
    id held it, where two runs did too)."""
    p, root = Path(item), Path(checkpoints)
    if is_experiment(p) or is_experiment(root / item):
        return None, (p if is_experiment(p) else root / item)
    if rf._is_run(p) or rf._is_run(root / item):
        return rf.resolve_run(item, checkpoints), None
    run, run_error = None, None
    try:
        run = rf.resolve_run(item, checkpoints)
    except rf.RunFolderError as e:
        run_error = e
    exp, several = None, None
    try:
        exp = resolve_experiment(item, checkpoints)
    except AmbiguousExperiment as e:    # several experiments hold it: as ambiguous as one run and one experiment
        several = e
    except ExperimentError:
        pass
    no_run = isinstance(run_error, rf.NotARun) or str(run_error).startswith("no run ")
    if prefer_run and run is not None:
        return run, None
    if several is not None:
        if run is None and no_run:
            raise several
        what = f"run {run_name(run)}" if run is not None else "runs"
        raise ExperimentError(f"{item!r} names both {what} and experiments {str(several).split(': ', 1)[1]}; "
                              "give more of the id")
    if exp is not None and (run is not None or not no_run):
        what = run_name(run) if run is not None else "runs"
        raise ExperimentError(f"{item!r} names both {'run ' if run is not None else ''}{what} and "
                              f"experiment {exp.name}; give more of the id")
    if exp is None and run is None:
        raise run_error
    return run, exp


# ---- the data of the comparison views and the report -------------------------------------------
def collect_runs(items: list[str], checkpoints: str | Path = "checkpoints") -> tuple[list[tuple[str, Path]], list[Path]]:
    """Experiments and runs as given on a command line -> ([(label, run folder)], [experiment folders]).
    An experiment contributes its runs labelled by their folder names; a run given alone is labelled by its id."""
    runs: list[tuple[str, Path]] = []
    exps: list[Path] = []
    for item in items:
        run, exp = run_or_experiment(item, checkpoints)
        if exp is None:
            runs.append((None, run))
            continue
        exps.append(exp)
        for label, d in run_dirs(exp):
            runs.append((label, d))
    seen, out = set(), []
    for label, d in runs:
        key = d.resolve()
        if key in seen:
            continue
        seen.add(key)
        out.append((label or d.name, d))
    labels = [lab for lab, _ in out]
    if len(set(labels)) != len(labels):     # two experiments with an "lstm" each: prefix the experiment
        out = [(f"{d.parent.name}/{lab}" if labels.count(lab) > 1 else lab, d) for lab, d in out]
    if not out:
        raise ExperimentError("no runs to report: the experiment has no run folders yet")
    return out, exps


def _config(run_dir: Path) -> dict:
    return rf.read_json(Path(run_dir) / rf.CONFIG, dict)


def results_row(run_dir: Path, label: str | None = None) -> dict:
    """One results-table row: label, model, run (path), task, state, params, train_seconds, names_per_s (median
    over the logged windows), epochs_to_best, best_step, and the test metrics (accuracy, balanced_accuracy,
    macro_f1 for classifiers; nll, perplexity for generators), n_gram and val_kept (the blend chosen and its
    validation figure: that of the model the run keeps); None where a run has no such value yet."""
    run_dir = Path(run_dir)
    row = {"label": label or run_dir.name, "run": str(run_dir), "model": None, "task": None, "recipe": None,
           "state": None, "params": None, "train_seconds": None, "names_per_s": None, "epochs_to_best": None,
           "best_step": None, "test_accuracy": None, "test_balanced_accuracy": None, "test_macro_f1": None,
           "test_nll": None, "test_perplexity": None, "n_gram": None, "val_kept": None, "members": 1, "error": None}
    try:
        cfg = _config(run_dir)
        hp = cfg.get("train") or {}
        row.update(model=hp.get("model"), task=hp.get("task"), recipe=hp.get("recipe", "modern"),
                   params=cfg.get("n_params"), members=hp.get("members", 1))
        st = rf.read_status(run_dir)
        row["state"] = "stale" if st.stale else st.state
        row["error"] = st.error
        rates = [s["names_per_s"] for s in rf.read_jsonl(run_dir / rf.STEPS)
                 if isinstance(s.get("names_per_s"), (int, float)) and s["names_per_s"] > 0]
        if rates:
            row["names_per_s"] = round(statistics.median(rates), 1)
        best = [e for e in rf.read_jsonl(run_dir / rf.METRICS) if e.get("best")]
        if best:
            row["epochs_to_best"] = best[-1].get("epoch")
            row["best_step"] = best[-1].get("step")
        if (run_dir / rf.TEST).is_file() and not st.live:   # a live run's test_metrics.json is an earlier end's
            test = rf.read_test(run_dir)
            row["train_seconds"] = test.get("train_seconds")
            t = test.get("test") or {}
            for k in ("accuracy", "balanced_accuracy", "macro_f1", "nll", "perplexity"):
                if isinstance(t.get(k), (int, float)):
                    row["test_" + k] = t[k]
        blend = rf.kept_blend(run_dir)    # the n-gram LM the run's model uses (engine/blend.py), as chosen: also
        if blend is not None:             # that of a run stopped before its test recorded it
            from .blend import short
            row["n_gram"] = short(blend)
            row["val_kept"] = rf.blend_val(blend, "accuracy" if row["task"] == "classify" else "nll")
    except NamestudioError as e:
        row["state"], row["error"] = "damaged", str(e)
    return row


def results_rows(runs: list[tuple[str, Path]]) -> list[dict]:
    """The results table: one ``results_row`` per (label, run folder)."""
    return [results_row(d, label) for label, d in runs]


def compare_json(exp: Path, report: Path | None = None) -> dict:
    """`namestudio compare --json`'s object (the issue's interface), with each run's label (a grid's runs share a
    model), state and error, and the experiment's state: a stopped run's figures, or a run never begun, could not
    be told from a finished one's."""
    keep = ("label", "model", "run", "state", "error", "params", "train_seconds", "names_per_s")
    out = []
    doc = _read_doc(exp)
    for r in doc["runs"]:
        row = results_row(Path(exp) / r["dir"], r["dir"])
        item = {k: row[k] for k in keep}
        item["model"] = r["model"]
        if not (Path(exp) / r["dir"] / rf.CONFIG).is_file():
            if r.get("state") in ("pending", None):
                item["state"], item["error"] = "pending", None      # not begun: no folder of its own yet
            elif r.get("state") != "running":   # ended before it wrote its settings (a device not here): as the
                item["state"], item["error"] = r["state"], r.get("error")   # controller recorded it, not "damaged"
        if doc.get("task") == "generate":
            item["test_nll"] = row["test_nll"]
        else:
            for k in ("test_accuracy", "test_balanced_accuracy", "test_macro_f1"):
                item[k] = row[k]
        out.append(item)
    return {"experiment": str(exp), "state": doc.get("state"), "report": str(report) if report else None, "runs": out}


def curves(run_dir: Path) -> dict:
    """Every logged point of a run: {"steps": [{"step", "epoch", "elapsed", "loss", "lr", "names_per_s"}],
    "evals": [{"step", "epoch", "elapsed", "train_loss", "val_<metric>": value, "best"}]}."""
    run_dir = Path(run_dir)
    steps = [{k: s.get(k) for k in ("step", "epoch", "elapsed", "loss", "lr", "names_per_s")}
             for s in rf.read_jsonl(run_dir / rf.STEPS) if isinstance(s.get("step"), (int, float))]
    evals = []
    for e in rf.read_jsonl(run_dir / rf.METRICS):
        if not isinstance(e.get("step"), (int, float)):
            continue
        row = {k: e.get(k) for k in ("step", "epoch", "elapsed", "train_loss", "best")}
        for k, v in (e.get("val") or {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                row["val_" + k] = v
        evals.append(row)
    return {"steps": steps, "evals": evals}


def series(run_dir: Path, y: str = "loss", x: str = "step", smoothing: float = 0.0) -> list[tuple[float, float]]:
    """(x, y) points for one curve. ``y``: "loss" / "lr" / "names_per_s" (every logged step) or "train_loss" /
    "val_accuracy" / "val_nll" / any "val_<metric>" (every evaluation); ``x``: "step", "epoch" or "elapsed"
    (training seconds). ``smoothing`` in [0, 1): the debiased EMA of engine/smoothing.py."""
    if x not in X_AXES:
        raise ValueError(f"x must be step, epoch or elapsed, not {x!r}")
    return curve_points(curves(run_dir), y, x, smoothing)


X_AXES = ("step", "epoch", "elapsed")
STEP_SERIES = ("loss", "lr", "names_per_s")     # logged at every step; every other series at each evaluation


def curve_points(c: dict, y: str = "loss", x: str = "step", smoothing: float = 0.0) -> list[tuple[float, float]]:
    """``series`` of curves already read (``curves(run_dir)``): a face that redraws with another x-axis or
    smoothing does not read the files again."""
    from .smoothing import smooth_series
    if x not in X_AXES:
        raise ValueError(f"x must be step, epoch or elapsed, not {x!r}")
    rows = c.get("steps", []) if y in STEP_SERIES else c.get("evals", [])
    pts = [(float(r[x]), float(r[y])) for r in rows
           if isinstance(r.get(x), (int, float)) and isinstance(r.get(y), (int, float))]
    return smooth_series(pts, smoothing) if smoothing else pts


def confusion(run_dir: Path) -> dict | None:
    """{"labels", "matrix" (counts, rows true, columns predicted), "split": "test"|"val"} for a classifier: the
    test matrix when the run has ended, else the best validation one so far; None for generators or no data."""
    run_dir = Path(run_dir)
    cfg = _config(run_dir)
    if (cfg.get("train") or {}).get("task") != "classify":
        return None
    labels = cfg.get("labels") or []
    if (run_dir / rf.TEST).is_file() and not rf.read_status(run_dir).live:   # not an earlier end of a live run
        cm = (rf.read_test(run_dir).get("test") or {}).get("confusion")
        if cm:
            return {"labels": labels, "matrix": cm, "split": "test"}
    best = [e for e in rf.read_jsonl(run_dir / rf.METRICS) if e.get("best") and e.get("confusion")]
    if best:
        return {"labels": labels, "matrix": best[-1]["confusion"], "split": "val"}
    return None


def normalized(matrix: list[list[int]]) -> list[list[float]]:
    """Rows as fractions of their totals (a row with no names stays zeros)."""
    return [[v / sum(row) if sum(row) else 0.0 for v in row] for row in matrix]


def confusion_difference(a: dict, b: dict) -> dict:
    """Row-normalised matrix a minus b (same labels): where one model confuses more than the other."""
    if a["labels"] != b["labels"]:
        raise ExperimentError("these two runs have different languages: their matrices do not line up")
    na, nb = normalized(a["matrix"]), normalized(b["matrix"])
    return {"labels": a["labels"], "matrix": [[x - y for x, y in zip(ra, rb)] for ra, rb in zip(na, nb)]}


def topk_table(runs: list[tuple[str, Path]], names: list[str] = DEFAULT_NAMES, k: int = 3) -> list[dict]:
    """For every classifier run and name: {"label", "name", "top": [(language, probability)], "error", "broken"}:
    "broken" when the run itself could not be read ("error" then says why, on each of its rows), not the name.
    Loads each run's best weights (torch; call it off the UI thread)."""
    from .infer import load_run
    rows = []
    for label, d in runs:
        try:
            if (_config(d).get("train") or {}).get("task") != "classify":
                continue
            run = load_run(d)
            answers = run.classify_each(list(names), k)
        except NamestudioError as e:
            rows += [{"label": label, "name": n, "top": [], "error": str(e), "broken": True} for n in names]
            continue
        rows += [{"label": label, "name": a.name, "top": a.top, "error": a.error, "broken": False} for a in answers]
    return rows


def samples_table(run_dir: Path, temperature: float = 0.8, start_letters: str = "ABC", n: int = 1,
                  seed: int = 0, languages: list[str] | None = None) -> dict:
    """Names sampled per language by a generator run, one column per start letter:
    {"letters": [...], "rows": [{"language", "samples": {letter: [names]}}], "notes": [one line each]}.
    A letter the run never saw is left out with a note; one it reads as another ("Ú" as "U") is kept, with a
    note saying so. Loads the run (torch; off the UI thread)."""
    from .infer import InferenceError, load_run
    run = load_run(run_dir)
    if run.task != "generate":
        raise ExperimentError(f"run {Path(run_dir).name} is a classifier: samples need a generator")
    letters, notes = [], []
    for c in [c for c in start_letters if not c.isspace()]:
        try:
            said = run.read_start(c, "start letter")[1]
            letters.append(c)
        except InferenceError as e:
            notes.append(str(e))
            continue
        notes += [f"start letter {c!r}: {note}" for note in said]   # read as another letter: as `sample` says
    if not letters:       # nothing to sample from: a table of empty cells said nothing (Generate says why)
        raise ExperimentError("; ".join(notes) if notes else "type one or more start letters, e.g. ABC")
    rows = []
    for lang in languages or run.labels:
        got = {}
        for i, c in enumerate(letters):
            got[c] = [s["name"] for s in run.sample(lang=lang, start=c, n=n, temperature=temperature,
                                                      seed=seed + i)]
        rows.append({"language": lang, "samples": got})
    return {"letters": letters, "rows": rows, "notes": notes, "temperature": temperature}


@dataclass
class Settings:
    """The settings the runs share, and those that differ (per run)."""
    common: dict = field(default_factory=dict)
    varying: dict = field(default_factory=dict)   # field -> {label: value}


def settings(runs: list[tuple[str, Path]]) -> Settings:
    cfgs = {}
    for label, d in runs:
        try:
            config = _config(d)
        except NamestudioError:
            continue
        cfgs[label] = dict(config.get("train") or {})
        # the data as resolved, not as typed ("names2" before and after files were deleted from it names other
        # names), and the split the run drew from it (engine/train.py _run_meta): runs share data only when all
        # of these agree
        if rf.data_source(config):
            cfgs[label]["data"] = rf.data_source(config)
        if isinstance(config.get("labels"), list):
            cfgs[label]["labels"] = f"{len(config['labels'])}: {', '.join(map(str, config['labels']))}"
        if isinstance(config.get("split_seed"), int):
            cfgs[label]["split_seed"] = config["split_seed"]
        if isinstance(config.get("split_counts"), dict):
            cfgs[label]["split (train/val/test)"] = "/".join(str(config["split_counts"].get(k, "?"))
                                                             for k in ("train", "val", "test"))
    keys = sorted({k for c in cfgs.values() for k in c})
    out = Settings()
    for k in keys:
        values = {lab: c.get(k) for lab, c in cfgs.items()}
        if len({repr(v) for v in values.values()}) == 1:
            out.common[k] = next(iter(values.values()))
        else:
            out.varying[k] = values
    return out
