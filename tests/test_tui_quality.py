"""Model quality in the TUI (issue 9): the Evaluate pane's reliability view and its test on another labelled
source, and the Generate pane's temperature table. Pilot tests on tiny runs trained once, in-process."""
from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import Input, Select

from namestudio.engine import runfolder as rf
from namestudio.engine.calibration import CALIBRATION
from namestudio.tui import keys
from namestudio.tui.panes.generate import TABLE_TEMPERATURES

from helpers import use_copy
from test_tui import SIZE, make_app, settle, wait_for, write_fixture


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """The fixture data, a tiny classifier and a tiny generator (a few seconds on one thread)."""
    from namestudio.data import load_dataset
    from namestudio.engine.config import TrainConfig
    from namestudio.engine.train import Trainer

    root = tmp_path_factory.mktemp("quality")
    ds = load_dataset(str(write_fixture(root / "names")))
    for task, epochs in (("classify", 3), ("generate", 2)):
        cfg = TrainConfig(task=task, model="lstm", embed=8, hidden=16, epochs=epochs, batch_size=16, lr=0.01,
                          seed=0, threads=1)
        Trainer(cfg, root / "ck", dataset=ds, run_dir=root / "ck" / f"tiny-{task}").run()
    return root


@pytest.fixture
def env(trained, tmp_path, monkeypatch):
    """A copy of the trained runs for this test (it may change them), the app, and the runs' folders."""
    use_copy(trained, tmp_path, monkeypatch)
    clf = (tmp_path / "ck" / "tiny-classify").resolve()
    return {"app": make_app(data="names"), "clf": clf, "gen": (tmp_path / "ck" / "tiny-generate").resolve(),
            "root": tmp_path}


def text_of(widget, width: int = 160) -> str:
    """What a Static shows, as plain text."""
    console = Console(width=width, file=io.StringIO(), color_system=None)
    console.print(widget.content)
    return console.file.getvalue()


def split_of(run: Path) -> dict:
    return json.loads((run / rf.SPLIT).read_text(encoding="utf-8"))


def mixed_source(env) -> tuple[Path, dict]:
    """A CSV: 4 names from the run's training split, 3 new names of its languages (one label in lower case)
    and 3 names under labels it never saw."""
    train = [tuple(p) for p in split_of(env["clf"])["train"][:4]]
    new = [("Uzkalug", "Orcish"), ("Grmivek", "dwarvish"), ("Pemiwen", "Alvish")]
    unknown = [("Xyza", "Klingon"), ("Qopa", "Vulcan"), ("Qepa", "Vulcan")]
    path = env["root"] / "extra-words.csv"      # x, t, r, d and o are pane keys: typed, they must stay in the field
    path.write_text("name,label\n" + "".join(f"{n},{lab}\n" for n, lab in train + new + unknown), encoding="utf-8")
    return path, {"train": len(train), "known": len(train) + len(new), "unknown": len(unknown)}


async def open_evaluate(pilot, app, run: Path):
    await pilot.press("3")
    pane = app.pane("evaluate")
    pane.load_run(str(run))
    await settle(pilot, app)
    assert pane.metrics and pane.shown_run == str(run)
    return pane


async def open_generate(pilot, app):
    await settle(pilot, app)
    await pilot.press("5")
    pane = app.pane("generate")
    await settle(pilot, app)
    assert pane.run is not None                # the tiny generator, found by itself
    return pane


async def type_source(pilot, app, text: str) -> Input:
    await pilot.press("d")
    field = app.query_one("#eval-data", Input)
    assert app.focused is field
    await pilot.press(*text)
    assert field.value == text                  # every letter went into the field
    await pilot.press("enter")
    await settle(pilot, app)
    return field


def headline(app) -> str:
    return text_of(app.query_one("#eval-headline"))


