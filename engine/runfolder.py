"""The run folder, format 2: the one module that reads and writes ``checkpoints/<run-id>/``.

A run is one OS process (``namestudio train``). It writes its folder as it goes, and every other program
(the TUI, ``runs``, ``eval``, another machine over NFS) reads the folder, never the process:

  config.json          task, model, hyperparameters, vocabulary, labels, data source ("format": 2; data_source())
  split.json           the exact (name, label) pairs of train / val / test
  status.json          state, pid, host, heartbeat (rewritten every ~2 s by the trainer), progress, last error
  steps.jsonl          one Step event per line, every log_every steps (append + flush)
  metrics.jsonl        one Eval event per line, every evaluation (append + flush)
  model.safetensors    the best weights so far (safetensors: plain tensors, no code)
  resume.json          points at resume-<step>/ (last.safetensors, optim.pt, state.json): one consistent resume point;
                       records its step and epoch too (resume_progress: where a stale or stopped run resumes)
  test_metrics.json    the test metrics of the best weights, at the end
  calibration.json     classifiers: the temperature fitted on validation (engine/calibration.py)
  lm.safetensors       classifiers: the character n-gram LM blended into the network, and its weights
                       (engine/blend.py), with the digest of the best weights they were chosen for (left out
                       once those move on); absent when the network alone did best on validation
  train.log            the trainer's stdout + stderr when a launcher started it
  control.json         {"command": "stop"|"pause"|"resume", "at": ts}, written by `namestudio stop|pause|resume`
  run.lock             flock'ed by the training process for its lifetime (holds its pid)

Nothing here executes code from a file: weights are safetensors, and the optimizer state is read with
``torch.load(weights_only=True)``. torch is imported lazily, so the readers (status, logs, listing) stay light.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import socket
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from namestudio.data.errors import NamestudioError
from namestudio.data.fsmode import set_file_mode

FORMAT = 2

CONFIG = "config.json"
SPLIT = "split.json"
STATUS = "status.json"
STEPS = "steps.jsonl"
METRICS = "metrics.jsonl"
WEIGHTS = "model.safetensors"
TEST = "test_metrics.json"
CALIBRATION = "calibration.json"        # temperature scaling of a classifier (engine/calibration.py)
LM = "lm.safetensors"                    # the n-gram LM blended into a classifier (engine/blend.py)
LOG = "train.log"
CONTROL = "control.json"
LOCK = "run.lock"
RESUME = "resume.json"
# inside a resume-<step>/ folder (and, in format 1 runs, in the run folder itself)
LAST = "last.safetensors"
OPTIM = "optim.pt"
STATE = "state.json"

LIVE_STATES = ("starting", "running", "paused", "stopping")
# A run stopped before its end (`namestudio stop`, Ctrl-C, the TUI's Stop) is "stopped": its state and its reason,
# the word every face shows (stop -> stopping -> stopped). Runs written before said "cancelled": read as "stopped".
STOPPED = "stopped"
OLD_STOPPED = "cancelled"
END_STATES = ("done", "failed", STOPPED)
REASONS = ("finished", "early_stop", "max_steps", STOPPED)   # why a run ended (status.json, test_metrics.json)
REASON_WORDS = {"finished": "finished", "early_stop": "early stop", "max_steps": "step limit", STOPPED: STOPPED}
REASON_WHY = {"early_stop": "no improvement"}   # the long form's parenthesis (--patience evaluations without one)
# why a run's weights were not tested (test_metrics.json's "untested"; its "test" is then empty), and the word
# that joins its state in a listing ("stopped, untrained")
UNTRAINED = "stopped before any training: no weights were kept, and nothing was tested"
NOT_TESTED = "stopped at once (asked to stop twice): what was saved is kept, not tested"
UNTESTED_WORDS = {UNTRAINED: "untrained", NOT_TESTED: "untested"}
COMMANDS = ("stop", "pause", "resume")
STALE_AFTER = 15.0        # seconds without a heartbeat before a run may be called stale
STARTING_GRACE = 300.0    # the same for a launched run still "starting" (its child imports torch, then locks the
#                           run; one heartbeat, the launcher's, until then): a loaded machine took over 15 s
HEARTBEAT_EVERY = 2.0     # seconds between status.json rewrites while a run is live
HOST = socket.gethostname()

__all__ = [
    "FORMAT", "CONFIG", "SPLIT", "STATUS", "STEPS", "METRICS", "WEIGHTS", "TEST", "CALIBRATION", "LM", "LOG", "CONTROL", "LOCK",
    "RESUME", "LAST", "OPTIM", "STATE", "LIVE_STATES", "END_STATES", "COMMANDS", "STALE_AFTER", "HOST",
    "STOPPED", "REASONS", "REASON_WORDS", "REASON_WHY", "UNTRAINED", "NOT_TESTED", "UNTESTED_WORDS", "stopped_word", "state_words", "reason_words",
    "read_test", "no_weights",
    "NamestudioError", "RunFolderError", "CheckpointError",
    "atomic_write_bytes", "atomic_write_json", "append_jsonl", "rewrite_jsonl", "read_json", "read_config", "read_jsonl",
    "data_source",
    "save_weights", "load_weights", "weights_metadata", "weights_digest", "nothing_left", "read_safetensors_header", "check_weights_fit", "save_torch", "load_torch",
    "new_run_dir", "prepare_run_dir", "write_run_files", "resolve_run", "list_runs",
    "RunStatus", "read_status", "write_status", "pid_alive", "lock_is_free", "RunLock",
    "Tail", "event_to_record", "record_to_event", "send_control", "read_control", "ControlWatcher",
    "last_log_lines", "save_resume_point", "resume_dir", "resume_progress", "shown_progress", "load_resume_point",
    "clean_for_resume", "RunWriter",
    "blend_val", "kept_val", "blend_chosen", "kept_blend",
]


class RunFolderError(NamestudioError):
    """A run folder or file that cannot be used; the message is one line that names the file."""


CheckpointError = RunFolderError  # the format-1 name, kept for old imports


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]


def _os_error(path: Path, e: OSError) -> RunFolderError:
    """A write that failed, in words: which file and why."""
    why = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
           errno.EFBIG: "the file is too large (a file-size limit such as `ulimit -f`, or the filesystem's)",
           errno.EROFS: "the filesystem is read-only", errno.EACCES: "permission denied",
           errno.EPERM: "permission denied", errno.ENOENT: "its folder does not exist (or was removed)",
           errno.EISDIR: "a folder of that name is in the way"}.get(e.errno)
    return RunFolderError(f"could not write {path}: {why or _first_line(e)}")


# ---- atomic writes --------------------------------------------------------------------------------
def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename over it: the old file stays whole on failure.
    The file gets the mode ``open()`` would give it (0666 & ~umask; mkstemp's is 0600), so that a run folder
    on a shared disk reads for others as its ``.jsonl`` logs do."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise _os_error(path, e) from None
    try:
        with os.fdopen(fd, "wb") as f:
            set_file_mode(f.fileno())
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise _os_error(path, e) from None
        raise


def atomic_write_json(path: Path, obj, indent: int | None = 1) -> None:
    """Pretty by default; ``indent=None`` for big files (the C encoder, several times faster)."""
    atomic_write_bytes(path, (json.dumps(obj, indent=indent) + "\n").encode())


def append_jsonl(path: Path, obj) -> None:
    """Append one line and flush. The whole line goes in one write, so readers see it whole or not at all."""
    line = (json.dumps(obj) + "\n").encode()
    try:
        with open(path, "ab") as f:
            f.write(line)
            f.flush()
    except OSError as e:
        raise _os_error(Path(path), e) from None


def rewrite_jsonl(path: Path, rows: list[dict]) -> None:
    atomic_write_bytes(path, "".join(json.dumps(r) + "\n" for r in rows).encode())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---- reads ----------------------------------------------------------------------------------------
def read_json(path: Path, kind: type | None = None):
    """Parse a JSON file; with ``kind``, a value of another type counts as damaged. Errors name the file."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunFolderError(f"{path}: missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunFolderError(f"{path}: corrupt JSON ({_first_line(e)})") from None
    except OSError as e:
        raise RunFolderError(f"{path}: unreadable ({_first_line(e)})") from None
    if kind is not None and not isinstance(obj, kind):
        word = {type(None): "null", bool: "true/false", int: "number", float: "number", str: "string",
                list: "list", dict: "object"}.get(type(obj), type(obj).__name__)
        raise RunFolderError(f"{path}: damaged (a JSON {word} where an object belongs)")
    return obj


