"""The ``names-dataset`` source: about a million last names, each labelled by its most frequent country.

Provenance
----------
The data is the last-name table of the PyPI package ``names-dataset`` (Philippe Remy, MIT licence;
https://github.com/philipperemy/name-dataset), an optional extra: ``pip install 'namestudio[large]'``.
Its author built it from the 2021 leak of about 533 million Facebook profiles: for every name, the share
of the profiles bearing it in each of ~105 countries. The names are real people's names scraped from
leaked personal data; decide whether that is acceptable for your work before using it. Nothing of it
ships with namestudio and nothing is downloaded by it: the package brings the file.

Labels
------
A name's label is its top country (ISO 3166 alpha-2 code, e.g. ``IT``; ties: alphabetically first),
kept only when that country holds at least ``min_share`` of the name's profiles; then only the ``top``
countries with the most names are kept (0 = all). Options ride on the source string:
``names-dataset?top=20&min_share=0.5`` (the defaults). The report counts ``source_names``,
``dropped_min_share`` and ``dropped_other_countries`` besides the usual cleaning counts.

Format read
-----------
``names_dataset/v3/last_names.pkl.gz``: a gzip'd pickle of ``{name: {"country": {alpha2: share},
"gender": {...}, "rank": {alpha2: rank}}}``. It is unpickled with every global refused (plain dicts,
strings and numbers only), so a tampered file cannot run code. The first load takes ~15 s and ~1.2 GB of
memory; the cleaned result is cached by the file's hash (cache.py), so later loads take about a second.
"""
from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import pickle
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qsl

from .errors import DataError

NAME = "names-dataset"
PACKAGE = "names_dataset"
DATA_FILE = Path("v3") / "last_names.pkl.gz"
INSTALL = "pip install 'namestudio[large]'"
DEFAULTS = {"top": 20, "min_share": 0.5}
HELP = (f"{NAME}[?top=N&min_share=S]: ~1M last names labelled by their most frequent country (top N countries, "
        f"default 20; the country must hold at least share S of the name, default 0.5), from the names-dataset "
        f"package (MIT), which was built from the 2021 leak of ~533M Facebook profiles; needs {INSTALL}")


def parse_options(src: str) -> dict:
    """{"top": int, "min_share": float} from ``names-dataset?top=N&min_share=S``; DataError if malformed."""
    _, _, query = src.partition("?")
    opts = dict(DEFAULTS)
    try:
        items = parse_qsl(query, keep_blank_values=True, strict_parsing=True) if query else []
    except ValueError:
        raise DataError(f"{src}: malformed options; use {NAME}?top=N&min_share=S") from None
    for key, value in items:
        if key == "top":
            try:
                opts["top"] = int(value)
            except ValueError:
                opts["top"] = -1
            if opts["top"] < 0:
                raise DataError(f"{src}: top must be a whole number >= 0 (0 keeps every country), got {value!r}")
        elif key == "min_share":
            try:
                opts["min_share"] = float(value)
            except ValueError:
                opts["min_share"] = -1.0
            if not 0.0 <= opts["min_share"] <= 1.0:
                raise DataError(f"{src}: min_share must be a number from 0 to 1, got {value!r}")
        else:
            raise DataError(f"{src}: unknown option {key!r}; {NAME} takes top and min_share")
    return opts


def source_string(opts: dict) -> str:
    return f"{NAME}?top={opts['top']}&min_share={opts['min_share']:g}"


def data_file() -> Path:
    """The package's last-name file; a one-line DataError naming the extra when it is not installed."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"the {NAME} source needs the optional package names-dataset: {INSTALL}")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / DATA_FILE
        if path.is_file():
            return path
    raise DataError(f"names-dataset is installed but has no {DATA_FILE.as_posix()}; reinstall it: {INSTALL}")


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refusing global {module}.{name}")


def load_table(path: Path, data: bytes) -> dict:
    """The {name: {"country": {code: share}, ...}} mapping in the file's bytes."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
            table = _PlainUnpickler(f).load()
    except Exception as exc:
        raise DataError(f"{path}: not a names-dataset table ({type(exc).__name__}: {str(exc)[:80]})") from None
    if not isinstance(table, dict):
        raise DataError(f"{path}: not a names-dataset table (a {type(table).__name__}, not a dict)")
    return table


def top_country(shares) -> tuple[str, float] | None:
    """(country, share) with the largest share (ties: alphabetically first), or None."""
    if not isinstance(shares, dict):
        return None
    best = None
    for code, share in shares.items():
        if not isinstance(code, str) or not isinstance(share, (int, float)):
            continue
        if best is None or share > best[1] or (share == best[1] and code < best[0]):
            best = (code, float(share))
    return best


def label_rows(table: dict, top: int, min_share: float) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """(name, country) rows by the rules in the module doc, and the counts of what was left out."""
    labelled, no_country, low_share = [], 0, 0
    for name, info in table.items():
        best = top_country(info.get("country") if isinstance(info, dict) else None)
        if not isinstance(name, str) or best is None:
            no_country += 1
        elif best[1] < min_share:
            low_share += 1
        else:
            labelled.append((name, best[0]))
    kept = None
    if top:
        per_country = Counter(code for _, code in labelled)
        kept = {code for code, _ in sorted(per_country.items(), key=lambda kv: (-kv[1], kv[0]))[:top]}
    rows = [row for row in labelled if kept is None or row[1] in kept]
    extra = {"source_names": len(table), "dropped_min_share": low_share,
             "dropped_other_countries": len(labelled) - len(rows)}
    if no_country:
        extra["dropped_no_country"] = no_country
    return rows, extra


def read(src: str):
    """The source as sources._Raw: hashed now, unpickled and labelled only when its rows are needed."""
    from .sources import _Raw
    opts = parse_options(src)
    path = data_file()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    digest = hashlib.sha256(data).hexdigest()
    raw = _Raw(source_string(opts), None, {"kind": NAME, "sha256": digest, **opts}, len(data))

    def rows():
        rows, extra = label_rows(load_table(path, data), opts["top"], opts["min_share"])
        raw.extra.update(extra)
        return (((name, label), 1) for name, label in rows)
    raw.rows = rows
    return raw