async def test_reliability_view_bins_sum_to_the_test_names_and_show_ece(env):
    app = env["app"]
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        pane = await open_evaluate(pilot, app, env["clf"])
        assert "confidence" not in text_of(app.query_one("#eval-cm"))     # the confusion matrix first
        await pilot.press("r")
        await settle(pilot, app)
        assert pane.view == "reliability"
        q = pane.quality[str(env["clf"])]
        n_test = len(split_of(env["clf"])["test"])
        assert q["n"] == n_test and sum(b["count"] for b in q["reliability"]["after"]) == n_test
        shown = text_of(app.query_one("#eval-cm"))
        rows = [line.split() for line in shown.splitlines() if line.split() and "–" in line.split()[0]]
        assert rows and sum(int(r[1]) for r in rows) == n_test              # one row per non-empty bin
        assert [r for r in shown.splitlines() if r.split()[:1] == ["all"]][0].split()[1] == str(n_test)
        saved = json.loads((env["clf"] / CALIBRATION).read_text())
        head = headline(app)
        assert f"ECE raw  {q['ece_before']:.3f}" in head and f"ECE at T {q['ece_after']:.3f}" in head
        assert f"{saved['temperature']:.2f}" in head
        note = text_of(app.query_one("#eval-per-class"))
        assert "T fitted on validation" in note and f"{saved['val_ece_before']:.3f} → {saved['val_ece_after']:.3f}" in note
        assert "c" not in [b.key for b in pane.screen.active_bindings.values() if b.binding.action == "toggle_counts"]
        await pilot.press("r")                 # back to the matrix
        await settle(pilot, app)
        assert pane.view == "confusion" and "confidence" not in text_of(app.query_one("#eval-cm"))


async def test_an_older_run_without_calibration_gets_its_temperature_fitted_and_not_saved(env):
    (env["clf"] / CALIBRATION).unlink()
    app = env["app"]
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        pane = await open_evaluate(pilot, app, env["clf"])
        await pilot.press("r")
        await settle(pilot, app)
        q = pane.quality[str(env["clf"])]
        assert q["calibration"]["saved"] is False and q["temperature"] > 0
        assert "fitted now" in text_of(app.query_one("#eval-per-class"))
        assert "ECE at T" in headline(app)
        assert not (env["clf"] / CALIBRATION).exists()     # the TUI only reads run folders


async def test_another_source_skips_unknown_labels_and_shows_its_metrics(env):
    app = env["app"]
    path, counts = mixed_source(env)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        pane = await open_evaluate(pilot, app, env["clf"])
        field = await type_source(pilot, app, path.name)
        assert pane.source == path.name and app.focused is not field
        assert not pane.exclude_train and pane.view == "confusion"      # the typed x and r fired nothing
        m = pane.metrics
        assert m["skipped_unknown"] == counts["unknown"] and m["unknown_labels"] == ["Klingon", "Vulcan"]
        assert m["n"] == counts["known"] and m["in_train"] == counts["train"]
        title = str(app.query_one("#eval-title").render())
        assert f"{path.name}: {counts['known'] + counts['unknown']} rows (name, label)" in title
        assert f"{counts['unknown']} skipped" in title and "Klingon, Vulcan" in title
        assert f"{counts['train']} in its training split, counted" in title
        head = headline(app)
        for word in ("accuracy", "balanced", "macro-F1", "ECE"):
            assert word in head
        assert re.search(r"^\s*n\s+(\d+)", head, re.M).group(1) == str(counts["known"])
        assert "Dwa" in text_of(app.query_one("#eval-cm"))               # its confusion matrix
        await pilot.press("r")                 # the reliability view of that source: its own bins
        await settle(pilot, app)
        shown = text_of(app.query_one("#eval-cm"))
        assert [r for r in shown.splitlines() if r.split()[:1] == ["all"]][0].split()[1] == str(counts["known"])


async def test_exclude_train_changes_the_counted_names_and_t_goes_back(env):
    app = env["app"]
    path, counts = mixed_source(env)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        pane = await open_evaluate(pilot, app, env["clf"])
        own_n = pane.metrics["n"]
        await type_source(pilot, app, path.name)
        assert pane.metrics["n"] == counts["known"]
        await pilot.press("x")
        await settle(pilot, app)
        assert pane.exclude_train and pane.metrics["n"] == counts["known"] - counts["train"]
        assert pane.metrics["excluded_train"] == counts["train"]
        assert "excluded" in str(app.query_one("#eval-title").render())
        await pilot.press("x")
        await settle(pilot, app)
        assert not pane.exclude_train and pane.metrics["n"] == counts["known"]
        await pilot.press("t")                 # back to the run's own test split
        await settle(pilot, app)
        assert pane.source is None and pane.metrics["n"] == own_n
        assert str(app.query_one("#eval-title").render()).startswith("Test split")
        assert not app.query_one("#eval-source-row").display
        await pilot.press("x")                 # only with another source: nothing happens
        await settle(pilot, app)
        assert pane.source is None and not pane.exclude_train