def read_config(run_dir: Path) -> dict:
    """A run's config.json, its shape checked: ``train`` an object, ``labels`` a list of distinct names, ``vocab`` a
    list of letters. A damaged one is a one-line RunFolderError naming the file and the field."""
    path = Path(run_dir) / CONFIG
    meta = read_json(path, dict)
    if not isinstance(meta.get("train"), dict):
        raise RunFolderError(f"{path}: damaged (no 'train' settings object)")
    labels = meta.get("labels")
    if not (isinstance(labels, list) and labels and all(isinstance(x, str) for x in labels)
            and len(set(labels)) == len(labels)):
        raise RunFolderError(f"{path}: damaged ('labels' must be a list of distinct names)")
    vocab = meta.get("vocab")
    if not (isinstance(vocab, list) and all(isinstance(x, str) for x in vocab)):
        raise RunFolderError(f"{path}: damaged ('vocab' must be a list of letters)")
    if not isinstance(meta.get("data_source"), (str, type(None))):
        raise RunFolderError(f"{path}: damaged ('data_source' must be text)")
    return meta


def data_source(meta: dict) -> str | None:
    """The data a run was trained on, as its config.json records it: "builtin", "pytorch-names", a path, ...
    (``data_source``, the source as resolved; an older config without it: the --data it was given). None when
    neither says."""
    source = meta.get("data_source")
    if isinstance(source, str) and source:
        return source
    train = meta.get("train")
    given = train.get("data") if isinstance(train, dict) else None
    return given if isinstance(given, str) and given else None


def read_jsonl(path: Path, strict: bool = False) -> list[dict]:
    """Every complete object line. A torn line (killed mid-write) is skipped; with ``strict``, a line that is
    valid JSON but not an object raises (the file is damaged, not torn)."""
    rows = []
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return rows
    for i, line in enumerate(lines, 1):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            rows.append(obj)
        elif strict:
            raise RunFolderError(f"{path}: damaged (line {i} is a JSON {type(obj).__name__}, not an object)")
    return rows


# ---- weights and optimizer state ------------------------------------------------------------------
def save_weights(state_dict: dict, path: Path, metadata: dict[str, str] | None = None) -> None:
    """Tensors as a safetensors file (atomically), with ``metadata`` (strings) in its header when given."""
    from safetensors.torch import save
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    atomic_write_bytes(path, save(tensors, metadata=metadata))


def weights_metadata(data: bytes) -> dict[str, str]:
    """The string metadata in the header of a safetensors file's bytes (``save_weights``'s ``metadata``); {} when
    there is none or the header cannot be read (``load_weights`` says why)."""
    try:
        n = int.from_bytes(data[:8], "little")
        meta = json.loads(data[8:8 + n]).get("__metadata__") if 1 < n <= len(data) - 8 else None
    except (ValueError, UnicodeDecodeError, AttributeError):
        return {}
    return {k: v for k, v in meta.items() if isinstance(v, str)} if isinstance(meta, dict) else {}


def load_weights(path: Path, check_finite: bool = True, data: bytes | None = None) -> dict:
    """Tensors from a safetensors file (or from ``data``, its bytes read already); refuses a file with NaN or
    infinite values."""
    from safetensors.torch import load
    path = Path(path)
    try:
        sd = load(path.read_bytes() if data is None else data)
    except FileNotFoundError:
        raise RunFolderError(f"{path}: no such weights file") from None
    except Exception as e:  # safetensors raises its own error types for truncated/corrupt files
        raise RunFolderError(f"{path}: not a readable safetensors file ({_first_line(e)})") from None
    if check_finite:
        import torch
        for k, v in sd.items():
            if v.is_floating_point() and not bool(torch.isfinite(v).all()):
                raise RunFolderError(f"{path}: refused: tensor {k} holds NaN or infinite values (the run diverged)")
    return sd


def weights_digest(weights: bytes, lm: bytes | None = None) -> str:
    """What identifies a run's model: a hash of its best weights and of its blended n-gram LM, if any. Recorded
    with what was fitted to one set of weights (calibration.json), so a reader can tell when the weights moved on
    (a resumed or live run) and the fit no longer belongs to them."""
    h = hashlib.sha256(weights)
    if lm is not None:
        h.update(b"\0lm\0")
        h.update(lm)
    return h.hexdigest()[:16]


