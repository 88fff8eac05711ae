"""engine/infer.py on hand-made runs (a made-up vocabulary and a model whose logits we choose): reading what the
user types, per-name errors, the attribution measure, sampling checks, novelty and classifier agreement."""
from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
import torch
from rich.console import Console

from namestudio.data import Vocab
from namestudio.engine.batches import MAX_LEN
from namestudio.engine.config import TrainConfig
from namestudio.engine.infer import (InferenceError, LoadedRun, agreement_cell, agreement_words, check_sampling,
                                     classifier_agreement, judged, mark_novelty, novelty, write_lines)
from namestudio.tui.render import attribution_text

LETTERS = "KMacehlnoruvü '-"


class CountingModel(torch.nn.Module):
    """Logits of label 0 = 10 + 3 x (number of 'a'); labels 1 and 2 stay at 0. 'K' changes nothing."""

    def __init__(self, vocab: Vocab):
        super().__init__()
        self.a = vocab.stoi["a"]

    def forward(self, ids, lengths):
        mask = torch.arange(ids.shape[1])[None, :] < lengths[:, None]
        n_a = ((ids == self.a) & mask).sum(1).float()
        return torch.stack([10 + 3 * n_a, torch.zeros_like(n_a), torch.zeros_like(n_a)], dim=1)


def make_run(ascii_fold: bool = False, letters: str = LETTERS) -> LoadedRun:
    vocab = Vocab.build([letters])
    cfg = TrainConfig(task="classify", ascii_fold=ascii_fold)
    return LoadedRun(path=Path("hand-made"), config=cfg, labels=["Alpha", "Beta", "Gamma"], vocab=vocab,
                     model=CountingModel(vocab), meta={})


# ---- reading what the user types -----------------------------------------------------
def test_a_known_name_is_read_as_typed():
    r = make_run().read("  Mc   Karov ")
    assert r.text == "Mc Karov" and r.unknown == [] and r.truncated_from == 0 and r.notes() == []


def test_unknown_characters_are_named_and_a_foldable_letter_is_read_folded():
    run = make_run(letters=LETTERS.replace("ü", ""))      # this run never saw ü
    r = run.read("Müllerж")
    assert r.unknown == ["ü", "ж"]
    assert r.replaced == {"ü": "u"} and r.text == "Mullerж"   # ж (folded: zh, never seen) goes as <unk>
    note = " ".join(r.notes())
    assert "ü" in note and "ж" in note and "never saw" in note


def test_digits_and_punctuation_are_left_out_and_one_case_is_capitalised_as_in_training():
    """Training left stray digits and punctuation out of its names and saw them capitalised (its vocabulary has
    both cases of letter): "Kaline." read the
    dot as an unknown character, and KALINE or kaline other letters than Kaline (other answers, no note)."""
    run = make_run(letters="KLMacehilnoruvAEINO '-")
    for typed in ("Kaline.", "Kaline2", "KALINE", "kaline", "kaline!"):
        r = run.read(typed)
        assert r.text == "Kaline" and not r.unknown, (typed, r)
        assert any(n.startswith("read as training read its names: ") for n in r.notes()), r.notes()
    assert run.read("o'neill").text == "O'Neill" and run.read("Kaline").notes() == []
    assert run.read("KaLine").text == "KaLine"          # mixed case is the user's: kept
    folded = make_run(ascii_fold=True, letters="KLMacehilnoruvAEINO '-")     # an --ascii run reads the same way
    assert folded.read("KÄLINE.").text == "Kaline"
    with pytest.raises(InferenceError, match="no letter"):
        run.read("1234")
    lower = make_run(letters="kalinemor '-")              # a run of lowercase names keeps what is typed
    assert lower.read("kaline").text == "kaline" and lower.read("kaline").notes() == []