async def test_a_shown_run_trained_on_since_is_read_again(env):
    """A run shown here and then trained further (`train --resume RUN --epochs 7` elsewhere) kept its first test
    figures on the pane (and r / r again swapped between the new and the old ones): it is read again when its
    listing says it changed, here or on the way back from another source."""
    app = env["app"]
    path, _ = mixed_source(env)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await wait_for(pilot, lambda: any(Path(r["path"]).resolve() == env["clf"] for r in app.runs))
        listed = next(r["path"] for r in app.runs if Path(r["path"]).resolve() == env["clf"])  # as Run: offers it
        pane = await open_evaluate(pilot, app, listed)
        before = pane.metrics["accuracy"]

        def trained_on(accuracy):           # what a resume's end leaves: new test figures, more seconds
            record = json.loads((env["clf"] / rf.TEST).read_text())
            record["test"]["accuracy"] = accuracy
            record["train_seconds"] = (record.get("train_seconds") or 0) + 1
            rf.atomic_write_json(env["clf"] / rf.TEST, record)

        trained_on(before / 2)
        app.refresh_runs()
        await wait_for(pilot, lambda: pane.metrics and pane.metrics["accuracy"] == before / 2)
        assert str(env["clf"]) not in pane.quality or pane.quality[str(env["clf"])].get("n")   # none kept stale
        await type_source(pilot, app, path.name)             # another source shown, then the run changes again
        trained_on(before / 4)
        app.refresh_runs()
        await wait_for(pilot, lambda: pane.own is None)
        await pilot.press("t")
        await wait_for(pilot, lambda: pane.source is None and pane.metrics and
                       pane.metrics["accuracy"] == before / 4)


async def test_a_bad_source_keeps_the_focus_in_the_field_with_an_error(env):
    app = env["app"]
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        pane = await open_evaluate(pilot, app, env["clf"])
        field = await type_source(pilot, app, "/nope/dx.csv")
        title = str(app.query_one("#eval-title").render())
        assert "Could not test on /nope/dx.csv" in title and "Still showing its own split" in title
        assert app.focused is field and field.selected_text == "/nope/dx.csv"
        await pilot.press(*"xrt")              # typed over the selection: no pane key fires
        await settle(pilot, app)
        assert field.value == "xrt" and app.focused is field
        assert pane.view == "confusion" and pane.source is None and not pane.exclude_train
        field.value = ""
        await pilot.press(*"builtin", "enter")  # a source whose labels the run never saw: one line, not a crash
        await settle(pilot, app)
        assert "none of its labels is known to the run" in str(app.query_one("#eval-title").render())
        assert app.focused is field and pane.source is None


async def test_the_temperature_table_has_a_row_per_temperature(env):
    app = env["app"]
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_generate(pilot, app)
        assert pane.run is not None and pane.classifier is not None    # the tiny runs, found by themselves
        assert text_of(app.query_one("#gen-quality")).strip() == ""     # only on request
        await pilot.press("t")                 # typed into the start field: a letter, not the key
        assert app.query_one("#gen-start", Input).value == "t" and not pane.table_shown
        app.query_one("#gen-start", Input).value = ""
        await pilot.press("escape")
        pane.action_quality_table()
        assert "computing" in text_of(app.query_one("#gen-quality"))   # shown at once, filled by the worker
        await settle(pilot, app)
        await wait_for(pilot, lambda: not pane.table_busy, 60)
        rows = pane.table_rows
        assert [r["temperature"] for r in rows] == list(TABLE_TEMPERATURES)
        for r in rows:
            for k in ("novelty", "uniqueness", "agreement"):
                assert 0.0 <= r[k] <= 1.0, (k, r)
        shown = text_of(app.query_one("#gen-quality"))
        lines = [line.split() for line in shown.splitlines()]
        table = [w for w in lines if w and w[0] in {f"{t:.1f}" for t in TABLE_TEMPERATURES}]
        assert [w[0] for w in table] == [f"{t:.1f}" for t in TABLE_TEMPERATURES]
        assert all(len(w) == 4 and all(c.endswith("%") for c in w[1:]) for w in table)   # new, unique, agrees
        # a change of language leaves the table as it was, marked, until t asks again
        lang = app.query_one("#gen-lang", Select)
        other = next(v for _, v in lang._options if v != lang.value and v != Select.NULL)
        lang.value = other
        await settle(pilot, app)
        assert pane.table_rows == rows and "settings before" in text_of(app.query_one("#gen-quality"))
        await pilot.press("t")
        await settle(pilot, app)
        await wait_for(pilot, lambda: not pane.table_busy, 60)
        assert pane.table_key[1] == other and other in text_of(app.query_one("#gen-quality"))
        await pilot.press("t")                 # up to date: t hides it
        assert not pane.table_shown and text_of(app.query_one("#gen-quality")).strip() == ""