def read_safetensors_header(path: Path) -> dict[str, list[int]]:
    """{tensor name: shape} from a safetensors header (8-byte little-endian length, then JSON), reading no tensor."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else -1
            if n <= 1 or n > min(size - 8, 100 << 20):
                raise RunFolderError(f"{path}: not a readable safetensors file (bad header length)")
            header = json.loads(f.read(n))
    except FileNotFoundError:
        raise RunFolderError(f"{path}: no such weights file") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RunFolderError(f"{path}: not a readable safetensors file (corrupt header)") from None
    if not isinstance(header, dict):
        raise RunFolderError(f"{path}: not a readable safetensors file (corrupt header)")
    out, end = {}, 0
    for k, v in header.items():
        if k == "__metadata__":
            continue
        if not isinstance(v, dict) or not isinstance(v.get("shape"), list):
            raise RunFolderError(f"{path}: not a readable safetensors file (corrupt header entry {k!r})")
        out[k] = v["shape"]
        offsets = v.get("data_offsets")
        if isinstance(offsets, list) and len(offsets) == 2 and isinstance(offsets[1], int):
            end = max(end, offsets[1])
    if 8 + n + end > size:
        raise RunFolderError(f"{path}: not a readable safetensors file (truncated: {size:,} of {8 + n + end:,} bytes)")
    return out


# the value-filling ops of torch.nn.init and torch.Tensor: on the meta device they change no shape, and the
# first of them in a process imports torch's Python meta kernels (torch._refs, then dynamo and sympy: ~1 s)
_FILL_OPS = frozenset({"normal_", "uniform_", "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_",
                       "xavier_normal_", "trunc_normal_", "orthogonal_", "sparse_", "eye_", "dirac_", "zero_",
                       "zeros_", "ones_", "fill_", "constant_", "bernoulli_", "exponential_", "random_",
                       "geometric_", "cauchy_", "log_normal_"})


def _ShapesOnly():
    """A torch function mode that skips the fills above on meta tensors: a model built under it on the meta
    device has every shape, no values, and costs milliseconds instead of an import of about a second (which,
    in the TUI, froze the screen when a pane loaded its first run)."""
    import torch
    from torch.overrides import TorchFunctionMode

    class ShapesOnly(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            target = args[0] if args else kwargs.get("tensor", kwargs.get("self"))
            if (getattr(func, "__name__", "") in _FILL_OPS and isinstance(target, torch.Tensor)
                    and target.is_meta):
                return target
            return func(*args, **kwargs)

    return ShapesOnly()


def check_weights_fit(weights_path: Path, build) -> None:
    """Check that the weights file fits the model that ``build()`` makes, before any real memory is used.

    ``build`` makes the model; it runs on torch's meta device (shapes only, no storage). A config whose
    size fields disagree with the weights (say ``layers: 3000``) is refused in one line naming both files.
    """
    import torch
    weights_path = Path(weights_path)
    shapes = read_safetensors_header(weights_path)
    with torch.device("meta"), _ShapesOnly():
        model = build()
    want = {k: list(v.shape) for k, v in model.state_dict().items()}
    cfg = weights_path.parent / CONFIG
    if set(want) != set(shapes):
        extra, missing = sorted(set(shapes) - set(want)), sorted(set(want) - set(shapes))
        detail = f"missing {missing[0]}" if missing else f"unexpected {extra[0]}"
        raise RunFolderError(f"{weights_path}: weights do not fit the model in {cfg.name} "
                             f"({len(shapes)} tensors, the config needs {len(want)}; {detail})")
    for k, shape in want.items():
        if shapes[k] != shape:
            raise RunFolderError(f"{weights_path}: weights do not fit the model in {cfg.name} "
                                 f"({k} is {shapes[k]}, the config needs {shape})")


def save_torch(obj, path: Path) -> None:
    import io

    import torch
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_torch(path: Path):
    """torch.load with weights_only=True: a pickle that would run code is refused, never run."""
    import pickle

    import torch
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise RunFolderError(f"{path}: no such file") from None
    except pickle.UnpicklingError as e:
        if "weights only" in str(e).lower() or "weights_only" in str(e):
            raise RunFolderError(f"refused: {path} could run code when loaded") from None
        raise RunFolderError(f"{path}: not a readable torch file (corrupt pickle)") from None
    except Exception as e:
        msg = _first_line(e)
        if "weights_only" in msg or "weights only" in msg.lower():
            raise RunFolderError(f"refused: {path} could run code when loaded") from None
        raise RunFolderError(f"{path}: not a readable torch file ({type(e).__name__})") from None


# ---- creating a run -------------------------------------------------------------------------------
def new_run_dir(checkpoints: Path, task: str, model: str) -> Path:
    checkpoints = Path(checkpoints)
    try:
        checkpoints.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _os_error(checkpoints, e) from None
    base = f"{time.strftime('%Y%m%d-%H%M%S')}-{task}-{model}"
    for i in range(1000):
        path = checkpoints / (base if i == 0 else f"{base}-{i + 1}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
        except OSError as e:   # a read-only or full checkpoints folder: the folder and the reason in words
            raise _os_error(path, e) from None
    raise RunFolderError(f"{checkpoints}: could not create a new run folder")


RUN_FILES = (CONFIG, SPLIT, STEPS, METRICS, WEIGHTS, TEST, RESUME)
# what a launcher (the TUI, compare, `train --nproc`) puts in a new run's folder before its `train --run-dir`
# begins: the log of the child, its "starting" status, the lock, a stop asked meanwhile; and what a run stopped
# before it saved its settings leaves (a stopped status): a folder `train --run-dir` takes again
LAUNCH_FILES = (LOG, STATUS, LOCK, CONTROL)


def prepare_run_dir(path: Path) -> Path:
    """A folder for a new run (``train --run-dir``): created if absent; it must be empty, or hold only what a
    launcher put there (LAUNCH_FILES): no run yet, and none of the user's files (a data folder, a typo such as
    ``~``: the run's files would land among them)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        names = sorted(p.name for p in path.iterdir())
    except OSError as e:
        raise _os_error(path, e) from None
    taken = [f for f in RUN_FILES if f in names] or [n for n in names if n.startswith("resume-")]
    if taken:
        raise RunFolderError(f"{path}: already holds a run ({taken[0]}); use `train --resume` or another folder")
    launched = set(LAUNCH_FILES) | {n for n in names if n.startswith(tuple(f".{f}." for f in LAUNCH_FILES))
                                    and n.endswith(".tmp")}     # a launcher's atomic write, cut short
    other = [n for n in names if n not in launched]
    if other:
        shown = ", ".join(_shown(n, 30) for n in other[:3]) + (f" … and {len(other) - 3} more" if len(other) > 3 else "")
        raise RunFolderError(f"{path}: holds files that are not a run's ({shown}); --run-dir takes a new or empty "
                             "folder: give another")
    return path


def read_split(run_dir: Path) -> dict:
    """split.json: {"train", "val", "test"}, each a list of [name, label] pairs; RunFolderError, one line, for a
    file without them (eval and report stopped on a KeyError, "a bug")."""
    path = Path(run_dir) / SPLIT
    split = read_json(path, dict)
    for part in ("train", "val", "test"):
        pairs = split.get(part)
        if not isinstance(pairs, list) or (pairs and not (isinstance(pairs[0], list) and len(pairs[0]) == 2)):
            raise RunFolderError(f"{path}: damaged (no list of {part} pairs)")
    return split


def write_run_files(run_dir: Path, meta: dict, split: dict) -> None:
    """config.json (with the format number) and split.json, once, atomically."""
    atomic_write_json(Path(run_dir) / SPLIT, split, indent=None)   # up to millions of pairs: compact
    atomic_write_json(Path(run_dir) / CONFIG, {"format": FORMAT, **meta})


# ---- finding runs ---------------------------------------------------------------------------------
def _is_run(d: Path) -> bool:
    try:
        return d.is_dir() and ((d / CONFIG).is_file() or (d / STATUS).is_file())
    except OSError:          # a name the system cannot look up (too long): no run there
        return False


def _shown(text: str, n: int = 40) -> str:
    """A name as a message shows it: a long one cut, so that the message stays one line."""
    return text if len(text) <= n else text[:n] + "…"


def too_long(path: str | Path) -> str | None:
    """Why the system cannot take ``path`` as a folder to write runs in, when a name in it is longer than the
    file system's names may be (or the whole path longer than a path may be), in words that show the path cut
    as _shown cuts a run's name: the system's own "File name too long" came after the whole path, hundreds of
    characters. None when the lengths are fine."""
    path = Path(path)
    near = Path(os.path.abspath(path))
    while True:                       # the nearest folder that exists: its file system says how long a name may be
        try:
            if near.is_dir():
                break
        except OSError:
            pass
        if near.parent == near:
            break
        near = near.parent

    def limit(name: str, default: int) -> int:
        try:
            return os.pathconf(near, name)
        except (OSError, ValueError):
            return default

    name_max = limit("PC_NAME_MAX", 255)
    longest = max((len(os.fsencode(part)) for part in path.parts), default=0)
    if longest > name_max:
        return (f"{_shown(str(path))}: a name in it is {longest:,} characters long, and this file system takes "
                f"at most {name_max:,}")
    path_max = limit("PC_PATH_MAX", 4096)
    if len(os.fsencode(os.path.abspath(path))) >= path_max:
        return f"{_shown(str(path))}: the path is longer than this system takes ({path_max - 1:,} characters)"
    return None


