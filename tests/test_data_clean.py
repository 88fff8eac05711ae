"""Cleaning rules for single names and the counts they report."""
import pytest

from namestudio.data import clean_name, load_dataset
from namestudio.data.clean import clean_counted, clean_rows


@pytest.mark.parametrize(
    "raw, expected, reasons",
    [
        ("Rafaj1", "Rafaj", ["stripped_digits_punct"]),
        ("Lu:", "Lu", ["stripped_digits_punct"]),
        ("Jevolojnov,", "Jevolojnov", ["stripped_digits_punct"]),
        ("Maxa/B", "Maxa", ["stripped_digits_punct"]),
        ("O'Neal", "O'Neal", []),
        ("Abu-Bakr", "Abu-Bakr", []),
        ("De la Cruz", "De la Cruz", []),
        ("Tsann-Kay-Si", "Tsann-Kay-Si", []),
        ("Żukowski", "Żukowski", []),
        ("Sze ", "Sze", ["whitespace_stripped"]),
        ("De  la\u00a0Cruz", "De la Cruz", ["whitespace_stripped"]),
        ("O\u2019Brien", "O'Brien", ["apostrophe_normalised"]),
        ("Jose\u0301", "José", ["nfc_changed"]),
        ("'s Gravensande", "s Gravensande", ["stripped_digits_punct"]),
        ("Smith -- Jones", "Smith-Jones", ["stripped_digits_punct"]),
    ],
)
def test_clean_name_keeps_letters_and_strips_stray_marks(raw, expected, reasons):
    assert clean_name(raw) == (expected, reasons)


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("", "dropped_empty"),
        ("   \t", "dropped_empty"),
        ("To The First Page", "dropped_junk"),
        ("to the first page", "dropped_junk"),
        ("To The First\u00a0 Page", "dropped_junk"),
        ("one two three four", "dropped_junk"),
        ("12345", "dropped_junk"),
        ("--", "dropped_junk"),
    ],
)
def test_clean_name_drops_empty_and_junk(raw, reason):
    name, reasons = clean_name(raw)
    assert name is None
    assert reasons[-1] == reason
    assert sum(r.startswith("dropped_") for r in reasons) == 1


def test_ascii_folding_is_optional_and_reported():
    assert clean_name("Müller") == ("Müller", [])
    assert clean_name("Müller", ascii_fold=True) == ("Muller", ["ascii_folded"])
    assert clean_name("Żukowski", ascii_fold=True) == ("Zukowski", ["ascii_folded"])
    assert clean_name("Smith", ascii_fold=True) == ("Smith", [])


def test_clean_rows_counts_every_change_and_drop():
    rows = [
        ("Rafaj1", "Czech"),
        ("Rafaj", "Czech"),       # duplicate of the cleaned line above
        ("Lu:", "Chinese"),
        ("", "Chinese"),
        ("To The First Page", "Russian"),
        ("Sze ", "Chinese"),
        ("Jose\u0301", "Spanish"),
        ("José", "Spanish"),      # duplicate once NFC is applied
        ("Smith", ""),            # no label
        ("Smith", "English"),
    ]
    pairs, report = clean_rows(rows)
    assert pairs == sorted([
        ("Rafaj", "Czech"), ("Lu", "Chinese"), ("Sze", "Chinese"),
        ("José", "Spanish"), ("Smith", "English"),
    ])
    assert report["lines_read"] == 10
    assert report["stripped_digits_punct"] == 2
    assert report["whitespace_stripped"] == 1
    assert report["nfc_changed"] == 1
    assert report["dropped_empty"] == 2
    assert report["dropped_junk"] == 1
    assert report["duplicates_removed"] == 2
    assert report["kept"] == 5
    dropped = report["dropped_empty"] + report["dropped_junk"] + report["duplicates_removed"]
    assert report["lines_read"] == report["kept"] + dropped


def test_loaded_file_report_matches_its_lines(tmp_path):
    (tmp_path / "Polish.txt").write_text(
        "Żukowski\nŻukowski\nRafaj1\n\nTo The First Page\nMüller,\n", encoding="utf-8"
    )
    ds = load_dataset(str(tmp_path), ascii_fold=True)
    assert ds.pairs == [("Muller", "Polish"), ("Rafaj", "Polish"), ("Zukowski", "Polish")]
    r = ds.report
    assert (r["lines_read"], r["dropped_empty"], r["dropped_junk"]) == (6, 1, 1)
    assert (r["duplicates_removed"], r["kept"]) == (1, 3)
    assert r["ascii_folded"] == 3  # both Żukowski lines and Müller
    assert r["stripped_digits_punct"] == 2


def test_a_declared_label_with_no_row_is_dropped_and_named_with_the_others():
    """A label with no line at all (an empty <Label>.txt) was never registered: "labels_dropped" left it out."""
    items = [(("Smith", "English"), 2), (("123", "Digits"), 1), (("", "Blank"), 3), (("Ivanov", "Russian"), 1)]
    table, report, dropped = clean_counted(items, declared=["Blank", "Digits", "Empty", "English", "Russian"])
    assert list(table.labels) == ["English", "Russian"]
    assert report["labels_dropped"] == 3 and dropped == ["Blank", "Digits", "Empty"]
    assert (report["lines_read"], report["kept"], report["duplicates_removed"]) == (7, 2, 1)
    table, report, dropped = clean_counted(items)               # no labels declared: those the rows carry
    assert report["labels_dropped"] == 2 and dropped == ["Blank", "Digits"]
    table, report, dropped = clean_counted(items[:1], declared=["English"])
    assert "labels_dropped" not in report and dropped == []