def test_a_letter_the_run_never_saw_does_not_turn_capitalising_off():
    """DÚBHSHLAINE, müller and ó briain were read DUBHSHLAINE, muller and o briain (another answer, no note): the
    check that capitalising keeps to letters the run knows ran before unseen letters were folded, so one accented
    letter the run never saw turned capitalising off. Now they are read as o'neill is (O'Neill)."""
    run = make_run(letters="BDKLMNOabcehilnorsuv '-")         # never saw ú, Ú, ü, Ü, ó, Ó
    typed = run.read("Dúbhshlaine")
    assert typed.text == "Dubhshlaine" and not typed.recased and typed.replaced == {"ú": "u"}
    for name, read_as, folded in (("DÚBHSHLAINE", "Dubhshlaine", {"ú": "u"}), ("dúbhshlaine", "Dubhshlaine", {"ú": "u"}),
                                  ("müller", "Muller", {"ü": "u"}), ("MÜLLER", "Muller", {"ü": "u"}),
                                  ("ó briain", "O Briain", {"Ó": "O"}), ("Ó BRIAIN", "O Briain", {"Ó": "O"}),
                                  ("o'neill", "O'Neill", {})):
        r = run.read(name)
        assert (r.text, r.recased, r.replaced) == (read_as, True, folded), (name, r)
        notes = r.notes()
        assert "read as training read its names: capitalised as the training names are" in notes, (name, notes)
        for seen_as, fold in folded.items():                    # the fold is named as the letter that was read
            assert any(f"never saw {seen_as}: read {seen_as} as {fold}" in n for n in notes), (name, notes)
    # a letter the run cannot read either way (ж, Ж: <unk>) does not turn it off either
    r = run.read("KALINEЖ")
    assert r.text == "Kalineж" and r.recased and r.unknown == ["ж"] and r.replaced == {}
    # what capitalising must not do: turn a letter the run reads into one it cannot (no K here: kaline stays)
    no_k = make_run(letters="LMacehiklnoruv '-")
    assert no_k.read("kaline").text == "kaline" and not no_k.read("kaline").recased
    # a letter the run knows only in small letters becomes its fold when capitalised, and the note says so
    r = make_run(letters="BDKLMNOUabcehilnorsuvú '-").read("úna")
    assert r.text == "Una" and r.recased and r.replaced == {"Ú": "U"}
    # scoring without folding (fold_unseen=False) capitalises too: the unseen letter is unseen either way
    r = run.read("DÚBHSHLAINE", fold_unseen=False)
    assert r.text == "Dúbhshlaine" and r.recased and r.unknown == ["ú"] and r.replaced == {}
    # an --ascii run folds what is typed before it reads it: the same answers
    folded_run = make_run(ascii_fold=True, letters="BDKLMNOabcehilnorsuv '-")
    assert [folded_run.read(n).text for n in ("DÚBHSHLAINE", "müller", "ó briain")] == ["Dubhshlaine", "Muller",
                                                                                       "O Briain"]


def test_a_run_that_saw_the_letter_keeps_it():
    r = make_run().read("Müller")
    assert r.text == "Müller" and r.unknown == []


def test_a_folded_run_folds_what_the_user_types_like_its_training_data():
    run = make_run(ascii_fold=True, letters="KMacehlnoruv ")
    r = run.read("Müller")
    assert r.text == "Muller" and r.unknown == []          # the training data said "Muller" too: nothing unseen
    assert run.read("Zoë").unknown == ["Z"]                  # ë folds to e (known); Z was never seen


def test_a_name_with_no_known_letter_is_a_per_name_error():
    run = make_run()
    with pytest.raises(InferenceError, match="no letter this run knows"):
        run.read("😀😀")
    with pytest.raises(InferenceError, match="no letter"):
        run.read("- '")                                     # separators alone are not a name
    with pytest.raises(InferenceError, match="empty name"):
        run.read("   ")


def test_a_non_letter_the_run_never_saw_is_a_character_and_one_is_said_in_the_singular():
    """A run that never saw an apostrophe read "Mac'Kone" with the note "read as unknown characters" (one of them),
    and "'" typed into a run that knows it as a separator was an error saying it "never saw these letters" (it saw
    them, and they are no letters). Now one is one unknown character, and the error names the characters."""
    run = make_run(letters="KMacehlnoruv")                    # no apostrophe, hyphen or space
    assert run.read("Mac'Kone").notes() == ["this run never saw ': read as an unknown character"]
    assert run.read("Mac-Ka'ne").notes() == ["this run never saw -, ': read as unknown characters"]
    known = make_run()                                         # knows ', - and the space: as separators
    with pytest.raises(InferenceError) as e:
        known.read("'")
    assert str(e.value) == "\"'\": no letter in it, only the character '; type a name in this run's alphabet"
    with pytest.raises(InferenceError) as e:
        known.read("- '")
    assert "only the characters -, ' ', '" in str(e.value) and "letters" not in str(e.value)