def resolve_run(run: str | Path, checkpoints: str | Path = "checkpoints") -> Path:
    """A run folder path, a run id under the checkpoints folder, or any unique substring of a run id."""
    p = Path(run)
    if _is_run(p):
        return p
    root = Path(checkpoints)
    text = str(run)
    if text and _is_run(root / text):
        return root / text
    if root.is_dir() and text and "/" not in text:
        try:
            matches = sorted(d.name for d in root.iterdir() if text in d.name and _is_run(d))
        except OSError:
            matches = []
        # and an experiment's runs (EXP/RUN): a piece that names one of each is ambiguous, not the first found
        # (a new run `…-classify-rnn` silently took `rnn` from an experiment's rnn)
        nested = _nested_matches(root, text)
        exact = [m for m in nested if m.split("/")[1] == text]
        # an experiment's run named exactly so wins over runs whose names merely hold it (`lstm`, not `mylstm`),
        # as in EXP/RUN below; not over a run id outside experiments that holds it: that stays ambiguous
        found = exact if len(exact) == 1 and not matches else matches + nested
        if len(found) == 1:
            return root / found[0]
        if found:
            shown = ", ".join(found[:5]) + (f" … and {len(found) - 5} more" if len(found) > 5 else "")
            hint = "give EXP/RUN" if not matches else "give more of the id" + (", or EXP/RUN" if len(matches) < len(found) else "")
            raise RunFolderError(f"run {text!r} is ambiguous: {shown}; {hint}")
    if root.is_dir() and text.count("/") == 1 and all(text.split("/")):   # EXP/RUN, each part a unique piece
        exp, name = text.split("/")
        found = [m for m in _nested_matches(root, name) if exp in m.split("/")[0]]
        exact = [m for m in found if m.split("/")[1] == name]
        found = exact if len(exact) == 1 else found
        if len(found) == 1:
            return root / found[0]
        if found:
            shown = ", ".join(found[:5]) + (f" … and {len(found) - 5} more" if len(found) > 5 else "")
            raise RunFolderError(f"run {text!r} is ambiguous: {shown}; give more of the ids")
    folders = _folders_of_runs(root, text) if text and "/" not in text else []
    if folders:     # the id of an experiment (a folder of runs), where a run is asked for
        runs = sorted(r.name for r in folders[0].iterdir() if _is_run(r))[:3]
        raise NotARun(f"{text!r} is {'an experiment' if len(folders) == 1 else 'in experiment ids'} "
                             f"({', '.join(f.name for f in folders[:3])}), not a run: give EXP/RUN"
                             + (f", e.g. {folders[0].name}/{runs[0]}" if runs else ""))
    try:            # an experiment's folder given by its path (`eval ck/exp-…`): said, as for its id above
        inner = sorted(c.name for c in p.iterdir() if _is_run(c))[:1] if p.is_dir() else []
    except OSError:
        inner = []
    if inner:
        raise NotARun(f"{_shown(text)!r} is a folder of runs, not a run: give one of its runs, e.g. {p / inner[0]}")
    raise RunFolderError(f"no run {_shown(text)!r} (not a run folder, nor a run id under {root})")


class NotARun(RunFolderError):
    """A run was asked for and the id names a folder of runs (an experiment): no run by that id either."""


def _folders_of_runs(root: Path, text: str) -> list[Path]:
    """The folders under ``root`` whose name holds ``text`` and that hold runs (an experiment), newest first."""
    try:
        return [d for d in sorted(root.iterdir(), reverse=True)
                if text in d.name and d.is_dir() and not _is_run(d) and any(_is_run(r) for r in d.iterdir())]
    except OSError:
        return []


def _nested_matches(root: Path, text: str) -> list[str]:
    """'FOLDER/RUN' for each run one folder down (an experiment's runs) whose name holds ``text``, newest first."""
    out = []
    try:
        for d in sorted(root.iterdir(), reverse=True):
            if d.is_dir() and not _is_run(d):
                out += [f"{d.name}/{r.name}" for r in sorted(d.iterdir()) if text in r.name and _is_run(r)]
    except OSError:
        pass
    return out


# ---- status ---------------------------------------------------------------------------------------
@dataclass
class RunStatus:
    state: str = "incomplete"     # starting running paused stopping done failed stopped, or incomplete (format 1)
    pid: int | None = None
    host: str | None = None
    started: float | None = None
    heartbeat: float | None = None
    step: int = 0
    total_steps: int = 0
    epoch: float = 0.0
    reason: str | None = None
    error: str | None = None
    device: str = ""
    note: str = ""
    live: bool = False            # a trainer is at work on it now
    stale: bool = False           # the status says live, but its trainer is gone

    def to_record(self) -> dict:
        d = asdict(self)
        for k in ("live", "stale"):
            d.pop(k)
        return {"format": FORMAT, **d}


def stopped_word(value):
    """A state or reason as this version words it: "cancelled", written by earlier versions for a stopped run, is
    "stopped"; anything else as it is."""
    return STOPPED if value == OLD_STOPPED else value


def state_words(state: str, untested: str | None = None) -> str:
    """A run's state as a listing shows it: "stopped", or "stopped, untrained" / "stopped, untested" for a run
    whose weights were not tested (``untested``: test_metrics.json's, a listing row's)."""
    state = stopped_word(state)
    word = UNTESTED_WORDS.get(untested or "")
    return f"{state}, {word}" if word and state == STOPPED else state


def reason_words(reason: str | None, why: bool = False) -> str:
    """Why a run ended, in the words every face shows ("early stop", "stopped", ...); ``why``: with the reason's
    cause where it has one ("early stop (no improvement)"), for a status line."""
    reason = stopped_word(reason)
    words = REASON_WORDS.get(reason or "", str(reason or "").replace("_", " "))
    return f"{words} ({REASON_WHY[reason]})" if why and reason in REASON_WHY else words


def read_test(run_dir: Path) -> dict:
    """test_metrics.json ({} when there is none), its reason in this version's words. ``test`` is {} when the
    weights were not tested; ``untested`` then says why (UNTRAINED, NOT_TESTED)."""
    path = Path(run_dir) / TEST
    if not path.is_file():
        return {}
    test = read_json(path, dict)
    if not isinstance(test.get("test", {}), dict):
        raise RunFolderError(f"{path}: damaged (test is not an object)")
    if "reason" in test:
        test = {**test, "reason": stopped_word(test["reason"])}
    return test


def stop_keeps(run_dir: str | Path | None, step: int, reported: bool = False) -> str:
    """What stopping a live run now keeps, in the words every face shows: its best checkpoint when it has one
    (its weights are tested); its current weights when it has trained but not evaluated yet (they are saved
    and tested); nothing, when not one step was trained (``step``: the step its weights are at).
    ``reported``: ``step`` is the last one the run reported (its status or log, every few steps), read by
    another process: at 0 it may have trained since, and what it keeps depends on that (`stop` said "nothing
    trained yet" of a run that then kept and tested 12 steps' weights)."""
    if run_dir is not None and (Path(run_dir) / WEIGHTS).is_file():
        return "the best checkpoint so far is kept and tested"
    if step > 0:
        return "no checkpoint yet: the current weights are kept and tested"
    if reported:
        return ("no trained step reported yet: the weights it has when it stops are kept and tested "
                "(nothing, if it has not trained a step)")
    return "nothing trained yet: no weights to keep, nothing to test"


def no_weights(run_dir: Path) -> str:
    """Why a run has no weights to use (model.safetensors is absent), in one line that names the run."""
    run_dir = Path(run_dir)
    try:
        st, test = read_status(run_dir), read_test(run_dir)
    except RunFolderError:
        st, test = RunStatus(), {}
    name = run_dir.name
    if st.live:
        return f"run {name} has no weights yet (it is {st.state}, at step {st.step:,}): its first evaluation saves them"
    try:
        resumable = resume_dir(run_dir) is not None
    except RunFolderError:
        resumable = False
    how = f"; `namestudio train --resume {as_arg(run_dir)}` trains it on" if resumable else ""
    if test.get("untested") == UNTRAINED:
        return f"run {name} was {UNTRAINED}{how}"
    if st.state == STOPPED and not test.get("test") and not evaluated(run_dir):
        return f"run {name} was stopped before its first evaluation: it has no best weights yet{how}"
    return f"{run_dir / WEIGHTS}: no such weights file"


