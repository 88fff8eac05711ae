"""Dataset sources: built-in, downloaded PyTorch names, names-dataset, folder, CSV, one list.

A source is read once into counted rows -- each distinct line once, with how often it occurs -- and
cleaned row by distinct row (clean.clean_counted); the result is a Dataset whose ``pairs`` carry the
compact PairTable (table.py). Every source but the built-in one is cached by content (cache.py), so
loading the same data again costs a hash and a read.
"""
from __future__ import annotations

import codecs
import csv
import difflib
import hashlib
import os
import re
import stat
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from . import builtin, cache
from .clean import clean_counted
from .download import default_source, pytorch_names_available, pytorch_names_dir
from .errors import DataError
from .table import PairTable

SOURCE_HELP = ("use 'builtin', 'pytorch-names', 'names-dataset' (optional extra 'large'; options: "
               "names-dataset?top=N&min_share=S), a folder of <Label>.txt, a .csv (name,label) or a .txt list")

NAMED_SOURCES = ("builtin", "pytorch-names", "names-dataset")   # read by name; anything else is a path

Rows = Iterable[tuple[tuple[str | None, str], int]]     # ((raw name, label), occurrences)


@dataclass
class Dataset:
    source: str
    pairs: list[tuple[str, str]]
    labels: list[str]
    report: dict[str, int]
    task_hint: str
    cached: bool = field(default=False, compare=False)   # loaded from the cache (not re-read and re-cleaned)
    # labels left out whole after cleaning, beyond those with no name left: {"why": words, "labels": {label: names}}
    # (the built-in set's languages under builtin.MIN_NAMES names; their names are counted in the report)
    dropped_labels: dict = field(default_factory=dict)
    # labels with no name left after cleaning (their lines all dropped, or none: an empty <Label>.txt), sorted;
    # as many as the report's "labels_dropped" (the built-in set's: those beyond its small labels)
    nameless_labels: list[str] = field(default_factory=list)


@dataclass
class _Raw:
    """A source read from disk: its counted rows (parsed only when called: not on a cache hit), what its
    cache key depends on, and its size."""
    source: str
    rows: Callable[[], Rows]
    key_parts: dict
    size: int
    extra: dict = field(default_factory=dict)          # source-specific report counts
    labels: list[str] = field(default_factory=list)    # labels it declares whatever their rows (a folder's files)


def load_dataset(src: str | None = None, ascii_fold: bool = False, use_cache: bool = True) -> Dataset:
    """Load, clean and deduplicate a dataset (see SOURCE_HELP for src)."""
    src = default_source() if src is None else str(src)
    if src == "builtin":
        return _builtin(ascii_fold)
    if src == "names-dataset" or src.startswith("names-dataset?"):
        from . import names_dataset
        raw = names_dataset.read(src)
    elif src == "pytorch-names":
        if not pytorch_names_available():
            raise DataError(
                f"the pytorch-names dataset is not downloaded (looked in {pytorch_names_dir()}); "
                "run `namestudio data download`"
            )
        raw = _read_path(pytorch_names_dir(), "pytorch-names")
    else:
        path = Path(src).expanduser().absolute()
        if not os.path.lexists(path) and (near := close_source(src)):
            raise DataError(f"no such file or source {src!r}; did you mean {near!r}?")
        raw = _read_path(path, str(path))
    key = cache.key_of(source=raw.key_parts, ascii_fold=bool(ascii_fold))
    use_cache = use_cache and raw.size >= cache.MIN_BYTES
    hit = cache.load_dataset(key) if use_cache else None
    if hit is not None:
        table, report, task_hint, nameless = hit
        return _dataset(raw.source, table, report, task_hint, key, cached=True, nameless=nameless)
    table, report, nameless = clean_counted(raw.rows(), ascii_fold, raw.labels)
    if src.lower().endswith(".csv") or "dropped_malformed" in report:
        report = _malformed_after_empty(report)     # CSV: the one source whose lines can be malformed
    report.update(raw.extra)
    if not len(table):
        raise DataError(f"{raw.source}: no names left after cleaning ({report['lines_read']} lines read)")
    task_hint = "generate" if len(table.labels) == 1 else "classify"
    if use_cache:
        cache.save_dataset(key, table, report, task_hint, nameless)
    return _dataset(raw.source, table, report, task_hint, key if use_cache else None, nameless=nameless)


