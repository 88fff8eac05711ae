"""Run folders: atomic writes, and loading that never executes code from a file.

A run folder ``checkpoints/<run-id>/`` holds:
  config.json          task, model, hyperparameters, vocabulary, labels, data source, split seed
  split.json           the (name, label) pairs of train / val / test, so the split is recorded exactly
  model.safetensors    the best weights so far (safetensors: plain tensors, no code)
  metrics.jsonl        one JSON line per evaluation
  test_metrics.json    the final metrics on the held-out test split
  last.safetensors, optim.pt, state.json   the latest state, for --resume
"""
from __future__ import annotations

from namestudio.data.errors import NamestudioError

import json
import os
import tempfile
import time
from pathlib import Path

import torch

WEIGHTS = "model.safetensors"
LAST = "last.safetensors"
OPTIM = "optim.pt"
STATE = "state.json"
CONFIG = "config.json"
SPLIT = "split.json"
METRICS = "metrics.jsonl"
TEST = "test_metrics.json"


class CheckpointError(NamestudioError):
    """A run folder or file that cannot be used; the message is one line."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename over it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1) + "\n").encode())


def append_jsonl(path: Path, obj) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(obj) + "\n")
        f.flush()


def save_weights(state_dict: dict, path: Path) -> None:
    from safetensors.torch import save
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    atomic_write_bytes(path, save(tensors))


def load_weights(path: Path) -> dict:
    from safetensors.torch import load
    path = Path(path)
    try:
        return load(path.read_bytes())
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such weights file") from None
    except Exception as e:  # safetensors raises its own error types for truncated/corrupt files
        raise CheckpointError(f"{path}: not a readable safetensors file ({_first_line(e)})") from None


def save_torch(obj, path: Path) -> None:
    import io
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_torch(path: Path):
    """torch.load with weights_only=True: a pickle that tries to run code is refused, never run."""
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except Exception as e:
        raise CheckpointError(f"{path}: refused or unreadable ({_first_line(e)})") from None


def read_json(path: Path):
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: corrupt JSON ({_first_line(e)})") from None


def read_jsonl(path: Path) -> list[dict]:
    """Every complete line; a torn last line (killed mid-write) is skipped."""
    rows = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return rows
    for line in lines:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]


def new_run_dir(checkpoints: Path, task: str, model: str) -> Path:
    checkpoints = Path(checkpoints)
    checkpoints.mkdir(parents=True, exist_ok=True)
    base = f"{time.strftime('%Y%m%d-%H%M%S')}-{task}-{model}"
    for i in range(1000):
        path = checkpoints / (base if i == 0 else f"{base}-{i + 1}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise CheckpointError(f"{checkpoints}: could not create a new run folder")


def resolve_run(run: str | Path, checkpoints: str | Path = "checkpoints") -> Path:
    """A run folder path, or a run id under the checkpoints folder (a unique prefix also works)."""
    p = Path(run)
    if (p / CONFIG).is_file():
        return p
    root = Path(checkpoints)
    if (root / str(run) / CONFIG).is_file():
        return root / str(run)
    if root.is_dir() and str(run) and "/" not in str(run):
        matches = sorted(d for d in root.iterdir() if d.name.startswith(str(run)) and (d / CONFIG).is_file())
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise CheckpointError(f"run {run!r} is ambiguous: {', '.join(m.name for m in matches[:5])}")
    raise CheckpointError(f"no run {str(run)!r} (not a run folder, nor a run id under {root})")


def list_runs(checkpoints: str | Path = "checkpoints") -> list[dict]:
    """One summary per run folder, newest first; broken folders are listed with their problem."""
    root = Path(checkpoints)
    out = []
    if not root.is_dir():
        return out
    for d in sorted(root.iterdir(), reverse=True):
        if not (d / CONFIG).is_file():
            continue
        row = {"run": d.name, "path": str(d)}
        try:
            cfg = read_json(d / CONFIG)
        except CheckpointError as e:
            row["error"] = str(e)
            out.append(row)
            continue
        hp = cfg.get("train", {})
        row.update(task=hp.get("task"), model=hp.get("model"), params=cfg.get("n_params"),
                   created=cfg.get("created"), data=cfg.get("data_source"),
                   hidden=hp.get("hidden"), layers=hp.get("layers"), epochs=hp.get("epochs"))
        test = read_json(d / TEST) if (d / TEST).is_file() else {}
        row["train_seconds"] = test.get("train_seconds")
        row["status"] = test.get("reason", "incomplete")
        evals = read_jsonl(d / METRICS)
        key = "accuracy" if hp.get("task") == "classify" else "nll"
        vals = [e["val"][key] for e in evals if key in e.get("val", {})]
        if vals:
            row["best_val_" + key] = max(vals) if key == "accuracy" else min(vals)
        for k in ("accuracy", "macro_f1", "balanced_accuracy", "nll", "perplexity"):
            if k in test.get("test", {}):
                row["test_" + k] = test["test"][k]
        out.append(row)
    return out