def test_a_start_too_long_for_max_len_counts_its_letters_or_characters():
    """sample --start K --max-len 1 said "start 'K' is 1 letters", and a start with an apostrophe counted it as a
    letter; --start-letters with an apostrophe called it a "start letter"."""
    run = _generator(EndingModel)
    with pytest.raises(InferenceError) as e:
        run.sample(start="K", max_len=1)
    assert str(e.value).startswith("start 'K' is 1 letter: max-len 1 leaves no room")
    with pytest.raises(InferenceError) as e:
        run.sample(start="Ka", max_len=2)
    assert str(e.value).startswith("start 'Ka' is 2 letters:")
    with pytest.raises(InferenceError) as e:
        run.sample(start="K'a", max_len=3)
    assert str(e.value).startswith("start \"K'a\" is 3 characters:")
    with pytest.raises(InferenceError) as e:
        run.sample(start_letters="K'", max_len=5)
    assert str(e.value).startswith("start character \"'\": no letter in it, only the character '"), str(e.value)
    with pytest.raises(InferenceError, match="^start letter 'ж'"):    # a letter it cannot read (no z for zh)
        run.sample(start_letters="Kж", max_len=5)


def test_a_start_no_max_len_can_hold_says_how_long_a_start_may_be():
    """--start of 64 letters with --max-len 64 said "max-len 64 leaves no room; raise max-len", though 64 is the
    highest max-len; a start past 64 letters (cut to 64) said so at any max-len."""
    run = _generator(EndingModel)
    for start, max_len, length in (("K" + "a" * 63, MAX_LEN, 64), ("K" + "a" * 80, 10, 81)):
        with pytest.raises(InferenceError) as e:
            run.sample(start=start, max_len=max_len)
        said = str(e.value)
        assert said.startswith(f"start 'Kaaaaaaaaaaaaaaaaaaa…' is {length} letters: a start may be at most "
                               f"{MAX_LEN - 1} letters"), said
        assert "raise max-len" not in said
    with pytest.raises(InferenceError) as e:
        run.sample(start="K'" + "a" * 62, max_len=MAX_LEN)
    assert f"at most {MAX_LEN - 1} characters" in str(e.value)
    with pytest.raises(InferenceError) as e:            # a higher max-len makes room: say how high
        run.sample(start="Kaaa", max_len=4)
    assert str(e.value) == f"start 'Kaaa' is 4 letters: max-len 4 leaves no room; raise max-len to 5 or more (at most {MAX_LEN})"
    assert run.sample(start="K" + "a" * 62, max_len=MAX_LEN, n=1)[0]["name"] == "K" + "a" * 62


def test_a_long_name_is_cut_and_says_so():
    r = make_run().read("a" * 300)
    assert len(r.text) == MAX_LEN and r.truncated_from == 300
    assert any(f"{MAX_LEN} of 300" in n for n in r.notes())


def test_classify_each_answers_good_names_beside_bad_ones():
    out = make_run().classify_each(["", "Kaa", "😀", "a" * 100], k=2)
    assert [bool(c.error) for c in out] == [True, False, True, False]
    assert out[1].top[0][0] == "Alpha" and len(out[1].top) == 2
    d = out[3].as_dict()
    assert d["truncated"] is True and d["length"] == 100 and d["unknown_chars"] == []
    assert set(out[0].as_dict()) == {"name", "error"}
    with pytest.raises(InferenceError, match="empty name"):   # the old all-or-nothing call keeps its contract
        make_run().classify(["Kaa", ""])


# ---- attribution -------------------------------------------------------------------------
def test_attribution_uses_log_odds_so_a_saturated_probability_still_shows_each_letter():
    run = make_run()
    label, scores = run.attribution("Kaa")
    p = run.probabilities(["Kaa", "Ka"])[:, 0]
    assert label == "Alpha" and float(p[0]) > 0.9999        # saturated: removing an 'a' moves p by < 1e-5
    assert float(p[0] - p[1]) < 1e-5
    # logits 16 vs 13 against two zeros: each 'a' is worth exactly 3 in log-odds; 'K' nothing
    assert scores == pytest.approx([0.0, 3.0, 3.0], abs=1e-4)
    e = run.explain("Kaa")
    assert e.text == "Kaa" and e.prob == pytest.approx(float(p[0]))