def test_the_quality_keys_have_help_and_do_not_clash():
    app_keys = {k for b in keys.APP for k in b.key.split(",")}
    for pane in ("evaluate", "generate"):
        bound = [k for b in keys.BY_PANE[pane] for k in b.key.split(",")]
        assert len(bound) == len(set(bound)), bound
        assert not set(bound) & app_keys
    ids = {b.id for b in keys.EVALUATE + keys.GENERATE}
    for want in ("eval.reliability", "eval.data", "eval.exclude", "eval.own", "gen.table"):
        assert f"namestudio.{want}" in ids
    for b in keys.EVALUATE + keys.GENERATE:
        assert b.description and b.tooltip and b.priority


async def test_a_run_that_fails_to_load_leaves_nothing_of_the_run_shown_before(env, tmp_path):
    app = env["app"]
    broken = tmp_path / "ck" / "broken-classify"
    import shutil
    shutil.copytree(env["clf"], broken)
    (broken / rf.TEST).unlink()                        # so the pane must load the weights ...
    (broken / rf.WEIGHTS).unlink()                     # ... which are gone
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        pane = await open_evaluate(pilot, app, env["clf"])
        assert text_of(app.query_one("#eval-cm")).strip()
        pane.load_run(str(broken))
        await settle(pilot, app)
        assert "broken-classify" in str(app.query_one("#eval-title").render()) and "weights" in \
            str(app.query_one("#eval-title").render())
        assert pane.metrics is None and pane.shown_run is None
        for wid in ("#eval-cm", "#eval-headline", "#eval-per-class"):
            assert not text_of(app.query_one(wid)).strip(), wid


@pytest.mark.parametrize("fid, value, said", [("gen-topk", "-3", "Top-k must be 0 (all letters)"),
                                              ("gen-count", "99999", "Count must be between 1 and"),
                                              ("gen-temp", "-1", "Temp must be between 0")])
async def test_a_bad_generate_field_is_named_and_samples_nothing(env, fid, value, said):
    """The field's label, not the CLI option's name after it ("Count: n must be …", "Top-k: top-k must be …")."""
    app = env["app"]
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_generate(pilot, app)
        assert pane.run is not None
        before = list(pane.samples)
        app.query_one(f"#{fid}", Input).value = value
        pane.action_resample()
        await settle(pilot, app)
        assert said in text_of(app.query_one("#gen-summary")) and pane.samples == before


async def test_one_sample_is_counted_in_the_singular(env):
    """Count 1 on the Generate pane said "1 samples from …"."""
    app = env["app"]
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_generate(pilot, app)
        app.query_one("#gen-count", Input).value = "1"
        pane.action_resample()
        await wait_for(pilot, lambda: len(pane.samples) == 1, 60)
        await settle(pilot, app)
        summary = text_of(app.query_one("#gen-summary"), width=200)
        assert f"1 sample from {pane.run.path.name}" in summary and "1 samples" not in summary, summary


async def test_many_samples_draw_the_first_rows_and_count_them_all(env):
    """Textual draws a Rich table whole (10,000 sampled names froze the screen for seconds): the pane draws the
    first SHOWN_MAX rows and says how many more there are; its counts cover every sample."""
    from namestudio.tui.panes.generate import SHOWN_MAX

    app = env["app"]
    n = SHOWN_MAX + 57
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_generate(pilot, app)
        app.query_one("#gen-count", Input).value = str(n)
        pane.action_resample()
        await wait_for(pilot, lambda: len(pane.samples) == n, 60)
        await settle(pilot, app)
        shown = text_of(app.query_one("#gen-samples"), width=200)
        drawn = [s["name"] for s in pane.samples[:SHOWN_MAX]]
        assert all(name in shown for name in drawn if name)
        assert f"… and {n - SHOWN_MAX} more" in shown and f"namestudio sample {pane.run.path.name} -n {n} --temperature" in shown
        assert f"{n} samples from" in text_of(app.query_one("#gen-summary"), width=200)


