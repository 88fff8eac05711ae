"""The data path at scale: the fast path gives exactly what the old code gave, the cache agrees with it and
survives damage, encoding is array work, and the names-dataset source (against a fake of its file)."""
import gzip
import json
import os
import pickle
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import scale_reference as ref
from scale_reference import batches as ref_batches
from helpers import SHARED_NAMES

from namestudio import data
from namestudio.data import DataError, cache, load_dataset, split_by_name, summarise
from namestudio.data.scale_bench import generate_csv
from namestudio.data.table import Pairs, table_of
from namestudio.engine import batches


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("NAMESTUDIO_CACHE_DIR", str(folder))
    return folder


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory):
    return generate_csv(tmp_path_factory.mktemp("scale") / "names100k.csv", 100_000, seed=1)


@pytest.fixture(scope="module")
def big_reference(big_csv):
    return reference(big_csv)


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory):
    """20k lines: still above cache.MIN_BYTES."""
    path = generate_csv(tmp_path_factory.mktemp("scale") / "names20k.csv", 20_000, seed=2)
    assert path.stat().st_size > cache.MIN_BYTES
    return path


@pytest.fixture(scope="module")
def small_reference(small_csv):
    return reference(small_csv)


def reference(csv):
    ds = ref.load_dataset(str(csv))
    split = ref.split_by_name(ds.pairs, seed=0)
    return ds, split, ref.summarise(ds, split)


def assert_same(ds, split, summary, ref_ds, ref_split, ref_summary):
    assert ds.pairs == ref_ds.pairs
    assert list(ds.report.items()) == list(ref_ds.report.items())          # counts and their order
    assert (ds.labels, ds.task_hint, ds.source) == (ref_ds.labels, ref_ds.task_hint, ref_ds.source)
    assert (split.train, split.val, split.test) == (ref_split.train, ref_split.val, ref_split.test)
    assert split.to_dict() == ref_split.to_dict()
    assert json.dumps(summary) == json.dumps(ref_summary)                 # same numbers, same types, same order


def test_100k_names_fast_path_equals_the_old_code_and_is_cached(big_csv, big_reference, cache_home):
    cold = load_dataset(str(big_csv))
    assert not cold.cached and len(cold.pairs) > 50_000 and len(cold.labels) >= 18
    r = cold.report
    assert r["dropped_malformed"] > 0 and r["duplicates_removed"] > 10_000 and r["stripped_digits_punct"] > 0
    cold_split = split_by_name(cold.pairs, seed=0)
    assert_same(cold, cold_split, summarise(cold, cold_split), *big_reference)
    assert len(list(cache_home.glob("*.data.npz"))) == 1 and len(list(cache_home.glob("*.split.npz"))) == 1

    warm = load_dataset(str(big_csv))
    assert warm.cached
    warm_split = split_by_name(warm.pairs, seed=0)
    assert_same(warm, warm_split, summarise(warm, warm_split), *big_reference)


def test_shared_names_fast_path_equals_the_old_code(monkeypatch):
    if not SHARED_NAMES.is_dir():
        pytest.skip("shared names data not present")
    monkeypatch.setattr(cache, "MIN_BYTES", 0)             # cache even this small source
    for ascii_fold, splits in ((False, ((0, 0.1, 0.1), (5, 0.2, 0.05))), (True, ((0, 0.1, 0.1),))):
        ref_ds = ref.load_dataset(str(SHARED_NAMES), ascii_fold=ascii_fold)
        for attempt in ("cold", "cached"):
            ds = load_dataset(str(SHARED_NAMES), ascii_fold=ascii_fold)
            assert ds.cached == (attempt == "cached")
            for seed, val, test in splits:
                rs = ref.split_by_name(ref_ds.pairs, seed=seed, val=val, test=test)
                s = split_by_name(ds.pairs, seed=seed, val=val, test=test)
                assert_same(ds, s, summarise(ds, s), ref_ds, rs, ref.summarise(ref_ds, rs))