def as_arg(path) -> str:
    """A run or experiment folder as a command's argument from here (`train --resume X`, `compare --resume X`):
    its path, relative when shorter, quoted for the shell. An id alone resolves only under the default
    checkpoints folder, so hints that named the id failed for a run under --checkpoints (and EXP/RUN never)."""
    import shlex
    full = os.path.abspath(path)
    rel = os.path.relpath(full)
    return shlex.quote(rel if len(rel) < len(full) and not rel.startswith("..") else full)


def evaluated(run_dir: Path) -> bool:
    """Whether the run logged an evaluation (its first one saves the weights)."""
    try:
        return _best_evals(Path(run_dir) / METRICS, "step")[1] is not None
    except RunFolderError:
        return False


def pid_alive(pid: int | None) -> bool:
    """Whether a process with this pid runs on this host (a zombie counts as dead)."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def lock_is_free(run_dir: Path) -> bool:
    """True when no process holds the run's lock (probed with a shared lock, released at once)."""
    try:
        fd = os.open(Path(run_dir) / LOCK, os.O_RDONLY)
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return False
    finally:
        os.close(fd)  # closing drops the probe's lock
    return True


def write_status(run_dir: Path, status: RunStatus) -> None:
    atomic_write_json(Path(run_dir) / STATUS, status.to_record())


def read_status(run_dir: Path, stale_after: float = STALE_AFTER, now: float | None = None,
                _again: bool = True) -> RunStatus:
    """The run's status, with ``live`` and ``stale`` derived.

    A live-looking status is stale when its trainer is gone: on this host, when its pid is dead, or when the
    heartbeat is older than ``stale_after`` and the run lock is free (the pid may have been reused); on
    another host (a shared folder), when the heartbeat is older than ``stale_after``. A format-1 run (no
    status.json) is "done"/"stopped" from its test metrics, else "incomplete". An earlier version's "cancelled"
    reads as "stopped". Raises RunFolderError when status.json is damaged.
    """
    run_dir = Path(run_dir)
    path = run_dir / STATUS
    if not path.is_file():
        st = RunStatus()
        if (run_dir / TEST).is_file():
            st.reason = read_test(run_dir).get("reason")
            st.state = STOPPED if st.reason == STOPPED else "done"
        return st
    rec = read_json(path, dict)
    known = {f.name for f in fields(RunStatus)} - {"live", "stale"}
    try:
        st = RunStatus(**{k: v for k, v in rec.items() if k in known})
    except TypeError:
        raise RunFolderError(f"{path}: damaged (unexpected fields)") from None
    if not isinstance(st.state, str):
        raise RunFolderError(f"{path}: damaged (state is not a string)")
    st.state, st.reason = stopped_word(st.state), stopped_word(st.reason)
    if st.state in LIVE_STATES:
        now = time.time() if now is None else now
        limit = max(stale_after, STARTING_GRACE) if st.state == "starting" else stale_after
        old = not isinstance(st.heartbeat, (int, float)) or now - st.heartbeat > limit
        if st.host == HOST:
            gone = not pid_alive(st.pid) or (old and lock_is_free(run_dir))
        else:
            gone = old
        if gone and _again:  # the trainer may have written its last status and exited between our two looks
            again = read_json(path, dict)
            if again.get("state") not in LIVE_STATES or again.get("heartbeat") != st.heartbeat:
                return read_status(run_dir, stale_after, now, _again=False)
        st.stale, st.live = gone, not gone
    return st


# ---- the run lock ---------------------------------------------------------------------------------
class RunLock:
    """An OS lock (flock) on run.lock that dies with the process. Holds the trainer's pid as its text."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK
        self.fd: int | None = None

    def acquire(self, tries: int = 5) -> "RunLock":
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise _os_error(self.path, e) from None
        for i in range(tries):  # a reader's probe holds a shared lock for microseconds: try a few times
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if i == tries - 1:
                    try:
                        holder = os.pread(fd, 32, 0).decode().strip() or "?"
                    except (OSError, UnicodeDecodeError):
                        holder = "?"
                    os.close(fd)
                    raise RunFolderError(f"run {self.path.parent.name} is being trained by pid {holder}") from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


# ---- incremental reading --------------------------------------------------------------------------
class Tail:
    """Reads one .jsonl file incrementally: only the bytes appended since the last call.

    A partial last line is kept until its newline arrives. If the file shrinks or is replaced (a resume
    truncates the logs), reading starts again from the top and ``restarted`` is True for that call.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.offset = 0
        self.partial = b""
        self.ino: int | None = None
        self.restarted = False
        self.bad_lines = 0

    def read_new(self) -> list[dict]:
        self.restarted = False
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return []
        if (self.ino is not None and st.st_ino != self.ino) or st.st_size < self.offset:
            self.offset, self.partial, self.restarted = 0, b"", True
        self.ino = st.st_ino
        if st.st_size == self.offset:
            return []
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read(st.st_size - self.offset)
        except FileNotFoundError:
            return []
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        out = []
        for line in lines:
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                self.bad_lines += 1
                continue
            if isinstance(obj, dict):
                out.append(obj)
            else:
                self.bad_lines += 1
        return out


# ---- events <-> records ---------------------------------------------------------------------------
def event_to_record(event) -> dict:
    """The JSON line of an event: Step -> steps.jsonl, Eval -> metrics.jsonl (others: their fields)."""
    from .events import Eval, Step
    if isinstance(event, Step):
        return {"step": event.step, "epoch": round(event.epoch, 4), "loss": event.loss, "lr": event.lr,
                "names_per_s": round(event.names_per_s, 1), "elapsed": round(event.elapsed, 3),
                "eta": round(event.eta, 1), "total_steps": event.total_steps}
    if isinstance(event, Eval):
        m = event.metrics
        rec = {"step": event.step, "epoch": round(event.epoch, 4), "elapsed": round(event.elapsed, 3),
               "train_loss": event.train_loss,
               "val": {k: v for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool)},
               "best": event.best}
        if "confusion" in m:
            rec["confusion"] = m["confusion"]
        if "per_class" in m:
            rec["per_class"] = m["per_class"]
        return rec
    return asdict(event)


def record_to_event(kind: str, rec: dict):
    """The engine's own event from a record: kind "step" (steps.jsonl) or "eval" (metrics.jsonl).
    Raises RunFolderError for a record that lacks a field."""
    from .events import Eval, Step
    try:
        if kind == "step":
            return Step(step=int(rec["step"]), epoch=float(rec["epoch"]), loss=float(rec["loss"]),
                        names_per_s=float(rec.get("names_per_s", 0.0)), elapsed=float(rec.get("elapsed", 0.0)),
                        eta=float(rec.get("eta", 0.0)), total_steps=int(rec.get("total_steps", 0)),
                        lr=rec.get("lr"))
        if kind == "eval":
            metrics = dict(rec.get("val") or {})
            if "confusion" in rec:
                metrics["confusion"] = rec["confusion"]
                cm = rec["confusion"]
                total = [sum(row) for row in cm]
                metrics["confusion_normalized"] = [[round(v / t, 4) if t else 0.0 for v in row]
                                                   for row, t in zip(cm, total)]
            if "per_class" in rec:
                metrics["per_class"] = rec["per_class"]
            return Eval(step=int(rec["step"]), epoch=float(rec["epoch"]), train_loss=float(rec["train_loss"]),
                        metrics=metrics, best=bool(rec.get("best", False)), elapsed=float(rec.get("elapsed", 0.0)))
    except (KeyError, TypeError, ValueError) as e:
        raise RunFolderError(f"a {kind} record lacks a usable field ({_first_line(e)})") from None
    raise ValueError(f"unknown record kind {kind!r}; choose step or eval")