def test_attribution_of_a_one_letter_name_is_finite():
    label, scores = make_run().attribution("a")
    # against the uniform guess: logodds(13 vs 0, 0) - logodds(1/3) = 13 - log 2 + log 2
    assert label == "Alpha" and scores == pytest.approx([13.0], abs=1e-3)


def test_attribution_scores_the_folded_text():
    run = make_run(letters=LETTERS.replace("ü", ""))
    e = run.explain("Kü")
    assert e.text == "Ku" and len(e.scores) == 2


def test_attribution_line_keeps_the_spaces_between_the_words_plain():
    text = attribution_text("Mc Kar-ov", [1.0, 0.5, 0.2, -0.3, 0.4, 0.1, 0.3, 0.2, 0.1])
    assert text.plain == "Mc Kar-ov"
    styles = {}
    for span in text.spans:
        for i in range(span.start, span.end):
            styles[i] = span.style
    assert 2 not in styles and 6 not in styles               # the space and the hyphen: no colour block
    assert all(i in styles for i in (0, 1, 3, 4, 5, 7, 8))   # every letter is coloured
    out = Console(width=40, color_system=None, file=io.StringIO(), record=True)
    out.print(text)
    assert "Mc Kar-ov" in out.export_text()


# ---- sampling helpers -------------------------------------------------------------------------
@pytest.mark.parametrize("kw, word", [
    ({"temperature": float("nan")}, "temperature"), ({"temperature": -0.5}, "temperature"),
    ({"temperature": float("inf")}, "temperature"), ({"top_k": -1}, "top-k"), ({"n": 0}, "n must"),
    ({"max_len": 0}, "max-len"), ({"max_len": MAX_LEN + 1}, "max-len")])
def test_bad_sampling_settings_are_one_line_errors(kw, word):
    with pytest.raises(InferenceError, match=word) as e:
        check_sampling(**{"temperature": 1.0, **kw})
    assert "\n" not in str(e.value)


def test_zero_temperature_is_allowed():
    check_sampling(0.0, 0, 1, 24)


class EndingModel(torch.nn.Module):
    """A generator that always prefers to end the name: <eos> at +20, every other symbol at 0."""

    def __init__(self, vocab: Vocab):
        super().__init__()
        self.v, self.eos = len(vocab), vocab.EOS

    def forward(self, ids, labels, lengths=None, state=None):
        logits = torch.zeros(ids.shape[0], ids.shape[1], self.v)
        logits[..., self.eos] = 20.0
        return logits, state


@pytest.mark.parametrize("temperature", [0.0, 0.5, 1.0])
def test_a_sampled_name_has_at_least_one_letter(temperature):
    vocab = Vocab.build([LETTERS])
    run = LoadedRun(path=Path("hand-made"), config=TrainConfig(task="generate"), labels=["Alpha"], vocab=vocab,
                    model=EndingModel(vocab), meta={})
    run.__dict__["split"] = {"train": [["Kao", "Alpha"]], "val": [], "test": []}   # no run folder to read it from
    names = [s["name"] for s in run.sample(n=50, temperature=temperature, seed=0)]
    assert len(names) == 50 and all(len(n) == 1 and n in LETTERS for n in names), names
    # with a prefix the model may end at once: the name is the prefix
    assert {s["name"] for s in run.sample(start="Ka", n=5, temperature=temperature, seed=0)} == {"Ka"}


def test_novelty_counts_repeats_and_the_bare_prefix_as_not_new():
    samples = [{"name": n, "lang": "Alpha", "start": "Ka"} for n in ["Kalo", "Kalo", "Ka", "Karov", "Kamo"]]
    mark_novelty(samples, train_names={"Karov"})
    assert [s["new"] for s in samples] == [True, False, False, False, True]
    assert [s["repeat"] for s in samples] == [False, True, False, False, False]
    assert samples[3]["in_training"] is True
    nov = novelty(samples)
    assert nov["new_fraction"] == pytest.approx(2 / 5) and nov["unique_fraction"] == pytest.approx(4 / 5)


def test_classifier_agreement_judges_only_languages_the_classifier_knows():
    clf = make_run()                 # says Alpha for anything with a known letter
    samples = [{"name": "Kaa", "lang": "Alpha"}, {"name": "Kee", "lang": "Beta"},
               {"name": "Koo", "lang": "Klingon"}, {"name": "😀", "lang": "Alpha"}]
    agree = classifier_agreement(samples, clf)
    assert [s["agrees"] for s in samples] == [True, False, None, False]
    assert samples[3]["classifier"] is None                  # it could not read that one
    assert agree == pytest.approx(1 / 3)
    assert classifier_agreement([{"name": "Kaa", "lang": "Klingon"}], clf) is None