def test_split_of_any_pair_list_equals_the_old_code():
    rng = random.Random(0)
    for trial in range(30):
        names = [f"N{i}" for i in range(rng.randint(1, 40))]
        labels = "ABCDE"[:rng.randint(1, 5)]
        pairs = [(rng.choice(names), rng.choice(labels)) for _ in range(rng.randint(1, 80))]   # duplicates too
        seed = rng.randint(0, 9)
        a, b = split_by_name(pairs, seed=seed), ref.split_by_name(pairs, seed=seed)
        assert (a.train, a.val, a.test) == (b.train, b.val, b.test), trial


def test_a_changed_pairs_list_drops_its_table(small_csv, small_reference):
    ds = load_dataset(str(small_csv))
    pairs = ds.pairs
    assert table_of(pairs) is not None
    pairs.append(("Zzzz", ds.labels[0]))
    assert table_of(pairs) is None and pairs.cache_key is None
    split = split_by_name(pairs, seed=0)
    want = ref.split_by_name(list(pairs), seed=0)
    assert (split.train, split.val, split.test) == (want.train, want.val, want.test)


def test_cache_key_follows_content_and_options(small_csv, tmp_path, cache_home):
    load_dataset(str(small_csv))
    copy = tmp_path / "copy.csv"
    copy.write_bytes(small_csv.read_bytes())
    assert load_dataset(str(copy)).cached                     # same content elsewhere: a hit
    assert not load_dataset(str(copy), ascii_fold=True).cached   # another option: a miss
    copy.write_bytes(small_csv.read_bytes() + "Newname,English\n".encode())
    changed = load_dataset(str(copy))
    assert not changed.cached and ("Newname", "English") in changed.pairs


@pytest.mark.parametrize("damage", ["garbage", "truncated", "pickled", "wrong_key"])
def test_a_damaged_cache_entry_is_ignored_and_rebuilt(small_csv, small_reference, cache_home, damage):
    load_dataset(str(small_csv))
    split_by_name(load_dataset(str(small_csv)).pairs, seed=0)
    entries = sorted(cache_home.glob("*.npz"))
    assert len(entries) == 2
    for entry in entries:
        if damage == "garbage":
            entry.write_bytes(b"\x00not a zip" * 100)
        elif damage == "truncated":
            entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
        elif damage == "pickled":                             # an object array needs pickle: refused
            np.savez(entry.open("wb"), meta=np.array([{"format": 1}], dtype=object))
        else:
            other = cache_home / "other.npz"
            with np.load(entry) as z:
                arrays = dict(z)
            meta = json.loads(arrays["meta"].tobytes())
            meta["key"] = "0" * 64
            arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
            np.savez(other.open("wb"), **arrays)
            os.replace(other, entry)
    ds = load_dataset(str(small_csv))
    assert not ds.cached
    split = split_by_name(ds.pairs, seed=0)
    assert_same(ds, split, summarise(ds, split), *small_reference)
    assert load_dataset(str(small_csv)).cached                  # rebuilt and written again


def test_the_cache_size_cap_removes_only_its_own_files(small_csv, cache_home, monkeypatch):
    """NAMESTUDIO_CACHE_DIR may name a folder with other .npz files: past the cap they were deleted too."""
    import time
    cache_home.mkdir(parents=True)
    mine = cache_home / "embeddings.npz"
    mine.write_bytes(b"x" * 5000)
    stale_tmp, other_tmp = cache_home / ".tmp-abc.npz", cache_home / ".tmp-notes.txt"
    for f in (stale_tmp, other_tmp):
        f.write_bytes(b"x")
        os.utime(f, (time.time() - 7200, time.time() - 7200))
    old_entry = cache_home / f"{'a' * 64}.data.npz"
    old_entry.write_bytes(b"x" * 5000)
    os.utime(old_entry, (1, 1))                             # the least recently used entry
    monkeypatch.setattr(cache, "MAX_BYTES", 1)
    load_dataset(str(small_csv))                            # writes this source's entries, then trims
    assert mine.read_bytes() == b"x" * 5000 and other_tmp.exists()
    assert not old_entry.exists() and not stale_tmp.exists()