# ---- control --------------------------------------------------------------------------------------
def send_control(run_dir: Path, command: str, resume_hint: str | None = None, name: str | None = None) -> str:
    """Ask a live run to stop, pause or resume (through control.json); returns its state as it was asked (a pause
    of a paused run is sent all the same: a resume sent just before may not have been seen yet). RunFolderError
    if it is not live, naming the run ``name`` (EXP/RUN for an experiment's run) or its folder's name."""
    if command not in COMMANDS:
        raise RunFolderError(f"unknown command {command!r}; choose stop, pause or resume")
    run_dir = Path(run_dir)
    st = read_status(run_dir)
    if not st.live:
        what = "its trainer is gone (stale)" if st.stale else f"it is {st.state}"
        try:
            how = resume_hint or f"`namestudio train --resume {as_arg(run_dir)}`"
            hint = f"; {how} continues it" if resume_dir(run_dir) is not None and st.state != "done" else ""
        except RunFolderError:
            hint = ""
        raise RunFolderError(f"run {name or run_dir.name} is not running: {what}{hint}")
    atomic_write_json(run_dir / CONTROL, {"command": command, "at": time.time()})
    return st.state


def read_control(run_dir: Path) -> dict | None:
    try:
        obj = read_json(Path(run_dir) / CONTROL, dict)
    except RunFolderError:
        return None
    return obj if obj.get("command") in COMMANDS else None


class ControlWatcher:
    """Polls control.json with one os.stat per call; returns a new command once. With ``since`` (a time.time()),
    a command sent at or after it counts even when it was written before the watcher began (a stop sent while a
    launched run was still "starting", importing torch, was acknowledged and then ignored); older ones (an
    earlier attempt's stop) never count. Without it, whatever is there at the start is ignored."""

    def __init__(self, run_dir: Path, ignore_existing: bool = True, since: float | None = None):
        self.path = Path(run_dir) / CONTROL
        self.since = since
        self.seen = self._stamp() if ignore_existing and since is None else None

    def _stamp(self):
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_ino, st.st_size)

    def poll(self) -> str | None:
        stamp = self._stamp()
        if stamp is None or stamp == self.seen:
            return None
        self.seen = stamp
        cmd = read_control(self.path.parent)
        if cmd and self.since is not None and not (isinstance(cmd.get("at"), (int, float)) and cmd["at"] >= self.since):
            return None
        return cmd["command"] if cmd else None


def last_log_lines(run_dir: Path, n: int = 20) -> list[str]:
    """The last ``n`` lines of train.log (the trainer's output), [] if there is none."""
    path = Path(run_dir) / LOG
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            f.seek(max(0, size - 64 * 1024))
            data = f.read()
    except OSError:
        return []
    lines = data.decode("utf-8", errors="replace").replace("\r", "\n").splitlines()
    return [ln for ln in lines if ln.strip()][-n:]


# ---- the resume point -----------------------------------------------------------------------------
def save_resume_point(run_dir: Path, step: int, weights: dict, optim: dict, state: dict,
                      epoch: float | None = None) -> Path:
    """Write last weights, optimizer and counters into a fresh resume-<step>/ folder, fsync it, then switch
    resume.json to it atomically, then delete older resume folders. A kill at any moment leaves one
    consistent resume point: never one file from one step and another from another. resume.json records the
    step (and ``epoch``, when given) too: where the run resumes, read without the tensors (resume_progress)."""
    run_dir = Path(run_dir)
    name, k = f"resume-{step}", 1
    while (run_dir / name).exists():
        k += 1
        name = f"resume-{step}-{k}"
    folder = run_dir / name
    try:
        folder.mkdir()
    except OSError as e:
        raise _os_error(folder, e) from None
    try:
        save_weights(weights, folder / LAST)
        save_torch(optim, folder / OPTIM)
        atomic_write_json(folder / STATE, {**state, "step": step})
        _fsync_dir(folder)
        atomic_write_json(run_dir / RESUME, {"format": FORMAT, "dir": name, "step": step,
                                             **({"epoch": round(epoch, 4)} if epoch is not None else {})})
    except BaseException:      # an error or an interruption (KeyboardInterrupt) at any point: the new folder goes,
        try:                   # unless resume.json already points at it (the switch was made): then it is the point
            switched = read_json(run_dir / RESUME, dict).get("dir") == name
        except RunFolderError:
            switched = False
        if not switched:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    _fsync_dir(run_dir)
    for old in run_dir.glob("resume-*"):
        if old.name != name and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return folder


def nothing_left(run_dir: Path) -> bool:
    """Whether a run is done with no step left to train at its own settings: status done and its resume point at
    (or past) its total steps. An early-stopped run is done but has steps left: `train --resume` trains on."""
    try:
        st = read_status(run_dir)
        point = resume_progress(run_dir, st)
    except RunFolderError:
        return False
    return st.state == "done" and point is not None and st.total_steps > 0 and point[0] >= st.total_steps


def resume_progress(run_dir: Path, status: RunStatus | None = None) -> tuple[int, float | None] | None:
    """(step, epoch) of the run's resume point: where `train --resume` continues it. None when it has none (or
    an unreadable one). Cheap, for listings: resume.json's step and epoch (its step and the state.json of a
    format-1 run too), never the tensors. A point saved before resume.json recorded its epoch gets it from the
    run's steps per epoch (``status``'s step and epoch, or its total steps over its epochs); None if neither tells."""
    run_dir = Path(run_dir)
    try:
        folder = resume_dir(run_dir)
        if folder is None:
            return None
        where = run_dir / RESUME if folder != run_dir else folder / STATE
        rec = _read_once(where, "json", lambda: read_json(where, dict))
        step, epoch = rec.get("step"), rec.get("epoch")
        if not isinstance(step, int) or isinstance(step, bool):      # a resume.json that lacks it: its state.json
            state = folder / STATE
            step = _read_once(state, "json", lambda: read_json(state, dict)).get("step")
    except RunFolderError:
        return None
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        return None
    if not isinstance(epoch, (int, float)) or isinstance(epoch, bool):
        spe = _steps_per_epoch(run_dir, status)
        epoch = round(step / spe, 4) if spe else (0.0 if step == 0 else None)
    return step, float(epoch) if epoch is not None else None


def _steps_per_epoch(run_dir: Path, status: RunStatus | None) -> int | None:
    """A run's steps per epoch as its status tells (its step over its epoch, an epoch rounded to 4 places), or its
    config (total steps over epochs, when no --max-steps cut them); None when neither does."""
    if status is None:
        try:
            status = read_status(run_dir)
        except RunFolderError:
            return None
    if status.step > 0 and isinstance(status.epoch, (int, float)) and status.epoch > 0:
        return max(1, round(status.step / status.epoch))
    try:
        hp = read_config(run_dir)["train"] if (Path(run_dir) / CONFIG).is_file() else {}
    except RunFolderError:
        return None
    epochs, cap, total = hp.get("epochs"), hp.get("max_steps"), status.total_steps
    if isinstance(epochs, int) and epochs > 0 and total > 0 and total % epochs == 0 and not (
            isinstance(cap, int) and cap and total >= cap):
        return total // epochs
    return None


