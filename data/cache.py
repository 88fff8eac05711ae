"""An on-disk cache of cleaned datasets and of their splits, so a second run over a big source starts at once.

An entry is keyed by a SHA-256 over the source's content (never its path or mtime), the options that change
the result (ASCII folding, the source's own options, the label a lone .txt gets), the split seed and
fractions for a split, the cache FORMAT, and a digest of the data code itself: editing the cleaning or the
split rules invalidates every entry without anyone remembering to bump a version.

Entries are .npz files written without pickle and read with ``allow_pickle=False``: names and labels as one
UTF-8 blob each (joined by "\\n", which cleaning never leaves in a name), pairs as int32 arrays, the report as
JSON bytes. They are written to a temporary file and renamed into place (atomic). An entry that fails to
read or to validate is deleted and rebuilt; a cache that cannot be written is skipped silently (it is only
a cache). The folder is the user cache dir (platformdirs), or NAMESTUDIO_CACHE_DIR; NAMESTUDIO_CACHE_DIR=off
turns the cache off. Sources under MIN_BYTES are not cached (they load in milliseconds); beyond MAX_BYTES
the least recently used entries are removed.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
import unicodedata
from functools import lru_cache
from pathlib import Path

import numpy as np
import platformdirs

from .fsmode import set_file_mode
from .table import PairTable

FORMAT = 1
MIN_BYTES = 256 * 1024
MAX_BYTES = 2 * 1024 ** 3
ENV = "NAMESTUDIO_CACHE_DIR"
_CODE = ("cache.py", "clean.py", "sources.py", "split.py", "table.py", "names_dataset.py")
_TMP = ".tmp-"


def cache_dir() -> Path | None:
    """Where entries live; None when the cache is turned off (NAMESTUDIO_CACHE_DIR=off)."""
    env = os.environ.get(ENV, "").strip()
    if env.lower() == "off":
        return None
    if env:
        return Path(env).expanduser()
    return platformdirs.user_cache_path("namestudio") / "datasets"


@lru_cache(maxsize=1)
def code_digest() -> str:
    """The data code and the Unicode tables cleaning depends on."""
    h = hashlib.sha256(f"{FORMAT}|{unicodedata.unidata_version}|".encode())
    try:
        from importlib.metadata import version
        h.update(version("anyascii").encode())
    except Exception:                                  # not installed as a distribution: the code still counts
        pass
    here = Path(__file__).parent
    for name in _CODE:
        try:
            h.update(name.encode() + b"\0" + (here / name).read_bytes())
        except OSError:
            h.update(name.encode() + b"\0-")
    return h.hexdigest()


def key_of(**parts) -> str:
    """The entry key for these parts (any JSON-able values)."""
    text = json.dumps({"format": FORMAT, "code": code_digest(), **parts}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


# ---- entries ---------------------------------------------------------------------------------
def _path(key: str, kind: str) -> Path | None:
    folder = cache_dir()
    return None if folder is None else folder / f"{key}.{kind}.npz"


def _blob(strings: list[str]) -> np.ndarray:
    return np.frombuffer("\n".join(strings).encode("utf-8"), dtype=np.uint8)


def _strings(blob: np.ndarray, n: int) -> list[str]:
    out = blob.tobytes().decode("utf-8").split("\n") if n else []
    if len(out) != n:
        raise ValueError("string count")
    return out


def _meta(z, key: str) -> dict:
    meta = json.loads(z["meta"].tobytes().decode("utf-8"))
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("key") != key:
        raise ValueError("not this entry")
    return meta


def _write(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Atomically (temporary file + rename); any failure leaves nothing and is ignored."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_TMP, suffix=".npz", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            set_file_mode(f.fileno())        # mkstemp's 0600 would keep a shared cache folder's entries private
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        _trim(path.parent)
    except OSError:
        pass
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _read(path: Path | None, check):
    """check(npz) -> value; None (and the entry removed) when missing, unreadable or invalid."""
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            value = check(z)
    except Exception:                  # a damaged entry of any kind: drop it, the caller rebuilds
        try:
            path.unlink()
        except OSError:
            pass
        return None
    try:
        os.utime(path)                 # least recently used goes first
    except OSError:
        pass
    return value


_ENTRY = re.compile(r"[0-9a-f]{64}\.[a-z]+\.npz")


def _trim(folder: Path) -> None:
    """Least recently used entries out until the folder is under MAX_BYTES. Only this cache's own files are
    counted or removed (``<key>.<kind>.npz`` and its writers' ``.tmp-*.npz``): NAMESTUDIO_CACHE_DIR may name a
    folder that holds other .npz files, and those were deleted once the total passed the cap."""
    entries, total, now = [], 0, time.time()
    for p in folder.iterdir():
        try:
            st = p.stat()
        except OSError:
            continue
        if p.name.startswith(_TMP) and p.suffix == ".npz":
            if now - st.st_mtime > 3600:           # left by a killed writer
                p.unlink(missing_ok=True)
            continue
        if _ENTRY.fullmatch(p.name):
            entries.append((st.st_mtime, st.st_size, p))
            total += st.st_size
    for _, size, p in sorted(entries):
        if total <= MAX_BYTES:
            break
        p.unlink(missing_ok=True)
        total -= size


def save_dataset(key: str, table: PairTable, report: dict, task_hint: str, nameless: list[str] = ()) -> None:
    path = _path(key, "data")
    if path is None:
        return
    meta = {"format": FORMAT, "key": key, "n_names": len(table.names), "n_labels": len(table.labels),
            "n_pairs": len(table), "report": report, "task_hint": task_hint, "nameless_labels": list(nameless)}
    _write(path, {"meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
                  "names": _blob(table.names), "labels": _blob(table.labels),
                  "name_idx": table.name_idx.astype(np.int32), "label_idx": table.label_idx.astype(np.int32)})


def load_dataset(key: str) -> tuple[PairTable, dict, str, list[str]] | None:
    """(table, report, task_hint, the labels dropped with no name left) of a cached dataset, or None. An entry
    written before those labels were stored holds none: it is rebuilt if it dropped any, so that they are named."""
    def check(z):
        meta = _meta(z, key)
        n_names, n_labels, n_pairs = int(meta["n_names"]), int(meta["n_labels"]), int(meta["n_pairs"])
        names, labels = _strings(z["names"], n_names), _strings(z["labels"], n_labels)
        name_idx, label_idx = z["name_idx"], z["label_idx"]
        for a in (name_idx, label_idx):
            if a.dtype != np.int32 or a.shape != (n_pairs,):
                raise ValueError("pair arrays")
        if n_pairs:
            if min(name_idx.min(), label_idx.min()) < 0 or name_idx.max() >= n_names or label_idx.max() >= n_labels:
                raise ValueError("index out of range")
            combined = name_idx.astype(np.int64) * n_labels + label_idx
            if np.any(np.diff(combined) <= 0):
                raise ValueError("pairs not sorted and unique")
        report = meta["report"]
        if not isinstance(report, dict) or not all(isinstance(v, int) for v in report.values()):
            raise ValueError("report")
        # absent from an entry written before they were stored: fine if it dropped none, else rebuilt to name them
        nameless = meta.get("nameless_labels", None if report.get("labels_dropped") else [])
        if not isinstance(nameless, list) or not all(isinstance(lab, str) for lab in nameless) \
                or len(nameless) != report.get("labels_dropped", 0):
            raise ValueError("nameless labels")
        return PairTable(names, labels, name_idx, label_idx), report, str(meta["task_hint"]), nameless
    return _read(_path(key, "data"), check)


def save_split(key: str, part: np.ndarray) -> None:
    path = _path(key, "split")
    if path is not None:
        meta = {"format": FORMAT, "key": key, "n_names": len(part)}
        _write(path, {"meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
                      "part": part.astype(np.int8)})


def load_split(key: str, n_names: int) -> np.ndarray | None:
    """The part (0 train, 1 val, 2 test) of each distinct name, or None."""
    def check(z):
        _meta(z, key)
        part = z["part"]
        if part.dtype != np.int8 or part.shape != (n_names,) or (n_names and (part.min() < 0 or part.max() > 2)):
            raise ValueError("split array")
        return part
    return _read(_path(key, "split"), check)