def test_cache_off_writes_nothing(small_csv, cache_home, monkeypatch):
    monkeypatch.setenv("NAMESTUDIO_CACHE_DIR", "off")
    ds = load_dataset(str(small_csv))
    split_by_name(ds.pairs, seed=0)
    assert not ds.cached and not cache_home.exists()
    assert not load_dataset(str(small_csv)).cached


@pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")
def test_a_cache_entry_gets_the_mode_open_gives_not_mkstemps_0600(small_csv, cache_home):
    """A cache entry was 0600 whatever the umask (mkstemp's mode, kept by the rename)."""
    from helpers import with_umask
    with with_umask(0o022):
        load_dataset(str(small_csv))
    entries = list(cache_home.glob("*.npz"))
    assert entries and {oct(p.stat().st_mode & 0o777) for p in entries} == {oct(0o644)}


def test_data_needs_neither_torch_nor_pickle_for_the_cache(small_csv, cache_home):
    load_dataset(str(small_csv))
    for entry in cache_home.glob("*.npz"):
        with np.load(entry, allow_pickle=False) as z:
            assert all(z[k].dtype != object for k in z.files)


# ---- encoding ------------------------------------------------------------------------------
def test_encode_equals_the_old_code_in_a_compact_type():
    rng = random.Random(0)
    alphabet = "abcdeéfghßłZ' -"
    names = ["".join(rng.choice(alphabet) for _ in range(rng.choice([0, 1, 2, 5, 10, 63, 64, 65, 70])))
             for _ in range(2000)]
    vocab = data.Vocab.build(names[:500])                     # some characters unknown
    pairs = [(n, rng.choice("xyz")) for n in names]
    index = {"x": 0, "y": 1, "z": 2}
    for task in ("classify", "generate"):
        new, old = batches.encode(pairs, vocab, index, task), ref_batches.encode(pairs, vocab, index, task)
        assert new.ids.dtype == torch.uint8 and len(new) == len(old)
        assert torch.equal(new.ids.long(), old.ids) and torch.equal(new.lengths, old.lengths)
        assert torch.equal(new.y, old.y)
        if task == "generate":
            assert torch.equal(new.target.long(), old.target)
        idx = torch.tensor([7, 3, 1999])
        a, b = new.batch(idx, torch.device("cpu")), old.batch(idx, torch.device("cpu"))
        assert a.ids.dtype == torch.long and torch.equal(a.ids, b.ids) and torch.equal(a.lengths, b.lengths)


def test_encode_from_a_table_equals_encode_from_a_list(small_csv):
    ds = load_dataset(str(small_csv))
    split = split_by_name(ds.pairs, seed=0)
    vocab = data.Vocab.build(n for n, _ in split.train)
    index = {lab: i for i, lab in enumerate(ds.labels)}
    fast, plain = batches.encode(split.val, vocab, index, "classify"), batches.encode(list(split.val), vocab, index, "classify")
    assert table_of(split.val) is not None
    assert torch.equal(fast.ids, plain.ids) and torch.equal(fast.y, plain.y)
    with pytest.raises(KeyError):
        batches.encode(split.val, vocab, {lab: i for i, lab in enumerate(ds.labels[1:])}, "classify")


def test_epoch_batches_equal_the_old_code():
    lengths = torch.randint(1, 25, (3001,))
    for batch_size in (1, 7, 64):
        new = batches.epoch_batches(lengths, batch_size, torch.Generator().manual_seed(3))
        old = ref_batches.epoch_batches(lengths, batch_size, torch.Generator().manual_seed(3))
        assert len(new) == len(old) and all(torch.equal(a, b) for a, b in zip(new, old))
    assert batches.epoch_batches(torch.zeros(0, dtype=torch.long), 4, torch.Generator()) == []


