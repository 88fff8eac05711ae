"""Every dataset source, and unreadable input."""
import subprocess
import sys
from pathlib import Path

import pytest

from namestudio.data import (
    DataError, Dataset, default_source, load_dataset, pytorch_names_available,
    pytorch_names_dir, user_data_dir,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REAL_NAMES = SHARED / "data" / "names"


@pytest.fixture
def data_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("NAMESTUDIO_DATA_DIR", str(home))
    return home


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_folder_of_label_files(tmp_path):
    write(tmp_path / "names" / "French.txt", "Dupont\nMartin\n")
    write(tmp_path / "names" / "German.txt", "Müller\nMartin\n")
    write(tmp_path / "names" / "notes.md", "ignored\n")
    ds = load_dataset(str(tmp_path / "names"))
    assert isinstance(ds, Dataset)
    assert ds.source == str((tmp_path / "names").absolute())
    assert ds.labels == ["French", "German"]
    assert ds.pairs == [("Dupont", "French"), ("Martin", "French"),
                        ("Martin", "German"), ("Müller", "German")]
    assert ds.task_hint == "classify"


def test_a_label_file_in_upper_case_counts_and_a_broken_link_is_an_error(tmp_path):
    write(tmp_path / "names" / "French.txt", "Dupont\nMartin\n")
    write(tmp_path / "names" / "Irish.TXT", "Murphy\nKelly\n")     # saved so on a case-blind system
    write(tmp_path / "names" / ".Draft.txt", "Hidden\n")             # an editor's file: not a language
    assert load_dataset(str(tmp_path / "names")).labels == ["French", "Irish"]
    (tmp_path / "names" / "Welsh.txt").symlink_to(tmp_path / "gone" / "Welsh.txt")
    with pytest.raises(DataError, match=r"Welsh\.txt: a link to .*gone/Welsh\.txt, which does not exist"):
        load_dataset(str(tmp_path / "names"))


@pytest.mark.parametrize("kind", ["fifo", "folder", "device"])
def test_a_label_file_that_is_no_file_is_an_error_not_a_language_left_out(tmp_path, kind):
    """A German.txt that is a pipe, a folder or a device was skipped: the run trained without German."""
    import os
    write(tmp_path / "names" / "French.txt", "Dupont\nMartin\n")
    odd = tmp_path / "names" / "German.txt"
    {"fifo": lambda: os.mkfifo(odd), "folder": odd.mkdir, "device": lambda: odd.symlink_to("/dev/null")}[kind]()
    with pytest.raises(DataError, match=r"German\.txt: not a regular file"):
        load_dataset(str(tmp_path / "names"))


def test_csv_with_name_and_label_columns(tmp_path):
    csv = write(tmp_path / "people.csv",
                "\ufeffid, Label ,Name\n1,Irish,O'Neal\n2,English,\"Smith, Jr\"\n3,English,\n4,Irish\n")
    ds = load_dataset(str(csv))
    assert ds.pairs == [("O'Neal", "Irish"), ("Smith Jr", "English")]
    assert ds.labels == ["English", "Irish"]
    assert ds.report["lines_read"] == 4
    assert ds.report["dropped_empty"] == 1                 # "3,English,": an empty name
    assert ds.report["dropped_malformed"] == 1             # "4,Irish": fewer fields than the header
    assert ds.task_hint == "classify"


def test_a_label_whose_names_are_all_dropped_is_no_class(tmp_path):
    write(tmp_path / "names" / "Greek.txt", "Papadopoulos\nAlexiou\n")
    write(tmp_path / "names" / "Korean.txt", "Kim\nPark\n")
    write(tmp_path / "names" / "Junk.txt", "123\n!!!\n")
    ds = load_dataset(str(tmp_path / "names"))
    assert ds.labels == ["Greek", "Korean"] and {lab for _, lab in ds.pairs} == {"Greek", "Korean"}
    assert ds.report["labels_dropped"] == 1 and ds.report["dropped_junk"] == 2
    csv = write(tmp_path / "people.csv", "name,label\nSmith,English\n,Martian\nDupont,French\n")
    ds = load_dataset(str(csv))
    assert ds.labels == ["English", "French"] and ds.pairs == [("Dupont", "French"), ("Smith", "English")]
    assert ds.report["labels_dropped"] == 1


def odd_folder(folder: Path, english: str = "Smith\nJones\n") -> Path:
    """Two good languages and three that give no name: digits only, blank lines only, and an empty file."""
    write(folder / "Digits.txt", "123\n456\n")
    write(folder / "English.txt", english)
    write(folder / "Russian.txt", "Ivanov\nPetrov\n")
    write(folder / "Empty.txt", "")
    write(folder / "Blank.txt", "\n\n")
    return folder


def test_an_empty_label_file_is_a_label_dropped_and_every_dropped_label_is_named(tmp_path, monkeypatch):
    """An empty <Label>.txt registered no label (no row): "labels dropped 2" for three languages that gave no name,
    and which they were was said for the built-in set alone."""
    monkeypatch.setenv("NAMESTUDIO_CACHE_DIR", "off")
    from rich.console import Console
    from namestudio.data import summarise
    from namestudio.tui.render import summary_tables
    ds = load_dataset(str(odd_folder(tmp_path / "names")))
    assert ds.labels == ["English", "Russian"]
    assert ds.report["labels_dropped"] == 3 and ds.nameless_labels == ["Blank", "Digits", "Empty"]
    assert (ds.report["lines_read"], ds.report["dropped_empty"], ds.report["dropped_junk"]) == (8, 2, 2)
    summary = summarise(ds)
    assert summary["nameless_labels"] == ["Blank", "Digits", "Empty"]
    console = Console(width=80, record=True, color_system=None)
    for table in summary_tables(summary):
        console.print(table)
    text = console.export_text()
    assert "labels dropped" in text and "no names left: Blank, Digits, Empty" in text
    for i in range(20):                                   # many: a few by name, then how many more
        write(tmp_path / "names" / f"Gone{i:02d}.txt", "")
    summary = summarise(load_dataset(str(tmp_path / "names")))
    console = Console(width=200, record=True, color_system=None)
    for table in summary_tables(summary):
        console.print(table)
    row = next(line for line in console.export_text().splitlines() if "no names left" in line)
    assert "no names left: Blank, Digits, Empty, Gone00, Gone01, Gone02 and 17 more" in row and row.rstrip().endswith("23")
    assert load_dataset("builtin").nameless_labels == []         # its small labels are named as before


def test_labels_with_no_names_are_named_from_the_cache_and_an_older_entry_is_rebuilt(tmp_path, monkeypatch):
    """The cached path: the names of the labels dropped are stored with the entry; an entry written before they
    were (no "nameless_labels" in its meta) is rebuilt rather than read without them, and never crashes."""
    import json
    import numpy as np
    from namestudio.data import cache
    monkeypatch.setenv("NAMESTUDIO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(cache, "MIN_BYTES", 0)
    folder = odd_folder(tmp_path / "names")
    cold, warm = load_dataset(str(folder)), load_dataset(str(folder))
    assert (cold.cached, warm.cached) == (False, True)
    assert warm == cold and warm.nameless_labels == ["Blank", "Digits", "Empty"] and warm.report["labels_dropped"] == 3
    [entry] = (tmp_path / "cache").glob("*.data.npz")
    with np.load(entry, allow_pickle=False) as z:
        arrays = dict(z)
    meta = json.loads(arrays["meta"].tobytes())
    del meta["nameless_labels"]                            # as written before they were stored
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(entry, **arrays)
    again = load_dataset(str(folder))
    assert not again.cached and again == cold               # rebuilt, so the labels are named
    assert load_dataset(str(folder)).cached
    good = write(tmp_path / "good" / "English.txt", "Smith\nJones\n").parent     # an older entry that dropped none
    assert load_dataset(str(good)).nameless_labels == []
    [entry] = [e for e in (tmp_path / "cache").glob("*.data.npz") if e != entry]
    with np.load(entry, allow_pickle=False) as z:
        arrays = dict(z)
    meta = json.loads(arrays["meta"].tobytes())
    del meta["nameless_labels"]
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(entry, **arrays)
    hit = load_dataset(str(good))
    assert hit.cached and hit.nameless_labels == [] and hit.labels == ["English"]


def test_single_txt_is_one_class_for_generation(tmp_path):
    txt = write(tmp_path / "Elvish.txt", "Galadriel\r\nElrond\r\nGaladriel\r\n")
    ds = load_dataset(str(txt))
    assert ds.labels == ["Elvish"]
    assert ds.pairs == [("Elrond", "Elvish"), ("Galadriel", "Elvish")]
    assert ds.task_hint == "generate"
    assert ds.report["duplicates_removed"] == 1


def test_builtin_has_at_least_12_languages_with_50_names():
    ds = load_dataset("builtin")
    assert ds.source == "builtin"
    per_label = {}
    for name, label in ds.pairs:
        per_label.setdefault(label, set()).add(name)
    big = [label for label, names in per_label.items() if len(names) >= 50]
    assert len(big) >= 12
    assert sorted(per_label) == ds.labels and len(ds.labels) == len(big)
    assert {"English", "Russian", "Japanese", "Chinese", "Greek"} <= set(ds.labels)
    assert all(name.isascii() and name.strip() == name for name, _ in ds.pairs)
    assert ds.report["kept"] == len(ds.pairs)
    assert load_dataset("builtin") == ds  # deterministic


def test_builtin_transliterates_other_scripts():
    ds = load_dataset("builtin")
    names = {label: {n for n, lab in ds.pairs if lab == label} for label in ds.labels}
    assert {"Ivanov", "Smirnov"} <= names["Russian"]
    assert {"Wang", "Zhang"} <= names["Chinese"]
    assert {"Tanaka", "Suzuki"} <= names["Japanese"]
    assert "Papadopoylos" in names["Greek"] or "Papadopoulos" in names["Greek"]


def test_user_data_dir_honours_env(data_home):
    assert user_data_dir() == data_home
    assert pytorch_names_dir() == data_home / "pytorch-names" / "names"


def test_pytorch_names_missing_tells_user_to_download(data_home):
    assert not pytorch_names_available()
    assert default_source() == "builtin"
    with pytest.raises(DataError, match="namestudio data download"):
        load_dataset("pytorch-names")


def test_pytorch_names_on_disk_is_the_default(data_home):
    write(pytorch_names_dir() / "Korean.txt", "Kim\nPark\n")
    write(pytorch_names_dir() / "Scottish.txt", "Mclaughlin\n")
    assert pytorch_names_available()
    assert default_source() == "pytorch-names"
    ds = load_dataset()
    assert ds.source == "pytorch-names"
    assert ds.labels == ["Korean", "Scottish"]


@pytest.mark.skipif(not REAL_NAMES.is_dir(), reason="shared names data not present")
def test_real_names_dataset_loads_clean():
    ds = load_dataset(str(REAL_NAMES))
    assert len(ds.labels) == 18
    assert ds.report["lines_read"] == 20074
    assert ds.report["dropped_junk"] >= 23
    names = {n for n, _ in ds.pairs}
    assert "To The First Page" not in names
    assert {("Rafaj", "Czech"), ("Lu", "Chinese"), ("Jevolojnov", "Russian")} <= set(ds.pairs)
    assert not any(c.isdigit() or c in ",:/" for n in names for c in n)
    assert len([p for p in ds.pairs if p[1] == "Arabic"]) < 150  # 2,000 lines, ~108 names
    r = ds.report
    assert r["lines_read"] == r["kept"] + r["dropped_empty"] + r["dropped_junk"] + r["duplicates_removed"]


# --- unreadable input: one-line DataError naming the file -------------------

def assert_names(exc_info, path: Path):
    message = str(exc_info.value)
    assert path.name in message
    assert "\n" not in message


def test_binary_file(tmp_path):
    bad = tmp_path / "names" / "Binary.txt"
    bad.parent.mkdir()
    bad.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(DataError, match="binary") as exc:
        load_dataset(str(bad.parent))
    assert_names(exc, bad)


def test_latin1_file(tmp_path):
    bad = tmp_path / "German.txt"
    bad.write_bytes("Müller\nSchröder\n".encode("latin-1"))
    with pytest.raises(DataError, match="UTF-8") as exc:
        load_dataset(str(bad))
    assert_names(exc, bad)


def test_empty_folder(tmp_path):
    empty = tmp_path / "nothing_here"
    empty.mkdir()
    (empty / "readme.md").write_text("no txt files")
    with pytest.raises(DataError) as exc:
        load_dataset(str(empty))
    assert_names(exc, empty)


def test_csv_missing_columns(tmp_path):
    bad = write(tmp_path / "people.csv", "surname,country\nSmith,England\n")
    with pytest.raises(DataError, match="name.*label") as exc:
        load_dataset(str(bad))
    assert_names(exc, bad)
    assert "surname, country" in str(exc.value)


def test_nonexistent_path(tmp_path):
    missing = tmp_path / "no_such_dir"
    with pytest.raises(DataError, match="not found") as exc:
        load_dataset(str(missing))
    assert_names(exc, missing)


def test_unsupported_file_type(tmp_path):
    bad = write(tmp_path / "names.json", "[]")
    with pytest.raises(DataError, match="unsupported") as exc:
        load_dataset(str(bad))
    assert_names(exc, bad)


def test_nothing_left_after_cleaning(tmp_path):
    bad = write(tmp_path / "Junk.txt", "To The First Page\n123\n\n")
    with pytest.raises(DataError, match="no names left") as exc:
        load_dataset(str(bad))
    assert_names(exc, bad)


def test_data_package_needs_neither_torch_nor_textual():
    code = ("import sys, namestudio.data as d; d.load_dataset('builtin'); "
            "assert 'torch' not in sys.modules and 'textual' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# --- hostile text: broken quoting, other encodings, binary further in ---------

def test_csv_unclosed_quote_drops_one_row_and_keeps_the_rest(tmp_path):
    bad = write(tmp_path / "people.csv",
                'name,label\nSmith,English\n"Unclosed,English\nJones,English\nDupont,French\n'
                '"Bro"ken,French\nMartin,French\n')
    ds = load_dataset(str(bad))
    assert ds.pairs == [("Dupont", "French"), ("Jones", "English"), ("Martin", "French"),
                        ("Smith", "English")]
    r = ds.report
    assert r["dropped_malformed"] == 2 and r["dropped_empty"] == 0
    assert r["lines_read"] == 6
    assert r["lines_read"] == r["kept"] + r["dropped_empty"] + r["dropped_junk"] + r["dropped_malformed"] \
        + r["duplicates_removed"]


def test_a_csv_row_with_more_fields_than_the_header_is_malformed_not_a_new_class(tmp_path):
    """"Smith, Jr,English" (an unquoted comma in the name) was read as the name "Smith" of a class "Jr", and
    "A,B,C,D" as a name A of class B, both counted as kept. A trailing comma (an empty field past the header)
    and a quoted comma stay good rows; so do extra fields under a header that has them."""
    bad = write(tmp_path / "people.csv", 'name,label\nSmith, Jr,English\nA,B,C,D\nBrown,English,\n'
                                         '"Li, Wei",Chinese\nNguyen,Vietnamese\n"Ng, Jr",Vietnamese,x\n')
    ds = load_dataset(str(bad))
    assert sorted({label for _, label in ds.pairs}) == ["Chinese", "English", "Vietnamese"]
    assert ("Brown", "English") in ds.pairs and ds.report["dropped_malformed"] == 3
    wide = write(tmp_path / "wide.csv", 'name,label,count\nSmith,English,3\nDupont,French\n')
    assert load_dataset(str(wide)).pairs == [("Dupont", "French"), ("Smith", "English")]


def test_csv_unclosed_quote_on_the_last_line(tmp_path):
    bad = write(tmp_path / "people.csv", 'name,label\nSmith,English\n"Last,English')
    ds = load_dataset(str(bad))
    assert ds.pairs == [("Smith", "English")]
    assert ds.report["dropped_malformed"] == 1


def test_csv_broken_header_names_line_1(tmp_path):
    bad = write(tmp_path / "people.csv", '"name,label\nSmith,English\n')
    with pytest.raises(DataError, match="line 1") as exc:
        load_dataset(str(bad))
    assert_names(exc, bad)


@pytest.mark.parametrize("quoted", [False, True])
def test_csv_files_joined_with_cat_and_rows_without_a_label(tmp_path, quoted):
    """The second file's header was read as a name "name" of a language "label"; a name without its label
    was counted as an empty row. Both are malformed now; blank lines stay empty."""
    head = '"name","label"' if quoted else "name,label"
    joined = write(tmp_path / "all.csv", f"{head}\nSmith,English\nMüller\n\n,,\n\ufeff{head}\nSchmidt,German\n"
                                        f"Name, Label \n")          # another file's header: its BOM, its case
    for ds in (load_dataset(str(joined)), ):
        assert ds.labels == ["English", "German"] and ds.pairs == [("Schmidt", "German"), ("Smith", "English")]
        r = ds.report
        assert (r["dropped_malformed"], r["dropped_empty"], r["lines_read"]) == (3, 2, 7)
    from namestudio.data.sources import read_csv
    rows = read_csv(joined)                       # the plain reader agrees with the counted one
    assert rows == [("Smith", "English"), (None, ""), ("", ""), ("", ""), (None, ""), ("Schmidt", "German"),
                    (None, "")]


@pytest.mark.parametrize("kind", ["txt", "folder"])
def test_a_name_is_one_line_as_in_a_csv_form_feeds_and_unicode_separators_do_not_cut_it(tmp_path, kind):
    text = "Ab\x0cCd\nEf\x1cGh\nIj\u2028Kl\nMn\x85Op\r\nQr\rSt\n"
    path = write(tmp_path / "names" / "Welsh.txt", text)
    ds = load_dataset(str(path if kind == "txt" else path.parent))
    assert ds.report["lines_read"] == 6                        # was 10: each separator started a new "name"
    assert len(ds.pairs) == 6 and {lab for _, lab in ds.pairs} == {"Welsh"}


def test_malformed_count_is_zero_for_a_clean_csv(tmp_path):
    good = write(tmp_path / "people.csv", "name,label\nDupont,French\nMüller,German\n")
    report = load_dataset(str(good)).report
    assert report["dropped_malformed"] == 0
    keys = list(report)
    assert keys.index("dropped_malformed") == keys.index("dropped_empty") + 1


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-8-sig"])
def test_text_with_a_byte_order_mark_is_read(tmp_path, encoding):
    text = "name,label\nMüller,German\nŁukasz,Polish\n"
    data = text.encode(encoding)
    if encoding in ("utf-16-le", "utf-16-be"):  # these codecs write no BOM: add it
        data = "\ufeff".encode(encoding) + data
    (tmp_path / "people.csv").write_bytes(data)
    ds = load_dataset(str(tmp_path / "people.csv"))
    assert ds.pairs == [("Müller", "German"), ("Łukasz", "Polish")]
    assert ds.report["dropped_malformed"] == 0


def test_utf16_without_bom_says_convert(tmp_path):
    bad = tmp_path / "German.txt"
    bad.write_bytes("Müller\nSchröder\n".encode("utf-16-le"))
    with pytest.raises(DataError, match="UTF-16.*convert it to UTF-8") as exc:
        load_dataset(str(bad))
    assert "binary" not in str(exc.value)
    assert_names(exc, bad)


NON_ASCII = {  # mostly not ASCII: in UTF-16 only the line ends (and the CSV's labels) hold NUL bytes
    "Russian.txt": "Иванов\nПетров\nСмирнов\nКузнецов\n",
    "people.csv": "имя,язык\nИванов,Russian\nΠαπαδόπουλος,Greek\n",
    "Chinese.txt": "王\n李\n张伟\n刘洋\n",
}


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("name", NON_ASCII)
def test_utf16_without_bom_in_other_scripts_says_convert(tmp_path, name, encoding):
    """The NULs of such a file are too few for the mostly-ASCII rule: it was called binary."""
    bad = tmp_path / name
    bad.write_bytes(NON_ASCII[name].encode(encoding))
    with pytest.raises(DataError, match="looks like UTF-16 without a byte-order mark; convert it to UTF-8") as exc:
        load_dataset(str(bad))
    assert "binary" not in str(exc.value)
    assert_names(exc, bad)


def png_bytes() -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = b"".join(b"\x00" + bytes((x * y) % 256 for x in range(24)) for y in range(24))   # filter byte, pixels
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 24, 24, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def zip_bytes() -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("Russian.txt", NON_ASCII["Russian.txt"] * 20)
    return buffer.getvalue()


def random_bytes() -> bytes:
    import random

    data = random.Random(7).randbytes(6000)
    assert b"\x00" in data
    return data


@pytest.mark.parametrize("make", [random_bytes, png_bytes, zip_bytes, lambda: Path(sys.executable).read_bytes()[:16384]],
                         ids=["random", "png", "zip", "program"])
def test_binary_files_are_not_taken_for_utf16(tmp_path, make):
    bad = tmp_path / "names" / "Binary.txt"
    bad.parent.mkdir()
    bad.write_bytes(make())
    with pytest.raises(DataError, match="looks like a binary file") as exc:
        load_dataset(str(bad.parent))
    assert "UTF-16" not in str(exc.value)
    assert_names(exc, bad)


def test_binary_after_the_first_8_kib_names_the_line(tmp_path):
    bad = tmp_path / "names" / "English.txt"
    bad.parent.mkdir()
    lines = [f"Smith{chr(97 + i % 26)}" for i in range(2000)]       # ~14 KB of good text
    bad.write_bytes(("\n".join(lines) + "\n").encode() + b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(DataError, match="binary.*line 2001") as exc:
        load_dataset(str(bad.parent))
    assert_names(exc, bad)


def test_binary_inside_utf16_names_the_line(tmp_path):
    bad = tmp_path / "people.csv"
    bad.write_bytes("name,label\nSmith,English\nJo\x00nes,English\n".encode("utf-16"))
    with pytest.raises(DataError, match="binary.*line 3") as exc:
        load_dataset(str(bad))
    assert_names(exc, bad)


def test_bad_utf8_after_the_first_8_kib_names_the_line(tmp_path):
    bad = tmp_path / "English.txt"
    bad.write_bytes(("Smith\n" * 3000).encode() + "Müller\n".encode("latin-1"))
    with pytest.raises(DataError, match="byte 0xfc at line 3001") as exc:
        load_dataset(str(bad))
    assert_names(exc, bad)