def test_agreement_says_over_how_many_names_when_the_classifier_judged_only_some():
    """Agreement over the 3 samples it could judge was "classifier agrees on 33%" with no word that a fourth was
    in a language it does not know (the reviewer's 5-language classifier: "100%" of 2 of 6)."""
    clf = make_run()
    samples = [{"name": "Kaa", "lang": "Alpha"}, {"name": "Kee", "lang": "Beta"},
               {"name": "Koo", "lang": "Klingon"}, {"name": "😀", "lang": "Alpha"}]
    share = classifier_agreement(samples, clf)
    assert judged(samples) == 3
    assert agreement_words(share, judged(samples), len(samples)) == "classifier agrees on 33% of the 3 it can judge"
    assert agreement_cell(share, 3, 4) == "33% of 3"
    assert agreement_words(share, 4, 4) == "classifier agrees on 33%" and agreement_cell(share, 4, 4) == "33%"
    assert agreement_words(None, 0, 4) == "the classifier knows none of these languages"


def test_write_lines_is_atomic_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "names.txt"
    target.write_text("old\n")
    write_lines(target, ["Kalo", "Mirov"])
    assert target.read_text() == "Kalo\nMirov\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["names.txt"]
    with pytest.raises(InferenceError, match="no such folder"):
        write_lines(tmp_path / "missing" / "x.txt", ["a"])


@pytest.mark.skipif(os.name == "nt", reason="POSIX links and FIFOs")
def test_write_lines_writes_through_a_link_and_into_a_fifo_instead_of_replacing_them(tmp_path):
    """`sample --out link.txt` replaced the link with a file (its target kept the old text); `--out fifo` replaced
    the FIFO, and its reader waited for ever; `--out /dev/stdout` (as root) replaced /dev/stdout itself."""
    import threading
    target = tmp_path / "target.txt"
    target.write_text("old\n")
    link = tmp_path / "link.txt"
    link.symlink_to("target.txt")
    assert write_lines(link, ["Kalo"]) == link
    assert link.is_symlink() and target.read_text() == "Kalo\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.txt", "target.txt"]
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()), daemon=True)
    reader.start()
    write_lines(fifo, ["Kalo", "Mirov"])
    reader.join(10)
    assert got == ["Kalo\nMirov\n"]
    assert not fifo.is_file() and fifo.exists()          # still the FIFO


@pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")
def test_write_lines_keeps_the_mode_of_the_file_it_replaces_and_a_new_file_gets_opens(tmp_path):
    """`sample --out FILE` turned a user's 0644 file into 0600 (mkstemp's mode, kept by the rename), and a new
    file was 0600 whatever the umask. Now a replaced file keeps its mode and a new one gets 0666 & ~umask."""
    from helpers import with_umask
    for mask in (0o022, 0o077):
        folder = tmp_path / f"{mask:03o}"
        folder.mkdir()
        with with_umask(mask):
            mine, shared, new = folder / "mine.txt", folder / "shared.txt", folder / "new.txt"
            mine.write_text("old\n")
            os.chmod(mine, 0o644)
            shared.write_text("old\n")
            os.chmod(shared, 0o664)
            for path in (mine, shared, new):
                write_lines(path, ["Kalo"])
        assert mine.read_text() == "Kalo\n"
        assert oct(mine.stat().st_mode & 0o777) == oct(0o644)
        assert oct(shared.stat().st_mode & 0o777) == oct(0o664)
        assert oct(new.stat().st_mode & 0o777) == oct(0o666 & ~mask)


class EndlessModel(torch.nn.Module):
    """A generator that never ends a name: "a" at +20, <eos> at -20."""

    def __init__(self, vocab: Vocab):
        super().__init__()
        self.v, self.eos, self.a = len(vocab), vocab.EOS, vocab.stoi["a"]

    def forward(self, ids, labels, lengths=None, state=None):
        logits = torch.zeros(ids.shape[0], ids.shape[1], self.v)
        logits[..., self.a], logits[..., self.eos] = 20.0, -20.0
        return logits, state


