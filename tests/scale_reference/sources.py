"""Dataset sources: built-in, downloaded PyTorch names, folder, CSV, one list."""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from namestudio.data import builtin
from .clean import clean_rows
from namestudio.data.download import default_source, pytorch_names_available, pytorch_names_dir
from namestudio.data.errors import DataError

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
    if src.lower().endswith(".csv") or "dropped_malformed" in report:
        report = _malformed_after_empty(report)     # CSV: the one source whose lines can be malformed
    if src == "builtin":
        pairs, extra["labels_dropped"] = builtin.drop_small_labels(pairs)
        report["kept"] = len(pairs)
    report.update(extra)
    if not pairs:
        raise DataError(f"{source}: no names left after cleaning ({report['lines_read']} lines read)")
    labels = sorted({label for _, label in pairs})
    task_hint = "generate" if len(labels) == 1 else "classify"
    return Dataset(source, pairs, labels, report, task_hint)


def _malformed_after_empty(report: dict[str, int]) -> dict[str, int]:
    """The report with a "dropped_malformed" count (0 if none), listed after "dropped_empty"."""
    malformed = report.pop("dropped_malformed", 0)
    out: dict[str, int] = {}
    for key, value in report.items():
        out[key] = value
        if key == "dropped_empty":
            out["dropped_malformed"] = malformed
    out.setdefault("dropped_malformed", malformed)
    return out


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


BOMS = (  # longest first: the UTF-32-LE mark starts with the UTF-16-LE one
    (b"\xff\xfe\x00\x00", "utf-32-le", "UTF-32"),
    (b"\x00\x00\xfe\xff", "utf-32-be", "UTF-32"),
    (b"\xef\xbb\xbf", "utf-8", "UTF-8"),
    (b"\xff\xfe", "utf-16-le", "UTF-16"),
    (b"\xfe\xff", "utf-16-be", "UTF-16"),
)
SNIFF_BYTES = 8192


def _line_of(data: bytes | str, offset: int) -> int:
    newline = b"\n" if isinstance(data, bytes) else "\n"
    return data.count(newline, 0, offset) + 1


def _looks_like_bomless_utf16(head: bytes) -> bool:
    """Mostly-ASCII UTF-16 without a BOM: the NULs sit at every other byte."""
    if len(head) < 4:
        return False
    even, odd = head[0::2], head[1::2]
    return max(even.count(0) / len(even), odd.count(0) / len(odd)) > 0.7


def read_text(path: Path) -> str:
    """The file as text: UTF-8, or UTF-16/32 with a byte-order mark.

    Binary content anywhere, or bytes that are not valid in the encoding, is
    a one-line DataError naming the file and the line.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    encoding, label, skipped = "utf-8", "UTF-8", 0
    for bom, enc, name in BOMS:
        if data.startswith(bom):
            data, encoding, label, skipped = data[len(bom):], enc, name, len(bom)
            break
    if encoding == "utf-8" and b"\x00" in data[:SNIFF_BYTES]:
        if _looks_like_bomless_utf16(data[:SNIFF_BYTES]):
            raise DataError(f"{path}: looks like UTF-16 without a byte-order mark; convert it to UTF-8")
        nul = data.index(b"\x00")
        raise DataError(f"{path}: looks like a binary file, not UTF-8 text (a NUL byte at line {_line_of(data, nul)})")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[:exc.start].decode(encoding, "replace").count("\n") + 1
        what = f"byte 0x{data[exc.start]:02x}" if encoding == "utf-8" else "bad bytes"
        raise DataError(
            f"{path}: not valid {label} ({what} at line {line}, offset {skipped + exc.start}); re-save it as UTF-8"
        ) from None
    nul = text.find("\x00")
    if nul >= 0:
        raise DataError(f"{path}: binary content (a NUL byte) at line {_line_of(text, nul)}; not a text file")
    return text


def read_folder(folder: Path) -> list[tuple[str, str]]:
    """A folder of <Label>.txt files, one name per line; label = file stem."""
    files = sorted(p for p in folder.glob("*.txt") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise DataError(f"{folder}: no <Label>.txt files in this folder")
    return [(line, f.stem) for f in files for line in read_text(f).splitlines()]


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def read_csv(path: Path) -> list[tuple[str | None, str]]:
    """A CSV file with a header row holding 'name' and 'label' columns.

    Every record is one line (a name never spans lines). A line whose quoting
    is broken -- e.g. an opening quote that is never closed -- is returned as
    (None, "") so the cleaning counts it as "dropped_malformed"; it never
    swallows the lines after it.
    """
    lines = _LINE_BREAK.split(read_text(path))
    if lines and lines[-1] == "":
        lines.pop()                # the text ends with a line break
    if not lines:
        raise DataError(f"{path}: empty CSV; it needs a header row with 'name' and 'label'")
    try:
        header = [h.strip().lower() for h in _csv_line(lines[0])]
    except csv.Error as exc:
        raise DataError(f"{path}: malformed CSV header at line 1 ({exc})") from None
    if "name" not in header or "label" not in header:
        found = ", ".join(h for h in header if h) or "nothing"
        raise DataError(f"{path}: CSV needs header columns 'name' and 'label' (found: {found})")
    i_name, i_label = header.index("name"), header.index("label")
    width = max(i_name, i_label)
    rows: list[tuple[str | None, str]] = []
    for line in lines[1:]:
        try:
            row = _csv_line(line)
        except csv.Error:
            rows.append((None, ""))
            continue
        rows.append((row[i_name], row[i_label]) if len(row) > width else ("", ""))
    return rows


def _csv_line(line: str) -> list[str]:
    """One physical line as CSV fields; csv.Error when its quoting is broken."""
    return next(csv.reader((line,), strict=True), [])