def close_source(src: str) -> str | None:
    """The named source (NAMED_SOURCES, with src's own ?options) that src, read as no path, was likely meant to be:
    the same name in other case ("Builtin"), or a near spelling ("built-in", "pytorch_names", "pytorch"). Names are
    exact, as the sources' own are and as a run's config records them; this only words the error."""
    base, sep, options = src.strip().partition("?")
    if "/" in base or os.sep in base or Path(base).suffix.lower() in (".txt", ".csv"):
        return None                                  # a path, plainly
    low = base.lower().replace("_", "-").replace(" ", "-")
    near = [n for n in NAMED_SOURCES if n == low] or difflib.get_close_matches(low, NAMED_SOURCES, n=1, cutoff=0.7)
    if not near or (sep and near[0] != "names-dataset"):
        return None
    return near[0] + sep + options


def _dataset(source: str, table: PairTable, report: dict, task_hint: str, key: str | None,
             cached: bool = False, nameless: list[str] = ()) -> Dataset:
    pairs = table.pairs()
    pairs.cache_key = key
    return Dataset(source, pairs, list(table.labels), report, task_hint, cached, nameless_labels=list(nameless))


def _builtin(ascii_fold: bool) -> Dataset:
    rows, skipped = builtin.builtin_rows()
    table, report, nameless = clean_counted(Counter(rows).items(), ascii_fold)
    pairs = table.pairs()
    small = builtin.small_labels(pairs)
    pairs = [p for p in pairs if p[1] not in small]
    kept = report.pop("kept")                   # the small labels' names, counted just before what is kept
    report.update(dropped_small_labels=kept - len(pairs), kept=len(pairs),
                  labels_dropped=report.get("labels_dropped", 0) + len(small))
    report = {"skipped_multiword": skipped, **report}   # first: these entries were never read as lines
    if not pairs:
        raise DataError(f"builtin: no names left after cleaning ({report['lines_read']} lines read)")
    table = PairTable.from_sorted_unique(pairs)
    task_hint = "generate" if len(table.labels) == 1 else "classify"
    ds = _dataset("builtin", table, report, task_hint, None, nameless=nameless)
    if small:
        ds.dropped_labels = {"why": f"under {builtin.MIN_NAMES} names", "labels": small}
    return ds


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
    """The raw (name, label) rows of a folder, .csv or .txt file, in file order."""
    if path.is_dir():
        return read_folder(path)
    if not path.exists():
        raise DataError(f"dataset source not found: {path} ({SOURCE_HELP})")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return read_csv(path)
    if suffix == ".txt":
        return [(line, path.stem) for line in _lines(read_text(path))]
    raise DataError(f"{path}: unsupported file type {suffix or '(none)'} ({SOURCE_HELP})")


def _read_path(path: Path, source: str) -> _Raw:
    """Counted rows of a folder, a .csv or a .txt file; the file contents are read once."""
    if path.is_dir():
        return _read_folder(path, source)
    if not path.exists():
        raise DataError(f"dataset source not found: {path} ({SOURCE_HELP})")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".txt"):
        raise DataError(f"{path}: unsupported file type {suffix or '(none)'} ({SOURCE_HELP})")
    data = _read_bytes(path)
    digest = hashlib.sha256(data).hexdigest()
    if suffix == ".csv":
        return _Raw(source, lambda: _csv_counts(path, _lines(read_text(path, data))),
                    {"kind": "csv", "sha256": digest}, len(data))
    label = path.stem

    def rows():
        return (((line, label), n) for line, n in Counter(_lines(read_text(path, data))).items())
    return _Raw(source, rows, {"kind": "txt", "label": label, "sha256": digest}, len(data), labels=[label])


def _read_bytes(path: Path) -> bytes:
    try:
        if not stat.S_ISREG(path.stat().st_mode):   # /dev/zero would fill the memory, a FIFO wait for ever
            raise DataError(f"{path}: not a regular file (a device, a pipe or a socket); give a file of names")
        return path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None


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


