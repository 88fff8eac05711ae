"""Export a run's logged curves as TensorBoard event files (`namestudio export RUN --tensorboard DIR`).

With the `tensorboard` package installed (the optional extra `namestudio[tensorboard]`), torch's own
``torch.utils.tensorboard.SummaryWriter`` writes the file. Without it, this module writes the same format
itself; it is small: a TFRecord stream (length, masked CRC-32C, payload, masked CRC-32C) of ``Event``
protocol buffers holding scalar summaries, encoded by hand below. Either way each run gets its own folder,
``DIR/<run-id>/``, so several runs exported to one DIR show side by side in TensorBoard.

Scalars: train/loss, train/lr, train/names_per_s (every logged step), eval/train_loss and val/<metric> (every
evaluation), at the run's step, with wall time = the run's start + its training seconds.
"""
from __future__ import annotations

import os
import socket
import struct
import time
from pathlib import Path

from namestudio.data.errors import NamestudioError

from . import experiment as ex
from . import runfolder as rf


class ExportError(NamestudioError):
    """An export that cannot be written; one line."""


# ---- CRC-32C (Castagnoli), as TFRecord frames use -------------------------------------------------
def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord(payload: bytes) -> bytes:
    head = struct.pack("<Q", len(payload))
    return head + struct.pack("<I", masked_crc(head)) + payload + struct.pack("<I", masked_crc(payload))


# ---- protocol buffers, by hand: just what Event{wall_time, step, file_version | summary} needs ----------
def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _bytes_field(number: int, data: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def event(wall_time: float, step: int = 0, *, file_version: str | None = None,
          scalars: list[tuple[str, float]] | None = None) -> bytes:
    """One serialized tensorflow.Event: wall_time (1, double), step (2, int64), file_version (3) or summary (5)
    of Summary.Value{tag (1), simple_value (2, float)}."""
    msg = _varint(1 << 3 | 1) + struct.pack("<d", wall_time)
    if step:
        msg += _varint(2 << 3 | 0) + _varint(int(step))
    if file_version is not None:
        msg += _bytes_field(3, file_version.encode())
    if scalars:
        summary = b"".join(_bytes_field(1, _bytes_field(1, tag.encode()) + _varint(2 << 3 | 5) +
                                        struct.pack("<f", float(value))) for tag, value in scalars)
        msg += _bytes_field(5, summary)
    return msg


# ---- the run's points ------------------------------------------------------------------------------
def scalar_points(run_dir: Path) -> list[tuple[int, float, str, float]]:
    """(step, wall time, tag, value) of every logged point of a run, in step order."""
    run_dir = Path(run_dir)
    try:
        started = rf.read_status(run_dir).started
    except rf.RunFolderError:
        started = None
    if not isinstance(started, (int, float)):
        try:
            started = (run_dir / rf.CONFIG).stat().st_mtime
        except OSError:
            started = time.time()
    c = ex.curves(run_dir)
    pts = []
    for s in c["steps"]:
        t = started + float(s.get("elapsed") or 0.0)
        for k in ("loss", "lr", "names_per_s"):
            if isinstance(s.get(k), (int, float)):
                pts.append((int(s["step"]), t, f"train/{k}", float(s[k])))
    for e in c["evals"]:
        t = started + float(e.get("elapsed") or 0.0)
        for k, v in e.items():
            if k in ("step", "epoch", "elapsed", "best") or not isinstance(v, (int, float)) or isinstance(v, bool):
                continue
            tag = "eval/train_loss" if k == "train_loss" else "val/" + k[4:]
            pts.append((int(e["step"]), t, tag, float(v)))
    return sorted(pts, key=lambda p: (p[0], p[1]))


def _have_tensorboard() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def export_tensorboard(run_dir: str | Path, out: str | Path, use_tensorboard: bool | None = None,
                       name: str | None = None) -> Path:
    """Write ``out/<name>/events.out.tfevents.*`` for one run (an earlier export there is replaced); ``name``
    defaults to the run id (an experiment's run: ``EXP/RUN``, so that two experiments' ``rnn`` stay apart).
    Returns the event file. ``use_tensorboard``: None = torch's writer when the package is there."""
    run_dir = Path(run_dir)
    folder = Path(out) / (name or run_dir.name)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        earlier = set(folder.glob("events.out.tfevents.*"))   # replaced once the new file is written whole
    except OSError as e:
        raise ExportError(f"could not write {folder}: {e.strerror or e}") from None
    pts = scalar_points(run_dir)
    if use_tensorboard is None:
        use_tensorboard = _have_tensorboard()
    if use_tensorboard:
        from torch.utils.tensorboard import SummaryWriter
        w = SummaryWriter(log_dir=str(folder))
        for step, t, tag, value in pts:
            w.add_scalar(tag, value, step, walltime=t)
        w.close()
        files = set(folder.glob("events.out.tfevents.*"))
        path = max((files - earlier) or files, key=lambda f: f.stat().st_mtime)
    else:
        t0 = pts[0][1] if pts else time.time()
        data = bytearray(tfrecord(event(t0, file_version="brain.Event:2")))
        for step, t, tag, value in pts:
            data += tfrecord(event(t, step, scalars=[(tag, value)]))
        path = folder / f"events.out.tfevents.{int(t0)}.{socket.gethostname()}.{os.getpid()}.0"
        rf.atomic_write_bytes(path, bytes(data))
    for old in earlier - {path}:
        old.unlink(missing_ok=True)
    return path


def read_events(path: str | Path) -> list[dict]:
    """Read back an event file (TFRecord frames, CRCs checked): [{"wall_time", "step", "file_version"|"scalars"}].
    Enough of the format for the tests and for a quick look without TensorBoard."""
    data = Path(path).read_bytes()
    out, i = [], 0
    while i < len(data):
        head = data[i:i + 8]
        if len(head) < 8 or struct.unpack("<I", data[i + 8:i + 12])[0] != masked_crc(head):
            raise ExportError(f"{path}: bad record header at byte {i}")
        n = struct.unpack("<Q", head)[0]
        payload = data[i + 12:i + 12 + n]
        if len(payload) < n or struct.unpack("<I", data[i + 12 + n:i + 16 + n])[0] != masked_crc(payload):
            raise ExportError(f"{path}: bad record at byte {i}")
        out.append(_parse_event(payload))
        i += 16 + n
    return out


def _read_varint(b: bytes, i: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return n, i


def _fields(b: bytes):
    i = 0
    while i < len(b):
        key, i = _read_varint(b, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _read_varint(b, i)
        elif wire == 1:
            v, i = b[i:i + 8], i + 8
        elif wire == 5:
            v, i = b[i:i + 4], i + 4
        elif wire == 2:
            n, i = _read_varint(b, i)
            v, i = b[i:i + n], i + n
        else:
            raise ExportError(f"unsupported wire type {wire}")
        yield num, v


def _parse_event(b: bytes) -> dict:
    ev: dict = {"step": 0}
    for num, v in _fields(b):
        if num == 1:
            ev["wall_time"] = struct.unpack("<d", v)[0]
        elif num == 2:
            ev["step"] = v
        elif num == 3:
            ev["file_version"] = v.decode()
        elif num == 5:
            scalars = []
            for n2, val in _fields(v):
                if n2 == 1:
                    tag, x = None, None
                    for n3, f in _fields(val):
                        if n3 == 1:
                            tag = f.decode()
                        elif n3 == 2:
                            x = struct.unpack("<f", f)[0]
                    scalars.append((tag, x))
            ev["scalars"] = scalars
    return ev