def test_a_name_cut_at_max_len_says_so():
    """Names that reached --max-len before the model ended them were shown as if whole (and counted new)."""
    vocab = Vocab.build([LETTERS])
    split = {"train": [["Kao", "Alpha"]], "val": [], "test": []}
    endless = LoadedRun(path=Path("hand-made"), config=TrainConfig(task="generate"), labels=["Alpha"], vocab=vocab,
                        model=EndlessModel(vocab), meta={})
    endless.__dict__["split"] = split
    got = endless.sample(n=3, temperature=0.0, max_len=3, seed=0)
    assert [(s["name"], s["cut"]) for s in got] == [("aaa", True)] * 3
    ending = LoadedRun(path=Path("hand-made"), config=TrainConfig(task="generate"), labels=["Alpha"], vocab=vocab,
                       model=EndingModel(vocab), meta={})
    ending.__dict__["split"] = split
    assert not any(s["cut"] for s in ending.sample(n=3, temperature=0.0, max_len=3, seed=0))


class LetterModel(torch.nn.Module):
    """A generator that never wants to end a name: 'a' at +20, every other symbol at 0 (names run to max-len)."""

    def __init__(self, vocab: Vocab):
        super().__init__()
        self.v, self.a = len(vocab), vocab.stoi["a"]

    def forward(self, ids, labels, lengths=None, state=None):
        logits = torch.zeros(ids.shape[0], ids.shape[1], self.v)
        logits[..., self.a] = 20.0
        return logits, state


def _generator(model) -> LoadedRun:
    vocab = Vocab.build([LETTERS])
    run = LoadedRun(path=Path("hand-made"), config=TrainConfig(task="generate"), labels=["Alpha", "Beta"],
                    vocab=vocab, model=model(vocab), meta={})
    run.__dict__["split"] = {"train": [["Kao", "Alpha"]], "val": [], "test": []}   # no run folder to read it from
    return run


def test_sampling_reports_its_progress_letter_by_letter_to_the_end():
    """sample -n 10000 ran for 40 s without a sign of life: sampling now reports (done, total) letter positions
    as it draws them, so the CLI can show a bar with an ETA. Reporting changes no sample."""
    from namestudio.engine.infer import sample_quality
    run = _generator(LetterModel)
    calls = []
    got = run.sample(n=3, max_len=6, start_letters="KM", seed=1, progress=lambda d, t: calls.append((d, t)))
    assert got == run.sample(n=3, max_len=6, start_letters="KM", seed=1)
    assert {t for _, t in calls} == {10}                    # 5 letters after each one-letter prefix, 2 prefixes
    assert [d for d, _ in calls] == sorted(d for d, _ in calls) and calls[-1] == (10, 10)
    assert {d for d, _ in calls} == set(range(1, 11))      # every letter position, in order
    # names that all end after one letter (the second position draws their ends): the rest of the positions are
    # skipped, and the count still reaches the total
    calls.clear()
    _generator(EndingModel).sample(n=4, max_len=24, seed=0, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 24), (2, 24), (24, 24)]
    # the temperature table: one count over every temperature
    calls.clear()
    sample_quality(run, [0.5, 1.0, 1.5], n=2, max_len=4, progress=lambda d, t: calls.append((d, t)))
    assert {t for _, t in calls} == {12} and calls[-1] == (12, 12)      # 4 positions, 3 temperatures
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_a_start_with_a_letter_the_run_never_saw_is_capitalised_like_names():
    """sample --start ÓB began every name "OB" (OBran, OBy) while --start OB began them "Ob": Ó, which the run never
    saw, turned capitalising off. Now ÓB is read Ob, and the note names the fold."""
    vocab = Vocab.build(["BKMObacehlnoruvy '-"])
    run = LoadedRun(path=Path("hand-made"), config=TrainConfig(task="generate"), labels=["Alpha"], vocab=vocab,
                    model=LetterModel(vocab), meta={})
    run.__dict__["split"] = {"train": [["Kao", "Alpha"]], "val": [], "test": []}
    assert run.read_start("OB")[0] == "Ob"
    text, notes = run.read_start("ÓB")
    assert text == "Ob" and notes == ["this run never saw Ó: read Ó as O"], notes
    assert {s["name"][:2] for s in run.sample(start="ÓB", n=3, max_len=5, seed=0)} == {"Ob"}