def _looks_like_bomless_utf16(head: bytes, whole: bool) -> bool:
    """UTF-16 without a BOM, from the first bytes (head; whole: the file is no longer) of a file with a NUL in them.

    Mostly-ASCII text puts its NULs at every other byte. Text mostly in other scripts (Cyrillic, Greek, CJK)
    has NULs in its line ends alone; it reads as lines of letters, where the same bytes are not UTF-8 text.
    Either way the bytes must decode, little- or big-endian, into text: binary data (random bytes, a PNG, a
    zip, a program) decodes into control characters, unpaired surrogates or unassigned code points.
    """
    if len(head) < 4:
        return False
    utf16 = ("utf-16-le", "utf-16-be")
    even, odd = head[0::2], head[1::2]
    if max(even.count(0) / len(even), odd.count(0) / len(odd)) > 0.7:
        return any(_is_text(head, encoding, whole) for encoding in utf16)
    if _is_text(head.replace(b"\x00", b""), "utf-8", whole):     # UTF-8 text with a stray NUL: binary content
        return False
    return any(_is_text(head, encoding, whole, names=True) for encoding in utf16)


MAX_MEAN_LINE = 128                   # characters: lines of names, or name,label rows, are far shorter


def _is_text(data: bytes, encoding: str, whole: bool, names: bool = False) -> bool:
    """data decodes strictly into printable text and line ends; with names, into lines mostly of letters."""
    try:
        text = codecs.getincrementaldecoder(encoding)().decode(data, final=whole)   # a cut last character is fine
    except UnicodeDecodeError:
        return False
    letters = visible = 0
    for ch in text:
        category = unicodedata.category(ch)
        if ch.isspace():
            continue
        if category in ("Cc", "Cs", "Co", "Cn"):    # control, surrogate, private use, unassigned (Cf is text: ZWNJ, LRM)
            return False
        visible += 1
        letters += category[0] in "LM"
    if not names:
        return bool(text)
    lines = text.count("\n")
    return lines > 0 and len(text) <= MAX_MEAN_LINE * lines and letters * 2 >= visible


def read_text(path: Path, data: bytes | None = None) -> str:
    """The file (or its bytes ``data``, already read) as text: UTF-8, or UTF-16/32 with a byte-order mark.

    Binary content anywhere, or bytes that are not valid in the encoding, is
    a one-line DataError naming the file and the line.
    """
    if data is None:
        data = _read_bytes(path)
    encoding, label, skipped = "utf-8", "UTF-8", 0
    for bom, enc, name in BOMS:
        if data.startswith(bom):
            data, encoding, label, skipped = data[len(bom):], enc, name, len(bom)
            break
    if encoding == "utf-8" and b"\x00" in data[:SNIFF_BYTES]:
        if _looks_like_bomless_utf16(data[:SNIFF_BYTES], whole=len(data) <= SNIFF_BYTES):
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
    return [(line, f.stem) for f in _label_files(folder) for line in _lines(read_text(f))]


def _label_files(folder: Path) -> list[Path]:
    """The folder's <Label>.txt files (any case of .txt: Irish.TXT is Irish), hidden files aside. A .txt link
    whose target is gone, or a <Label>.txt that is no file (a folder, a device, a pipe), is an error, not a
    language quietly left out."""
    try:
        entries = sorted(folder.iterdir())
    except OSError as e:
        raise DataError(f"{folder}: cannot list this folder ({e.strerror or e})") from None
    files = []
    for p in entries:
        if p.name.startswith(".") or p.suffix.lower() != ".txt":
            continue
        if p.is_file():
            files.append(p)
        elif p.is_symlink() and not p.exists():
            raise DataError(f"{p}: a link to {os.readlink(p)}, which does not exist; fix the link or remove it")
        elif not os.path.lexists(p):          # gone since the folder was listed
            continue
        else:
            raise DataError(f"{p}: not a regular file (a folder, a device, a pipe or a socket); "
                            "each <Label>.txt must be a file of names")
    if not files:
        raise DataError(f"{folder}: no <Label>.txt files in this folder")
    return files


