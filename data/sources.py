"""Dataset sources: built-in, downloaded PyTorch names, folder, CSV, one list."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from . import builtin
from .clean import clean_rows
from .download import default_source, pytorch_names_available, pytorch_names_dir
from .errors import DataError

SOURCE_HELP = "use 'builtin', 'pytorch-names', a folder of <Label>.txt, a .csv (name,label) or a .txt list"


@dataclass
class Dataset:
    source: str
    pairs: list[tuple[str, str]]
    labels: list[str]
    report: dict[str, int]
    task_hint: str


def load_dataset(src: str | None = None, ascii_fold: bool = False) -> Dataset:
    """Load, clean and deduplicate a dataset (see SOURCE_HELP for src)."""
    src = default_source() if src is None else str(src)
    extra: dict[str, int] = {}
    if src == "builtin":
        rows, extra["skipped_multiword"] = builtin.builtin_rows()
        source = "builtin"
    elif src == "pytorch-names":
        if not pytorch_names_available():
            raise DataError(
                f"the pytorch-names dataset is not downloaded (looked in {pytorch_names_dir()}); "
                "run `namestudio data download`"
            )
        rows = read_folder(pytorch_names_dir())
        source = "pytorch-names"
    else:
        path = Path(src).expanduser().absolute()
        rows = read_path(path)
        source = str(path)
    pairs, report = clean_rows(rows, ascii_fold)
    if src == "builtin":
        pairs, extra["labels_dropped"] = builtin.drop_small_labels(pairs)
        report["kept"] = len(pairs)
    report.update(extra)
    if not pairs:
        raise DataError(f"{source}: no names left after cleaning ({report['lines_read']} lines read)")
    labels = sorted({label for _, label in pairs})
    task_hint = "generate" if len(labels) == 1 else "classify"
    return Dataset(source, pairs, labels, report, task_hint)


def read_path(path: Path) -> list[tuple[str, str]]:
    if path.is_dir():
        return read_folder(path)
    if not path.exists():
        raise DataError(f"dataset source not found: {path} ({SOURCE_HELP})")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return read_csv(path)
    if suffix == ".txt":
        return [(line, path.stem) for line in read_text(path).splitlines()]
    raise DataError(f"{path}: unsupported file type {suffix or '(none)'} ({SOURCE_HELP})")


def read_text(path: Path) -> str:
    """The file as text; binary or non-UTF-8 content is a DataError."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if b"\x00" in data[:8192]:
        raise DataError(f"{path}: looks like a binary file, not UTF-8 text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); re-save it as UTF-8"
        ) from None


def read_folder(folder: Path) -> list[tuple[str, str]]:
    """A folder of <Label>.txt files, one name per line; label = file stem."""
    files = sorted(p for p in folder.glob("*.txt") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise DataError(f"{folder}: no <Label>.txt files in this folder")
    return [(line, f.stem) for f in files for line in read_text(f).splitlines()]


def read_csv(path: Path) -> list[tuple[str, str]]:
    """A CSV file with a header row holding 'name' and 'label' columns."""
    text = read_text(path)
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = [h.strip().lower() for h in next(reader, [])]
        if "name" not in header or "label" not in header:
            found = ", ".join(h for h in header if h) or "nothing"
            raise DataError(f"{path}: CSV needs header columns 'name' and 'label' (found: {found})")
        i_name, i_label = header.index("name"), header.index("label")
        width = max(i_name, i_label)
        return [
            (row[i_name], row[i_label]) if len(row) > width else ("", "")
            for row in reader
        ]
    except csv.Error as exc:
        raise DataError(f"{path}: malformed CSV ({exc})") from None