def shown_progress(run_dir: Path, status: RunStatus) -> tuple[int, float]:
    """The (step, epoch) every face shows for a run: where `train --resume` continues it for a run whose trainer
    is gone (stale) or that was stopped, when it has a resume point; the status's otherwise. A killed run's status
    is its last heartbeat's (every ~2 s), which may be behind its last resume point (killed just after it was
    saved) or past it (the steps trained since are lost): the resume point is where it will go on from."""
    if status.stale or status.state == STOPPED:
        point = resume_progress(run_dir, status)
        if point is not None:
            return point[0], point[1] if point[1] is not None else status.epoch
    return status.step, status.epoch


def resume_dir(run_dir: Path) -> Path | None:
    """The folder of the run's resume point, or None. Format-1 runs keep it in the run folder itself."""
    run_dir = Path(run_dir)
    if (run_dir / RESUME).is_file():
        ptr = read_json(run_dir / RESUME, dict)
        name = ptr.get("dir")
        if not isinstance(name, str) or "/" in name or not name.startswith("resume-"):
            raise RunFolderError(f"{run_dir / RESUME}: damaged (no resume folder named)")
        folder = run_dir / name
        if not (folder / STATE).is_file():
            raise RunFolderError(f"{folder / STATE}: missing (the resume point is incomplete)")
        return folder
    if (run_dir / STATE).is_file() and (run_dir / LAST).is_file():
        return run_dir
    return None


def load_resume_point(run_dir: Path) -> tuple[dict, dict, dict]:
    """(weights, optimizer state, counters) of the resume point; RunFolderError if there is none."""
    folder = resume_dir(run_dir)
    if folder is None:
        raise RunFolderError(f"run {Path(run_dir).name} has no resume point yet (it was stopped before its first save)")
    state = read_json(folder / STATE, dict)
    if not isinstance(state.get("step"), int):
        raise RunFolderError(f"{folder / STATE}: damaged (no step)")
    return load_weights(folder / LAST), load_torch(folder / OPTIM), state


def clean_for_resume(run_dir: Path, step: int, keep_since: float | None = None) -> None:
    """Before a resumed run writes: cut steps.jsonl and metrics.jsonl back to the resume step (atomic
    rewrite; a kill after an append would otherwise duplicate steps), delete orphan .*.tmp files and
    resume folders that resume.json does not point at, and drop a stale control command (one sent before
    ``keep_since``, when given: a stop sent to this attempt while it started is kept for its watcher)."""
    run_dir = Path(run_dir)
    for name in (STEPS, METRICS):
        path = run_dir / name
        if path.is_file():
            rows = read_jsonl(path)
            kept = [r for r in rows if isinstance(r.get("step"), (int, float)) and r["step"] <= step]
            if len(kept) != len(rows) or not path.read_bytes().endswith(b"\n") and path.stat().st_size:
                rewrite_jsonl(path, kept)
    current = resume_dir(run_dir)
    for p in list(run_dir.glob(".*.tmp")) + list(run_dir.glob("resume-*/.*.tmp")):
        try:
            p.unlink()
        except OSError:
            pass
    for old in run_dir.glob("resume-*"):
        if old.is_dir() and old != current:
            shutil.rmtree(old, ignore_errors=True)
    cmd = read_control(run_dir)                # an earlier attempt's command goes; one sent to this attempt stays
    if keep_since is None or not (cmd and isinstance(cmd.get("at"), (int, float)) and cmd["at"] >= keep_since):
        try:
            (run_dir / CONTROL).unlink()
        except FileNotFoundError:
            pass


# ---- listing --------------------------------------------------------------------------------------
_READS: dict[tuple[str, str], tuple[tuple, object]] = {}   # (file, what) -> (its version, what was read)
_READS_MAX = 8192


def _read_once(path: Path, what: str, read):
    """``read()`` once per version of ``path`` (its inode, size and modification time): the TUI lists every run
    every 2 s, and parsing each run's metrics.jsonl again was most of that listing's time (48 ms for 60 runs).
    A file written in place of another (atomic writes rename) or appended to is a new version. What raises is
    never kept, so a damaged file reads as damaged every time. The values are shared: callers must not change
    them."""
    try:
        st = os.stat(path)
    except OSError:
        return read()
    version = (st.st_ino, st.st_size, st.st_mtime_ns)
    key = (str(path), what)
    kept = _READS.get(key)
    if kept is not None and kept[0] == version:
        return kept[1]
    value = read()
    if len(_READS) >= _READS_MAX:
        _READS.clear()
    _READS[key] = (version, value)
    return value


def _best_evals(path: Path, key: str) -> tuple[float | None, int | None]:
    """(the best validation ``key`` of metrics.jsonl, the step of its last evaluation) for the listing."""
    evals = read_jsonl(path, strict=True)
    vals = []
    for e in evals:
        val = e.get("val", {})
        if not isinstance(val, dict):
            raise RunFolderError(f"{path}: damaged (val is not an object at step {e.get('step')})")
        if isinstance(val.get(key), (int, float)):
            vals.append(val[key])
    best = (max(vals) if key == "accuracy" else min(vals)) if vals else None
    last = evals[-1].get("step") if evals and isinstance(evals[-1].get("step"), int) else None
    return best, last


def _summary(d: Path) -> dict:
    row: dict = {"run": d.name, "path": str(d)}
    status = read_status(d)
    cfg = _read_once(d / CONFIG, "json", lambda: read_json(d / CONFIG, dict)) if (d / CONFIG).is_file() else {}
    hp = cfg.get("train", {})
    if not isinstance(hp, dict):
        raise RunFolderError(f"{d / CONFIG}: damaged (train is not an object)")
    row.update(task=hp.get("task"), model=hp.get("model"), params=cfg.get("n_params"), created=cfg.get("created"),
               data=data_source(cfg), ascii_fold=bool(hp.get("ascii_fold")), hidden=hp.get("hidden"), layers=hp.get("layers"), epochs=hp.get("epochs"),
               members=hp.get("members", 1))
    state = "stale" if status.stale else status.state
    test = _read_once(d / TEST, "json", lambda: read_test(d))
    ended = {} if status.live else test   # a live run resumed after an end: that end's record is not its own now
    reason = status.reason or ended.get("reason")
    step, epoch = shown_progress(d, status)    # a stale or stopped run's: where `train --resume` continues it
    row.update(state=state, reason=reason, step=step, total_steps=status.total_steps, epoch=epoch,
               train_seconds=ended.get("train_seconds"), status=reason or state)
    key = "accuracy" if hp.get("task") == "classify" else "nll"
    best, last_eval = _read_once(d / METRICS, "best " + key, lambda: _best_evals(d / METRICS, key))
    if state == "done" or (not status.live and (best is not None or ended.get("test"))):
        # a finished run's weights, or an ended run's that was evaluated or tested, are there and whole (else:
        # damaged; a stopped one without them read as healthy, and `classify` said it was never evaluated)
        _read_once(d / WEIGHTS, "header", lambda: read_safetensors_header(d / WEIGHTS))
    if best is not None:
        row["best_val_" + key] = best
    blended = blend_val(kept_blend(d), key)
    if blended is not None:    # the run keeps the network with its n-gram LM: its validation figure is the blend's
        row["best_val_" + key] = blended
    if not row["step"] and last_eval is not None:
        row["step"] = last_eval
    for k in ("accuracy", "macro_f1", "balanced_accuracy", "nll", "perplexity"):
        if k in ended.get("test", {}):
            row["test_" + k] = ended["test"][k]
    if isinstance(ended.get("untested"), str):     # stopped before any training, or at once: no test figures
        row["untested"] = ended["untested"]
    row["weights"] = (d / WEIGHTS).is_file()
    try:
        row["resumable"] = not status.live and resume_dir(d) is not None
    except RunFolderError:
        row["resumable"] = False
    return row