def _read_folder(folder: Path, source: str) -> _Raw:
    digest, size, files = hashlib.sha256(), 0, []
    for f in _label_files(folder):
        data = _read_bytes(f)
        size += len(data)
        digest.update(f"{f.name}\0{len(data)}\0".encode() + data)
        files.append((f, data))

    def rows():
        counts = Counter()
        for f, data in files:
            label = f.stem
            counts.update((line, label) for line in _lines(read_text(f, data)))
        return counts.items()
    return _Raw(source, rows, {"kind": "folder", "sha256": digest.hexdigest()}, size,
                labels=[f.stem for f, _ in files])      # an empty <Label>.txt has no row, yet is a label


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _lines(text: str) -> list[str]:
    """Physical lines (CR, LF or CRLF), without a last empty one when the text ends with a line break. Every
    source reads lines so: ``str.splitlines`` also breaks at form feeds, \\x1c-\\x1e, NEL and U+2028/9, and cut
    one name in two where the CSV reader kept it whole."""
    lines = text.split("\n") if "\r" not in text else _LINE_BREAK.split(text)
    if lines and lines[-1] == "":
        lines.pop()                # the text ends with a line break
    return lines


def read_csv(path: Path) -> list[tuple[str | None, str]]:
    """A CSV file with a header row holding 'name' and 'label' columns.

    Every record is one line (a name never spans lines). A line whose quoting
    is broken -- e.g. an opening quote that is never closed -- is returned as
    (None, "") so the cleaning counts it as "dropped_malformed"; it never
    swallows the lines after it.
    """
    lines = _lines(read_text(path))
    parse = _csv_parser(path, lines)[0]
    return [parse(line) for line in lines[1:]]


def _csv_counts(path: Path, lines: list[str]) -> Rows:
    """((name, label), count) of the data lines: each distinct line is parsed once."""
    parse, i_name, i_label, width, columns = _csv_parser(path, lines)
    counts = Counter(lines)
    counts[lines[0]] -= 1                          # the header

    def rows():
        for line, n in counts.items():
            if not n:
                continue
            if '"' in line:
                yield parse(line), n
            else:                                  # the common case, inlined
                row = line.split(",")
                yield (_short(line) if len(row) <= width else (None, "") if _too_many(row, columns)
                       else _fields(row[i_name], row[i_label])), n
    return rows()


def _too_many(row: list[str], columns: int) -> bool:
    """Whether a row holds more fields than the header's ``columns`` (empty ones past them, a trailing comma, are
    no fields): malformed, a name with an unquoted comma ("Smith, Jr,English" under name,label was read as the
    name "Smith" of a class " Jr")."""
    return len(row) > columns and any(f.strip() for f in row[columns:])


def _fields(name: str, label: str) -> tuple[str | None, str]:
    """A data row's (name, label); a header again (CSV files joined with `cat`, each with its header, maybe with
    its own byte-order mark or in other case) is malformed: it became a class "label" holding a name "name"."""
    if label and (label[0] in "lL \t" or label[-1] in "lL \t") and label.strip().lower() == "label" \
            and name.strip().lstrip("\ufeff").strip().strip('"').lower() == "name":   # (the first test is cheap)
        return None, ""
    return name, label


def _short(line: str) -> tuple[str | None, str]:
    """A CSV line with too few fields: empty when it holds nothing, else malformed (a name without its label)."""
    return ("", "") if not line.replace(",", "").strip() else (None, "")


def _csv_parser(path: Path, lines: list[str]):
    """(parse, i_name, i_label, width, columns) from the header in lines[0]: parse turns one data line into
    (name, label), or (None, "") when its quoting is broken or it has more fields than the header (a name with
    an unquoted comma); ``columns``: the header's fields."""
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
    width, columns = max(i_name, i_label), len(header)

    def parse(line: str) -> tuple[str | None, str]:
        if '"' in line:                            # only quotes make a line more than comma-separated fields
            try:
                row = _csv_line(line)
            except csv.Error:
                return (None, "")
        else:
            row = line.split(",")
        if len(row) <= width:
            return _short(line)
        if _too_many(row, columns):
            return (None, "")
        return _fields(row[i_name], row[i_label])
    return parse, i_name, i_label, width, columns


def _csv_line(line: str) -> list[str]:
    """One physical line as CSV fields; csv.Error when its quoting is broken."""
    return next(csv.reader((line,), strict=True), [])