async def test_the_ui_answers_while_a_prediction_is_under_way(env):
    """Classify predicts in a worker: a first prediction with no saved calibration fits the temperature (seconds),
    and each letter typed costs tens of milliseconds. Keys work meanwhile."""
    import threading

    app = env["app"]
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("4")
        pane = app.pane("classify")
        await wait_for(pilot, lambda: pane.run is not None, 30)
        gate, waiting = threading.Event(), []
        real = pane.run.classify

        def slow(*a, **kw):
            waiting.append(1)
            gate.wait(3)
            waiting.pop()
            return real(*a, **kw)

        pane.run.classify = slow
        await pilot.press(*"Nak")
        await pilot.press("escape", "3")                     # pane keys while the predictions wait
        assert app.query_one("#panes").active == "evaluate" and waiting, "the key waited for the prediction"
        await pilot.press("4")
        app.query_one("#clf-name", Input).value = ""           # cleared while they wait: nothing is on its way
        await pilot.pause()
        assert not pane.busy and pane.results == []
        app.query_one("#clf-name", Input).value = "Nak"
        await pilot.pause()
        assert pane.busy
        gate.set()
        await wait_for(pilot, lambda: not pane.busy, 30)
        assert pane.results and pane.attribution[0] == pane.results[0][0]
        assert len(pane.attribution[1]) == len("Nak")


@pytest.mark.parametrize("length", [26, 70])
async def test_a_start_too_long_for_the_generate_pane_says_how_long_a_start_may_be_there(env, length):
    """The Generate pane has no max-len field (its names end at 24), yet a start of 24 letters or more typed
    there was told "max-len 24 leaves no room; raise max-len to 27 or more" (or, past 64, "one less than the
    highest max-len"): the words of `sample --max-len`. The pane says how long a start may be there; the
    temperature table (t) says the same; `sample` keeps its own words (tests/test_infer.py)."""
    app = env["app"]
    name = next(n for n, _ in split_of(env["gen"])["train"] if n.isalpha())
    start = (name.lower() * length)[:length]       # letters the run has seen
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_generate(pilot, app)
        field = app.query_one("#gen-start", Input)
        field.focus()
        await pilot.press(*start)
        assert field.value == start                # every letter went into the field
        await pilot.press("enter")
        await settle(pilot, app)
        said = text_of(app.query_one("#gen-summary"), width=300).strip()
        shown = (start[0].upper() + start[1:])[:20] + "…"
        assert said == (f"start {shown!r} is {length} letters: a start here may be at most 23 letters, one less "
                        f"than the 24 a name here may have"), said
        assert "max-len" not in said and pane.samples == []
        await pilot.press("escape")
        pane.action_quality_table()
        await wait_for(pilot, lambda: not pane.table_busy, 60)
        await settle(pilot, app)
        assert pane.table_error == said


@pytest.mark.parametrize("start, note", [("Úz", "this run never saw Ú: read Ú as U"),     # the fixture has no O
                                         ("uz'", "digits and punctuation left out")])
async def test_the_generate_pane_says_how_a_start_was_read(env, start, note):
    """A start typed as Ω gave names starting "O…", and o' lost its apostrophe, with no word why; `namestudio
    sample --start` says so (LoadedRun.read_start's notes). The pane shows the same notes under its summary,
    and none for a start read as typed."""
    from namestudio.engine.infer import load_run

    notes = load_run(env["gen"]).read_start(start)[1]
    assert notes and any(note in n for n in notes)       # the CLI's words, which the pane repeats
    app = env["app"]
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_generate(pilot, app)
        field = app.query_one("#gen-start", Input)
        field.value = start
        field.focus()
        await pilot.press("enter")
        await settle(pilot, app)
        assert pane.samples
        said = text_of(app.query_one("#gen-summary"), width=300)
        for n in notes:
            assert f"note: start {start!r}: {n}" in said, said
        pane.check_samples()                              # the same samples checked again keep their notes
        await settle(pilot, app)
        assert f"note: start {start!r}: {notes[0]}" in text_of(app.query_one("#gen-summary"), width=300)
        pane.action_quality_table()                       # the temperature table (t) says it too, as sample --table
        await wait_for(pilot, lambda: not pane.table_busy, 60)
        await settle(pilot, app)
        table = text_of(app.query_one("#gen-quality"), width=300)
        assert pane.table_rows and not pane.table_error
        for n in notes:
            assert f"note: start {start!r}: {n}" in table, table
        field.value = ""
        field.focus()
        await pilot.press("enter")
        await settle(pilot, app)
        assert pane.samples and "note:" not in text_of(app.query_one("#gen-summary"), width=300)
        pane.action_quality_table()                       # a start read as typed (none): no note
        await wait_for(pilot, lambda: not pane.table_busy, 60)
        await settle(pilot, app)
        assert pane.table_rows and "note:" not in text_of(app.query_one("#gen-quality"), width=300)