def blend_val(blend, key: str) -> float | None:
    """The validation accuracy (classifiers) or NLL (generators) of the blend that test_metrics.json records as
    chosen (engine/blend.py); None when there is none (the network alone kept, an older run, a damaged entry)."""
    if not isinstance(blend, dict):
        return None
    after = blend.get("val_after")
    val = (after.get("accuracy") if isinstance(after, dict) else None) if key == "accuracy" else blend.get("val_nll_after")
    chosen = blend.get("weight") if key == "accuracy" else blend.get("lm_weight")
    if isinstance(chosen, list):   # a generator's mix, a pair of weights by letter position (engine/blend.py)
        chosen = any(isinstance(w, (int, float)) and w for w in chosen)
    return val if isinstance(val, (int, float)) and isinstance(chosen, (int, float)) and chosen else None


def blend_chosen(data: bytes) -> dict | None:
    """What an lm.safetensors file (its bytes) was chosen as: engine/blend.py's report (order, weights, validation
    figures before and after), written in the file's header with it, in one atomic step (``blend.save_blend``).
    None for a file saved before it carried one (test_metrics.json's record describes it) or a damaged entry."""
    try:
        chosen = json.loads(weights_metadata(data).get("chosen", "null"))
    except ValueError:
        return None
    return chosen if isinstance(chosen, dict) else None


def _lm_header(path: Path) -> bytes:
    """The first bytes of a safetensors file, its header whole (a small file: all of it)."""
    with open(path, "rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else 0
        return head + f.read(min(max(n, 0), 16 << 20))


def kept_blend(run_dir: Path) -> dict | None:
    """The n-gram blend (or mix) the run's model uses, as chosen (``blend_chosen``), or None: the model is the
    network alone. The rule is load_run's (engine/blend.load_blend): lm.safetensors is used when it is there and
    was chosen for the weights in model.safetensors (its header names their digest; a file that names none, saved
    before it did, goes with any). So a run stopped or killed after its blend was saved and before its test was
    recorded is described with the blend it uses, and a blend chosen for earlier weights, or a file gone, with none.
    A file saved before it carried what was chosen: test_metrics.json's record of it. Cheap for listings: each
    file is read once per version."""
    run_dir = Path(run_dir)
    path = run_dir / LM
    try:
        head = _read_once(path, "header bytes", lambda: _lm_header(path))
        chosen_for = weights_metadata(head).get("weights")
        if chosen_for is not None and chosen_for != _read_once(
                run_dir / WEIGHTS, "digest", lambda: weights_digest((run_dir / WEIGHTS).read_bytes())):
            return None
    except OSError:                 # no blend file (or no weights to use it with): the network alone
        return None
    chosen = blend_chosen(head)
    if chosen is None:
        chosen = (_read_once(run_dir / TEST, "json", lambda: read_test(run_dir)).get("test") or {}).get("lm_blend")
    return chosen if isinstance(chosen, dict) else None


def kept_val(run_dir: Path, key: str) -> float | None:
    """The validation ``key`` (accuracy, nll) of the model a run keeps: its n-gram blend's when the LM takes part
    (``kept_blend``), else its best evaluation's; what the listing gives as best_val_<key>. None when it has
    neither."""
    run_dir = Path(run_dir)
    blended = blend_val(kept_blend(run_dir), key)
    if blended is not None:
        return blended
    return _best_evals(run_dir / METRICS, key)[0] if (run_dir / METRICS).is_file() else None


def list_runs(checkpoints: str | Path = "checkpoints") -> list[dict]:
    """One summary per run folder, newest first. Never raises for one damaged run: its row has ``error``,
    one line naming the file, and every other run lists normally."""
    root = Path(checkpoints)
    out = []
    try:
        dirs = sorted((d for d in root.iterdir() if _is_run(d)), reverse=True) if root.is_dir() else []
    except OSError:
        return out
    for d in dirs:
        try:
            out.append(_summary(d))
        except RunFolderError as e:
            out.append({"run": d.name, "path": str(d), "state": "damaged", "status": "damaged",
                        "resumable": False, "error": str(e)})
        except Exception as e:  # anything else unexpected in one folder still must not hide the others
            out.append({"run": d.name, "path": str(d), "state": "damaged", "status": "damaged",
                        "resumable": False, "error": f"{d}: unreadable ({type(e).__name__}: {_first_line(e)})"})
    return out


# ---- the writer: an event sink --------------------------------------------------------------------
class RunWriter:
    """Writes the run folder from the trainer's events: status.json (and a heartbeat thread rewriting it
    every ``HEARTBEAT_EVERY`` s), steps.jsonl, metrics.jsonl and test_metrics.json."""

    def __init__(self, run_dir: Path, heartbeat_every: float = HEARTBEAT_EVERY):
        self.run_dir = Path(run_dir)
        self.status = RunStatus(state="starting", pid=os.getpid(), host=HOST, started=time.time())
        self.every = heartbeat_every
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: str | None = None  # the heartbeat's last write error, if any
        self._steps_per_epoch: int | None = None   # from Started: the end's epoch is that of its last step

    def write(self, **changes) -> None:
        """Change status fields and rewrite status.json now."""
        with self._lock:
            for k, v in changes.items():
                setattr(self.status, k, v)
            self.status.heartbeat = time.time()
            write_status(self.run_dir, self.status)

    def start_heartbeat(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)
            self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.write()
                self.error = None
            except RunFolderError as e:  # a full disk must not kill the run from this thread
                self.error = str(e)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __call__(self, event) -> None:
        from .events import Done, Eval, Failed, Started, Status, Step
        if isinstance(event, Step):
            append_jsonl(self.run_dir / STEPS, event_to_record(event))
            with self._lock:
                self.status.step, self.status.epoch = event.step, round(event.epoch, 4)
                self.status.total_steps = event.total_steps
        elif isinstance(event, Eval):
            append_jsonl(self.run_dir / METRICS, event_to_record(event))
            with self._lock:
                self.status.step, self.status.epoch = event.step, round(event.epoch, 4)
        elif isinstance(event, Started):
            self._steps_per_epoch = max(1, event.steps_per_epoch)
            self.write(state="running", step=event.start_step, total_steps=event.total_steps,
                       epoch=round(event.start_step / max(1, event.steps_per_epoch), 4), device=event.device,
                       note=event.note)
            self.start_heartbeat()
        elif isinstance(event, Status):
            self.write(state=event.state)
        elif isinstance(event, Done):
            self.close()
            atomic_write_json(self.run_dir / TEST, {
                "test": event.test_metrics, "train_seconds": event.train_seconds, "reason": event.reason,
                "best_step": event.best_step, "steps": event.steps, "device": event.device,
                **({"untested": event.untested} if event.untested else {})})
            spe = self._steps_per_epoch     # the epoch of the last step, not of the last Step event (every log_every)
            self.write(state=STOPPED if event.reason == STOPPED else "done", reason=event.reason, step=event.steps,
                       **({"epoch": round(event.steps / spe, 4)} if spe else {}))
        elif isinstance(event, Failed):
            self.close()
            self.write(state="failed", error=event.message)