# ---- names-dataset ---------------------------------------------------------------------------
FAKE = {
    " Cruz": {"country": {"PR": 1.0}, "gender": {}, "rank": {"PR": 11053}},
    "Bilbao": {"country": {"ES": 0.475, "CL": 0.127, "FR": 0.03}, "gender": {}, "rank": {}},
    "Akoud": {"country": {"SD": 0.633, "SA": 0.102}, "gender": {}, "rank": {"SD": 12371}},
    "Darrow": {"country": {"US": 0.911, "CA": 0.018}, "gender": {}, "rank": {}},
    "Even": {"country": {"US": 0.5, "GB": 0.5}, "gender": {}, "rank": {}},     # tie: GB
    "Rossi": {"country": {"IT": 0.9}, "gender": {}, "rank": {}},
    "Bianchi": {"country": {"IT": 0.8, "CH": 0.2}, "gender": {}, "rank": {}},
    "Castillo Cedeño": {"country": {"PA": 0.5, "CR": 0.188}, "gender": {}, "rank": {}},
    "Nobody": {"country": {}, "gender": {}, "rank": {}},
}


def fake_package(root: Path, table=FAKE) -> Path:
    pkg = root / "names_dataset"
    (pkg / "v3").mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise ImportError('the fake package is never imported')\n")
    with gzip.open(pkg / "v3" / "last_names.pkl.gz", "wb") as f:
        pickle.dump(table, f)
    return root


def test_names_dataset_labels_by_top_country(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(fake_package(tmp_path / "site")))
    ds = load_dataset("names-dataset?top=3&min_share=0.5")
    assert ds.source == "names-dataset?top=3&min_share=0.5"
    # shares >= 0.5: PR Cruz, SD Akoud, US Darrow, GB Even, IT Rossi, IT Bianchi, PA Castillo Cedeño;
    # the top 3 countries by names: IT (2), then GB and PA (1 each, alphabetical)
    assert ds.pairs == [("Bianchi", "IT"), ("Castillo Cedeño", "PA"), ("Even", "GB"), ("Rossi", "IT")]
    r = ds.report
    assert (r["source_names"], r["dropped_min_share"], r["dropped_no_country"]) == (9, 1, 1)
    assert r["dropped_other_countries"] == 3 and r["lines_read"] == 4 and r["kept"] == 4
    every = load_dataset("names-dataset?top=0&min_share=0")
    assert ("Cruz", "PR") in every.pairs and ("Bilbao", "ES") in every.pairs and len(every.pairs) == 8
    assert every.report["whitespace_stripped"] == 1


def test_names_dataset_default_options_and_cache(tmp_path, monkeypatch, cache_home):
    monkeypatch.syspath_prepend(str(fake_package(tmp_path / "site")))
    monkeypatch.setattr(cache, "MIN_BYTES", 0)
    first = load_dataset("names-dataset")
    assert first.source == "names-dataset?top=20&min_share=0.5" and not first.cached
    again = load_dataset("names-dataset?min_share=0.5")
    assert again.cached and again.pairs == first.pairs and again.report == first.report
    assert not load_dataset("names-dataset?min_share=0.9").cached


@pytest.mark.parametrize("src, words", [
    ("names-dataset?top=x", "top must be"),
    ("names-dataset?top=-1", "top must be"),
    ("names-dataset?min_share=2", "min_share must be"),
    ("names-dataset?colour=red", "unknown option 'colour'"),
    ("names-dataset?top", "malformed options"),
])
def test_names_dataset_bad_options(tmp_path, monkeypatch, src, words):
    monkeypatch.syspath_prepend(str(fake_package(tmp_path / "site")))
    with pytest.raises(DataError, match=words) as e:
        load_dataset(src)
    assert "\n" not in str(e.value)


def test_names_dataset_missing_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "names_dataset", None)    # not importable, whatever is installed
    with pytest.raises(DataError) as e:
        load_dataset("names-dataset")
    assert "pip install 'namestudio[large]'" in str(e.value) and "\n" not in str(e.value)


def test_names_dataset_file_that_wants_code_is_refused(tmp_path, monkeypatch):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))
    monkeypatch.syspath_prepend(str(fake_package(tmp_path / "site", {"Smith": Evil()})))
    with pytest.raises(DataError, match="not a names-dataset table"):
        load_dataset("names-dataset")