def test_compare_samples_say_how_a_start_letter_was_read(env):
    """Compare's Samples view sampled names for a start letter Ú as U with no word why (engine samples_table
    dropped read_start's notes). Its notes, shown under the table, now say so as `sample --start-letters` does;
    a letter read as typed has none."""
    from namestudio.engine.experiment import samples_table
    from namestudio.tui.panes.compare import samples_renderable

    table = samples_table(env["gen"], 0.8, "ÚG", n=1, seed=0)
    assert table["letters"] == ["Ú", "G"]
    assert table["notes"] == ["start letter 'Ú': this run never saw Ú: read Ú as U"], table["notes"]
    assert all(r["samples"]["Ú"][0].startswith("U") for r in table["rows"])
    console = Console(width=200, file=io.StringIO(), color_system=None)
    console.print(samples_renderable([("tiny", table, "")]))
    assert "tiny: start letter 'Ú': this run never saw Ú: read Ú as U" in console.file.getvalue()
    assert samples_table(env["gen"], 0.8, "G", n=1, seed=0)["notes"] == []


@pytest.mark.parametrize("start", ["uz'", "Uzka"])
async def test_the_generate_pane_command_is_shell_quoted(env, start):
    """The command the Generate pane suggests ("… --start o' --out names.txt") was not shell-quoted: pasted,
    it left an open quote, and a start or language with a space was cut in two. Each argument is quoted where
    it needs it, and a plain one is left as it is."""
    import shlex

    app = env["app"]
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_generate(pilot, app)
        app.query_one("#gen-start", Input).value = start
        app.query_one("#gen-count", Input).value = "3"
        pane.action_resample()
        await settle(pilot, app)
        assert pane.samples
        command = pane._sample_command()
        args = shlex.split(command)                  # would raise on an open quote
        assert args[args.index("--start") + 1] == start and args[-2:] == ["--out", "names.txt"]
        assert args[2] == env["gen"].name or args[2].endswith("/" + env["gen"].name)
        if start == "Uzka":
            assert f"--start {start} --out" in command      # plain: as it was
        pane.run.path = env["root"] / "my run"              # a run name, or a language, with a space: one argument
        pane.query_one("#gen-lang", Select).set_options([("Old Orcish", "Old Orcish")])
        pane.query_one("#gen-lang", Select).value = "Old Orcish"
        args = shlex.split(pane._sample_command())
        assert args[2] == "my run" and args[args.index("--lang") + 1] == "Old Orcish"


def log_lines(app) -> list[str]:
    """The Train pane's log, a long line wrapped there (indented) made one again."""
    out: list[str] = []
    for x in map(str, app.query_one("#eval-log").lines):
        if x.startswith("    ") and out:
            out[-1] += " " + x.strip()
        else:
            out.append(x)
    return out


def words(line: str) -> str:
    return " ".join(line.replace("…", "...").split())


