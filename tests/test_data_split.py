"""Leak-free split, vocabulary and summary."""
import json
import random
from pathlib import Path

import pytest

from namestudio.data import Split, Vocab, load_dataset, split_by_name, summarise

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REAL_NAMES = SHARED / "data" / "names"


@pytest.fixture(scope="module")
def real():
    if not REAL_NAMES.is_dir():
        pytest.skip("shared names data not present")
    return load_dataset(str(REAL_NAMES))


def names_of(pairs):
    return {name for name, _ in pairs}


def test_real_split_is_leak_free_and_stratified(real):
    split = split_by_name(real.pairs, seed=0)
    train, val, test = names_of(split.train), names_of(split.val), names_of(split.test)
    assert not (train & val) and not (train & test) and not (val & test)
    assert sorted(split.train + split.val + split.test) == real.pairs
    assert {label for _, label in split.train} == set(real.labels)
    assert {label for _, label in split.val} == set(real.labels)
    assert {label for _, label in split.test} == set(real.labels)
    n = len(names_of(real.pairs))
    assert 0.08 * n <= len(val) <= 0.12 * n
    assert 0.08 * n <= len(test) <= 0.12 * n


def test_real_split_is_deterministic_per_seed(real):
    a = split_by_name(real.pairs, seed=1)
    b = split_by_name(list(reversed(real.pairs)), seed=1)
    c = split_by_name(real.pairs, seed=2)
    assert (a.train, a.val, a.test) == (b.train, b.val, b.test)
    assert a.test != c.test and a.val != c.val


def test_name_under_two_labels_stays_in_one_split():
    pairs = [(f"N{i}", "A") for i in range(20)] + [(f"M{i}", "B") for i in range(20)]
    pairs += [("N3", "B"), ("M5", "A")]
    for seed in range(10):
        split = split_by_name(pairs, seed=seed)
        for name in ("N3", "M5"):
            homes = [part for part in (split.train, split.val, split.test)
                     if name in names_of(part)]
            assert len(homes) == 1 and len([p for p in homes[0] if p[0] == name]) == 2


def test_small_labels():
    pairs = [("Ab", "Two"), ("Cd", "Two"), ("Ef", "Three"), ("Gh", "Three"), ("Ij", "Three")]
    split = split_by_name(pairs, seed=0)
    assert {p for p in pairs if p[1] == "Two"} <= set(split.train)
    three = [len([p for p in part if p[1] == "Three"]) for part in (split.train, split.val, split.test)]
    assert three == [1, 1, 1]


def test_every_label_reaches_train_even_when_its_names_are_shared():
    # Q and R belong to "A" first (alphabetical tie-break), so "Z" has no
    # names of its own; A's three names go one each to train/val/test, and
    # whenever P is A's train name, Z must still get a train row.
    pairs = [("P", "A"), ("Q", "A"), ("R", "A"), ("Q", "Z"), ("R", "Z")]
    train_names = set()
    for seed in range(20):
        split = split_by_name(pairs, seed=seed)
        assert "Z" in {label for _, label in split.train}
        assert not names_of(split.train) & (names_of(split.val) | names_of(split.test))
        train_names |= names_of(split.train)
    assert "P" in train_names  # the case that needs the fix-up did occur


def test_split_rejects_bad_fractions():
    with pytest.raises(ValueError):
        split_by_name([("A", "x")], val=0.5, test=0.5)
    with pytest.raises(ValueError):
        split_by_name([("A", "x")], val=-0.1)


def test_split_to_dict_is_small_and_json_able():
    pairs = [(f"N{i}", "A") for i in range(50)]
    split = split_by_name(pairs, seed=7, val=0.2, test=0.1)
    d = split.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert (d["seed"], d["val"], d["test"]) == (7, 0.2, 0.1)
    assert d["counts"] == {"train": 35, "val": 10, "test": 5}
    assert "N0" not in json.dumps(d)
    assert isinstance(split, Split)


def test_vocab():
    vocab = Vocab.build(["Abe", "Bé"])
    assert vocab.itos == ["<pad>", "<unk>", "<bos>", "<eos>", "A", "B", "b", "e", "é"]
    assert len(vocab) == 9
    assert vocab.encode("Abe") == [4, 6, 7]
    assert vocab.encode("Az!") == [4, Vocab.UNK, Vocab.UNK]
    assert vocab.encode("") == []
    assert vocab.decode([Vocab.BOS, 4, 6, 7, Vocab.EOS, Vocab.PAD]) == "Abe"
    assert vocab.decode(vocab.encode("Bé")) == "Bé"
    again = Vocab.from_list(json.loads(json.dumps(vocab.to_list())))
    assert again == vocab and again.encode("Bé") == vocab.encode("Bé")
    with pytest.raises(ValueError):
        Vocab.from_list(["a", "b"])


def test_summary(tmp_path):
    (tmp_path / "A.txt").write_text("Ann\nBo\nCarla\nDee\n", encoding="utf-8")
    (tmp_path / "B.txt").write_text("Bo\nCarla\nEve1\n", encoding="utf-8")
    ds = load_dataset(str(tmp_path))
    split = split_by_name(ds.pairs, seed=0)
    s = summarise(ds, split)
    assert json.loads(json.dumps(s)) == s
    assert {"source", "n_pairs", "n_labels", "per_label", "length",
            "cross_label_duplicates", "cleaning", "split"} <= set(s)
    assert s["n_pairs"] == 7 and s["n_labels"] == 2
    assert s["per_label"] == {"A": 4, "B": 3}
    assert s["length"] == {"min": 2, "max": 5, "mean": 3.2, "median": 3, "p95": 5}
    assert s["cross_label_duplicates"]["count"] == 2
    assert sorted(s["cross_label_duplicates"]["examples"]) == [
        ["Bo", ["A", "B"]], ["Carla", ["A", "B"]]]
    assert s["cleaning"]["stripped_digits_punct"] == 1
    assert s["split"] == split.to_dict()
    assert "split" not in summarise(ds)


def test_summary_examples_are_capped(real):
    s = summarise(real)
    assert s["n_labels"] == 18 and s["n_pairs"] == len(real.pairs)
    assert s["cross_label_duplicates"]["count"] > 400
    assert len(s["cross_label_duplicates"]["examples"]) == 10
    assert sum(s["per_label"].values()) == s["n_pairs"]