@pytest.mark.parametrize("task", ["classify", "generate"])
async def test_the_train_pane_log_says_the_n_gram_blend_before_the_test_line(env, task):
    """After a run ended, the Train pane's log went from the last validation figure to "Done … test acc 0.858"
    (or "test NLL …") with no word of the n-gram blend (mix) that explains the jump. The line `train` prints,
    from the blend report in test_metrics.json, now comes just before the Done line; a run with no blend
    (lm_order 0) shows nothing new."""
    from namestudio.engine.blend import describe

    run = env["clf" if task == "classify" else "gen"]
    blend = rf.read_test(run)["test"]["lm_blend"]
    said = f"{describe(blend, narrow=True)} · {blend.get('seconds', 0):.1f} s"   # in parts: at 80 columns its lines were scraps
    assert said.startswith("n-gram blend" if task == "classify" else "n-gram mix")
    app = env["app"]
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("2")                  # the log is read where it is shown (it wraps at its own width)
        pane = app.pane("train")
        app.follower.attach(run)
        await wait_for(pilot, lambda: pane.run_dir == str(run) and pane.state == "done", 30)
        await pilot.pause(0.2)
        lines = log_lines(app)
        done = next(i for i, x in enumerate(lines) if x.startswith("Done"))
        assert words(lines[done - 1]) == words(said), lines[-4:]
        raw = [str(x).strip() for x in app.query_one("#eval-log").lines]   # wrapped between its parts only
        assert all(any(part in x for x in raw) for part in said.split(" · ")), raw[-5:]
        assert sum(x.startswith("n-gram") for x in lines) == 1
        # the same run without its blend (as lm_order 0 leaves it): the Done line follows the validation line
        plain = run.with_name(run.name + "-plain")
        shutil.copytree(run, plain)
        test = json.loads((plain / rf.TEST).read_text(encoding="utf-8"))
        del test["test"]["lm_blend"]
        (plain / rf.TEST).write_text(json.dumps(test), encoding="utf-8")
        app.follower.attach(plain)
        await wait_for(pilot, lambda: pane.run_dir == str(plain) and pane.state == "done", 30)
        await pilot.pause(0.2)
        lines = log_lines(app)
        done = max(i for i, x in enumerate(lines) if x.startswith("Done"))
        assert not lines[done - 1].startswith("n-gram"), lines[-4:]
        # followed while another pane is shown: the lines wrap at the log's own width once it is shown (they were
        # wrapped at the screen's width less 4 and ran past the log's edge beside the form, "valida…")
        await pilot.press("1")
        app.follower.attach(run)
        await wait_for(pilot, lambda: pane.run_dir == str(run) and pane.state == "done", 30)
        await pilot.press("2")
        await pilot.pause(0.2)
        log = app.query_one("#eval-log")
        shown = list(map(str, log.lines))
        assert any(x.startswith("n-gram") for x in shown)
        assert all(len(x) <= log.scrollable_content_region.width for x in shown), shown


async def test_the_generate_summary_counts_add_up_and_break_only_between_parts(env):
    """A sample that is only the start letters ("Q'x" typed as the start) was counted nowhere: "10 samples …
    9 new, 0 in the training set". It is counted now, in the words of `namestudio sample`; and the summary breaks
    only between its " · " parts (it wrapped "classifier agrees" / "on 100%" at 100 columns)."""
    app = env["app"]
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await open_generate(pilot, app)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: bool(pane.samples), 60)
        await settle(pilot, app)
        only = {**pane.samples[0], "name": "Qx", "start": "Qx", "new": False, "in_training": False, "repeat": False}
        pane.samples = [only, *pane.samples[1:]]
        pane._refresh_view()
        await settle(pilot, app)
        new = sum(bool(s["new"]) for s in pane.samples)
        seen = sum(bool(s["in_training"]) for s in pane.samples)
        repeats = sum(bool(s["repeat"]) and not s["in_training"] for s in pane.samples)
        said = text_of(app.query_one("#gen-summary"), width=300)
        prefix = len(pane.samples) - new - seen - repeats
        assert prefix >= 1 and f"{prefix} only the prefix" in said, said
        assert new + seen + repeats + prefix == len(pane.samples)
        whole = [f"{len(pane.samples)} samples from {Path(pane.run.path).name}",
                 f"{new} new, {seen} in the training set" + (f", {repeats} repeated" if repeats else "")
                 + f", {prefix} only the prefix"]
        if pane.classifier is not None:
            from namestudio.engine.infer import agreement_words, judged
            whole.append(agreement_words(pane.agreement, judged(pane.samples), len(pane.samples)))
        for width in (100, 60, 40):                 # each line holds whole parts, whatever the width
            await pilot.resize_terminal(width, 30)
            await settle(pilot, app)
            lines = [line.strip() for line in text_of(app.query_one("#gen-summary"), width=300).splitlines()
                     if line.strip()]
            assert [p for line in lines for p in line.split(" · ")] == whole, (width, lines)
