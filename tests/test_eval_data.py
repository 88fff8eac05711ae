import json

import pytest

from helpers import tiny_names, write_names_folder
from namestudio.tui.cli import main


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaldata")
    data = write_names_folder(root / "names")
    ck = root / "ck"
    code = main([str(a) for a in ["train", "--data", data, "--checkpoints", ck, "--embed", 8, "--hidden", 16,
                                  "--epochs", 3, "--batch-size", 16, "--lr", 0.01, "--threads", 1]])
    assert code == 0
    return {"data": data, "ck": ck, "run": next(ck.iterdir()), "root": root}


def source_with_unknown_labels_and_training_names(env):
    """A CSV: 5 names of a language the run never saw, 6 names from the run's training split, 4 new names."""
    split = json.loads((env["run"] / "split.json").read_text())
    train = [tuple(p) for p in split["train"][:6]]
    new = [("Zorikov", "Slavic"), ("Pellasson", "Nordic"), ("McZoravi", "Gaelic"), ("Bekarov", "slavic")]
    unknown = [(f"Xyz{c}a", "Klingon") for c in "abc"] + [("Qopa", "Vulcan"), ("Qepa", "Vulcan")]
    path = env["root"] / "mixed.csv"
    path.write_text("name,label\n" + "".join(f"{n},{lab}\n" for n, lab in train + new + unknown), encoding="utf-8")
    return path


def test_eval_data_reports_unknown_labels_and_counts_training_names(env, capsys):
    src = source_with_unknown_labels_and_training_names(env)
    code, out, _ = run_cli(capsys, "eval", env["run"], "--data", src, "--json")
    assert code == 0
    m = json.loads(out.strip().splitlines()[-1])
    assert m["skipped_unknown"] == 5 and m["unknown_labels"] == ["Klingon", "Vulcan"]
    assert m["in_train"] == 6 and m["excluded_train"] == 0
    assert m["n"] == 10  # 6 training names + 4 new ones ("slavic" matches Slavic)
    assert sum(map(sum, m["confusion"])) == 10
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "per_class", "ece_before", "ece_after", "temperature"):
        assert key in m
    bins = m["reliability"]["after"]
    assert len(bins) == 15 and sum(b["count"] for b in bins) == 10
    assert (env["run"] / "calibration.json").is_file()  # fitted on first use
    # the human form says the same in words
    code, out, _ = run_cli(capsys, "eval", env["run"], "--data", src)
    assert "skipped 5 rows" in out and "Klingon, Vulcan" in out
    assert "6 rows (name, label) have a name in the run's training split (under any label)" in out
    fresh = env["root"] / "fresh.csv"             # none of its names trained the run: said so, with no advice
    fresh.write_text("name,label\nZorikov,Slavic\nPellasson,Nordic\n", encoding="utf-8")
    code, out, _ = run_cli(capsys, "eval", env["run"], "--data", fresh)
    assert code == 0 and "no row has a name in the run's training split (under any label)" in out
    assert "0 rows" not in out and "--exclude-train" not in out


def test_eval_data_exclude_train_drops_the_overlap(env, capsys):
    src = source_with_unknown_labels_and_training_names(env)
    code, out, _ = run_cli(capsys, "eval", env["run"], "--data", src, "--exclude-train", "--json")
    assert code == 0
    m = json.loads(out.strip().splitlines()[-1])
    assert m["n"] == 4 and m["excluded_train"] == 6 and m["in_train"] == 6


def test_eval_data_with_nothing_known_is_one_line(env, capsys, tmp_path):
    src = tmp_path / "alien.csv"
    src.write_text("name,label\nQopa,Vulcan\nQepa,Vulcan\n", encoding="utf-8")
    code, out, err = run_cli(capsys, "eval", env["run"], "--data", src)
    assert code == 1
    assert err.startswith("namestudio: error:") and "nothing to evaluate" in err and len(err.strip().splitlines()) == 1


def test_eval_data_on_the_whole_training_source_with_exclude_train(env, capsys):
    code, out, _ = run_cli(capsys, "eval", env["run"], "--data", env["data"], "--exclude-train", "--json")
    assert code == 0
    m = json.loads(out.strip().splitlines()[-1])
    total = sum(len(v) for v in tiny_names().values())
    split = json.loads((env["run"] / "split.json").read_text())
    assert m["in_train"] == len(split["train"]) and m["n"] == total - len(split["train"])
    # what is left holds the validation names, on which the checkpoint was chosen: counted and said
    assert m["in_val"] == len({n for n, _ in split["val"]}) > 0
    code, out, _ = run_cli(capsys, "eval", env["run"], "--data", env["data"], "--exclude-train")
    assert f"{m['in_val']} rows (name, label) evaluated are in the run's validation split" in out


def test_exclude_train_without_data_is_an_error(env, capsys):
    code, _, err = run_cli(capsys, "eval", env["run"], "--exclude-train")
    assert code == 1 and "--exclude-train needs --data" in err


def test_a_generator_is_scored_on_the_letters_it_never_saw(env, capsys, tmp_path):
    """eval --data on a generator charges it for an unseen letter (read as <unk>, as the trainer's test reads it),
    rather than scoring the ASCII fold of the name, which would be a different, easier name."""
    import torch
    from namestudio.engine.batches import encode
    from namestudio.engine.infer import load_run
    from namestudio.engine.train import evaluate
    ck = tmp_path / "gck"
    assert main([str(a) for a in ["train", "--task", "generate", "--data", env["data"], "--checkpoints", ck,
                                  "--embed", 8, "--hidden", 16, "--epochs", 1, "--batch-size", 16, "--threads", 1,
                                  "--lm-order", 0]]) == 0
    capsys.readouterr()
    run_dir = next(ck.iterdir())
    run = load_run(run_dir)
    assert "ü" not in run.vocab.stoi and "u" in run.vocab.stoi
    pairs = [("Bübarov", "Slavic"), ("Küsson", "Nordic")]
    src = tmp_path / "umlauts.csv"
    src.write_text("name,label\n" + "".join(f"{n},{lab}\n" for n, lab in pairs), encoding="utf-8")
    code, out, _ = run_cli(capsys, "eval", run_dir, "--data", src, "--json")
    assert code == 0
    m = json.loads(out.strip().splitlines()[-1])
    index = {lab: i for i, lab in enumerate(run.labels)}
    def nll(ps):
        return evaluate(run.model, encode(ps, run.vocab, index, "generate"), "generate", run.labels,
                        torch.device("cpu"))["nll"]
    folded = nll([(n.replace("ü", "u"), lab) for n, lab in pairs])
    assert m["nll"] == pytest.approx(nll(pairs), rel=1e-6)
    assert abs(m["nll"] - folded) > 1e-4   # the folded name is another name, with another score


def test_macro_f1_counts_a_label_predicted_for_names_of_others():
    """True A A B B, predicted A C B B: F1 is A 2/3, B 1, C 0 (predicted once, never right). Averaged over the
    labels that occur alone (A, B) it read 0.83, above what the predictions earn; balanced accuracy is a mean of
    recalls over the labels that occur, (0.5 + 1) / 2."""
    import torch
    from namestudio.engine.metrics import classification_report
    cm = torch.tensor([[1, 0, 1], [0, 2, 0], [0, 0, 0]])          # rows: true A, B, C; columns: predicted
    m = classification_report(cm, ["A", "B", "C"])
    assert m["macro_f1"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert m["balanced_accuracy"] == pytest.approx(0.75) and m["accuracy"] == pytest.approx(0.75)
    unused = classification_report(torch.tensor([[1, 1, 0], [0, 2, 0], [0, 0, 0]]), ["A", "B", "C"])
    assert unused["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)   # C neither occurs nor is predicted: out


def test_the_evaluate_pane_says_how_many_names_are_from_the_validation_split():
    from namestudio.tui.panes.evaluate import source_header
    m = {"n_source": 40, "in_train": 6, "excluded_train": 6, "in_val": 3}
    assert source_header("x.csv", m).endswith("6 in its training split, excluded (x counts them) · 3 in its "
                                              "validation split, counted (its checkpoint was chosen on them)")
    assert "validation" not in source_header("x.csv", {**m, "in_val": 0})
    assert source_header("x.csv", m).startswith("x.csv: 40 rows (name, label) · ")   # rows: a name may have two labels


def _tiny_run(tmp_path, names: dict, *options):
    """A folder of <Label>.txt with these names, and a small classifier trained on it: (the folder, the run)."""
    data = tmp_path / "names"
    data.mkdir()
    for label, ns in names.items():
        (data / f"{label}.txt").write_text("\n".join(ns) + "\n", encoding="utf-8")
    ck = tmp_path / "ck"
    assert main([str(a) for a in ["train", "--data", data, "--checkpoints", ck, "--embed", 8, "--hidden", 8,
                                  "--epochs", 1, "--batch-size", 32, "--threads", 1, "--lm-order", 0, *options]]) == 0
    return data, next(ck.iterdir())


@pytest.mark.parametrize("fold", [[], ["--ascii"]])
def test_eval_data_on_the_runs_own_source_counts_exactly_its_split_rows(tmp_path, capsys, fold):
    """eval --data on the source a run was trained on said 14,401 rows in its training split and 1,816 in its
    validation split for pytorch-names (14,400 and 1,817 there): it looked each name up as the model reads it
    ('an' read as 'An', a training name; 'Maçon', with a letter only the validation split has, read as
    'Macon'), not as the split holds it. Names written in small letters and names with a letter the rest never
    use make those readings differ here. A run trained --ascii holds its names folded: the source is read so too."""
    names = tiny_names()
    names["Slavic"] += [n.lower() for n in names["Slavic"][:12]] + ["Zokač", "Pečov", "Ražov", "Gičov"]
    names["Nordic"] += [n.lower() for n in names["Nordic"][:12]] + ["Kåsson", "Måsson", "Dåsson", "Tåsson"]
    data, run = _tiny_run(tmp_path, names, *fold)
    split = json.loads((run / "split.json").read_text())
    capsys.readouterr()
    code, out, _ = run_cli(capsys, "eval", run, "--data", data, "--json")
    m = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and m["n"] == sum(len(split[k]) for k in ("train", "val", "test"))
    assert (m["in_train"], m["in_val"]) == (len(split["train"]), len(split["val"]))
    code, out, _ = run_cli(capsys, "eval", run, "--data", data)
    assert f"{len(split['train'])} rows (name, label) have a name in the run's training split" in " ".join(out.split())


def _rendered(*renderables, width=120):
    import io

    from rich.console import Console
    con = Console(width=width, file=io.StringIO(), color_system=None)
    for r in renderables:
        con.print(r)
    return con.file.getvalue()


def test_the_per_class_table_lists_the_labels_the_macro_metrics_average_over():
    """eval --data on a source of a few languages listed every label of the run, those with no names in it as
    rows of zeros (n 0). The table now lists the labels macro-F1 averages over: those with names, and one
    predicted for names of others (n 0, recall '–', F1 0), which the caption explains; a label with no names
    that is never predicted is left out and counted in the caption."""
    import torch

    from namestudio.engine.metrics import classification_report
    from namestudio.tui.render import per_class_table
    # true A A B B, predicted A C B B; D neither occurs nor is predicted
    m = classification_report(torch.tensor([[1, 0, 1, 0], [0, 2, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]),
                              ["Alpha", "Beta", "Gamma", "Delta"])
    text = _rendered(per_class_table(m))
    rows = {cells[0]: cells[1:] for cells in ([c for c in line.split() if c != "│"] for line in text.splitlines())
            if cells[:1] in (["Alpha"], ["Beta"], ["Gamma"], ["Delta"])}
    assert set(rows) == {"Alpha", "Beta", "Gamma"}
    assert rows["Gamma"][1] == "–" and rows["Gamma"][-1] == "0"
    f1s = [float(cells[-2]) for cells in rows.values()]
    assert m["macro_f1"] == pytest.approx(sum(f1s) / len(f1s), abs=0.01)
    caption = " ".join(text.split())
    assert "left out: 1 label with no names here, never predicted" in caption and "n 0: no names here" in caption
    from namestudio.tui.render import confusion_table
    cm = m["confusion"] if "confusion" in m else [[1, 0, 1, 0], [0, 2, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    seen = " ".join(_rendered(confusion_table(cm, ["Alpha", "Beta", "Gamma", "Delta"], only_seen=True)).split())
    assert "Del" not in seen and "Gam" in seen and "left out: 1 label with no names here, never predicted" in seen
    assert "Del" in _rendered(confusion_table(cm, ["Alpha", "Beta", "Gamma", "Delta"]))   # the whole matrix
    compact = _rendered(per_class_table(m, compact=True))
    assert "Del" not in compact and "Gam" in compact
    assert "n 0: only predicted" in " ".join(compact.split()) and "1 without names left out" in " ".join(compact.split())
    # a run's own test split, every label with names: every label listed, no caption
    full = classification_report(torch.tensor([[2, 0], [1, 3]]), ["Alpha", "Beta"])
    text = _rendered(per_class_table(full))
    assert "Alpha" in text and "Beta" in text and "left out" not in text and "n 0" not in text


def test_eval_data_of_one_language_lists_only_the_labels_it_uses(env, capsys):
    split = json.loads((env["run"] / "split.json").read_text())
    src = env["root"] / "slavic.csv"
    src.write_text("name,label\n" + "".join(f"{n},{lab}\n" for n, lab in split["test"] if lab == "Slavic"),
                   encoding="utf-8")
    code, out, _ = run_cli(capsys, "eval", env["run"], "--data", src, "--json")
    m = json.loads(out.strip().splitlines()[-1])
    predicted = [sum(col) for col in zip(*m["confusion"])]
    listed = [lab for i, (lab, c) in enumerate(m["per_class"].items()) if c["support"] or predicted[i]]
    assert code == 0 and "Slavic" in listed and len(listed) < len(m["per_class"])
    code, out, _ = run_cli(capsys, "eval", env["run"], "--data", src)
    table = out[out.index("Per class"):]
    for lab in m["per_class"]:
        assert (f"\n{lab} " in table) == (lab in listed), (lab, table)
    assert "left out: " in " ".join(table.split())


def test_eval_scores_a_labelled_name_in_its_own_case_as_the_trainer_did(tmp_path, capsys):
    """eval read a labelled name written in small letters capitalised ('an' as 'An', as classify reads what a user
    types), so `eval RUN` on its own test split differed from the test figures training recorded (0.822 against
    0.821 on pytorch-names). Names from a source keep their case."""
    from namestudio.engine.calibration import _readable
    from namestudio.engine.infer import load_run
    names = tiny_names()
    for label in names:
        names[label] += [n.lower() for n in names[label][:10]]
    _, run_dir = _tiny_run(tmp_path, names)
    run = load_run(run_dir)
    lower = next(n for n, _ in run.split["train"] if n.islower())
    assert run.capitalised and run.read(lower).text == lower.title()       # typed: capitalised
    assert _readable(run, [(lower, run.labels[0])], {lower})[0][0][1] == lower   # a name the split holds: as given
    assert _readable(run, [(lower, run.labels[0])], set())[0][0][1] == lower.title()   # any other: as typed
    capsys.readouterr()
    code, out, _ = run_cli(capsys, "eval", run_dir, "--split", "test", "--json")
    recorded = json.loads((run_dir / "test_metrics.json").read_text())
    recorded = recorded.get("test", recorded)
    assert code == 0 and json.loads(out.strip().splitlines()[-1])["accuracy"] == pytest.approx(recorded["accuracy"])
    # a source written in capitals (names the split does not hold so) is read as classify reads them, and a
    # training name in other case is a training name (--exclude-train skipped none of them, scoring them as new)
    test = [(n, lab) for n, lab in run.split["test"] if not n.islower()]
    (tmp_path / "same.csv").write_text("name,label\n" + "".join(f"{n},{lab}\n" for n, lab in test), encoding="utf-8")
    (tmp_path / "upper.csv").write_text("name,label\n" + "".join(f"{n.upper()},{lab}\n" for n, lab in test), encoding="utf-8")
    figures = []
    for name in ("same.csv", "upper.csv"):
        code, out, err = run_cli(capsys, "eval", run_dir, "--data", tmp_path / name, "--json")
        assert code == 0, err
        figures.append({k: json.loads(out.strip().splitlines()[-1])[k] for k in ("accuracy", "n", "in_train")})
    assert figures[0] == figures[1]
    held = {n for part in ("train", "val", "test") for n, _ in run.split[part]}
    train = [(n, lab) for n, lab in run.split["train"] if n == n.lower().title() and n.lower() not in held]
    (tmp_path / "train_lower.csv").write_text("name,label\n" + "".join(f"{n.lower()},{lab}\n" for n, lab in train), encoding="utf-8")
    code, _, err = run_cli(capsys, "eval", run_dir, "--data", tmp_path / "train_lower.csv", "--exclude-train")
    assert code != 0 and "every name with a label the run knows is in its training split" in err
    with_unknown = tmp_path / "train_lower_and_martian.csv"              # rows of unknown labels: said as skipped
    with_unknown.write_text((tmp_path / "train_lower.csv").read_text(encoding="utf-8") + "Zorg,Martian\n",
                            encoding="utf-8")
    code, _, err = run_cli(capsys, "eval", run_dir, "--data", with_unknown, "--exclude-train")
    assert code != 0 and "training split (1 row with labels it does not know skipped)" in err
    code, _, err = run_cli(capsys, "eval", run_dir, "--data", with_unknown, "--split", "val")
    assert code == 1 and "--split val and --data do not go together" in err


@pytest.mark.parametrize("cm", [[[3, 0, 0], [0, 3, 0], [0, 0, 3]],            # every row 100% on the diagonal
                                [[996, 4, 0], [1, 999, 0], [0, 1, 3]],        # 0% (rounded) beside 100%
                                [[4, 996, 0], [0, 3, 0], [1, 0, 3]]])
def test_no_confusion_cell_touches_the_label_or_the_cell_before_it(cm):
    """The Evaluate pane's compact matrix (no corner) read "Alv100%": a full cell touched its row's label, and
    "  0%100%" two cells. Every cell, and the label, now stands apart, so each row splits into label + one value
    per column, as the values were computed."""
    from namestudio.tui.render import confusion_table

    labels = ["Alvish", "Dwarvish", "Orcish"]
    lines = _rendered(confusion_table(cm, labels, title=None, corner="")).splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:] if line.strip()}
    for short, row in zip(["Alv", "Dwa", "Orc"], cm):
        want = ["·" if v == 0 else f"{round(100 * v / sum(row))}" for v in row]     # row %, the title says
        assert rows[short] == want, lines
    # and the cells stay 4 wide: 18 labels of 100 on the diagonal fit the Evaluate pane at 80 columns (cells 5
    # wide, to keep "100%" apart, cut its last columns)
    eighteen = ["Arabic", "Chinese", "Czech", "Dutch", "English", "French", "German", "Greek", "Irish", "Italian",
                "Japanese", "Korean", "Polish", "Portuguese", "Russian", "Scottish", "Spanish", "Vietnamese"]
    wide = _rendered(confusion_table([[5 * (i == j) for j in range(18)] for i in range(18)], eighteen, title=None,
                                     corner=""), width=1000)
    assert max(len(line.rstrip()) for line in wide.splitlines()) <= 4 + 1 + 18 * 4, wide


@pytest.mark.parametrize("width", [40, 80, None])
def test_a_confusion_matrix_too_wide_for_the_terminal_comes_in_parts_that_each_fit(width):
    """`eval` in an 80-column terminal showed an 18-label matrix up to Por: Rus, Sco, Spa and Vie were dropped
    with no word, and the Russian row read as if Russian were never predicted. Now the matrix comes in parts,
    each with every row, a line naming its columns, and no wider than the terminal; piped (None): whole."""
    from rich.table import Table

    from namestudio.tui.render import abbreviations, confusion_tables

    labels = ["Arabic", "Chinese", "Czech", "Dutch", "English", "French", "German", "Greek", "Irish", "Italian",
              "Japanese", "Korean", "Polish", "Portuguese", "Russian", "Scottish", "Spanish", "Vietnamese"]
    n = len(labels)
    cm = [[50 if i == j else (i * j) % 4 for j in range(n)] for i in range(n)]
    parts = confusion_tables(cm, labels, width)
    tables = [p for p in parts if isinstance(p, Table)]
    if width is None:
        assert len(parts) == 1 and len(tables[0].columns) == n + 1
        return
    assert len(tables) > 1
    heads, seen = [], []
    for table in tables:
        text = _rendered(table, width=1000).splitlines()
        assert max(len(line.rstrip()) for line in text) <= width, text
        heads.append(text[0].split()[1:])
        rows = {line.split()[0]: line.split()[1:] for line in text[1:] if line.strip()}
        assert list(rows) == abbreviations(labels)                       # every row in every part
        seen += heads[-1]
        for r, short in enumerate(abbreviations(labels)):               # the cells are that row's, in order
            want = ["·" if cm[r][j] == 0 else f"{round(100 * cm[r][j] / sum(cm[r]))}"
                    for j in range(n) if abbreviations(labels)[j] in heads[-1]]
            assert rows[short] == want
    assert seen == abbreviations(labels)                                 # every column once, in order
    lines = [p.plain for p in parts if not isinstance(p, Table)]
    assert lines[0].endswith(f"columns 1–{len(heads[0])} of {n}") and lines[-1].endswith(f"–{n} of {n}")


def test_a_matrix_of_wide_letter_labels_is_split_by_the_cells_they_take():
    """日本語0 takes 7 cells, not 4: the parts were counted by characters and one table of 87 cells came back for
    76."""
    from rich.cells import cell_len
    from rich.table import Table

    from namestudio.tui.render import confusion_tables

    labels = [f"{w}{i}" for i, w in enumerate(["日本語", "中文", "한국어", "русский"] * 3)]
    cm = [[9 if i == j else 1 for j in range(12)] for i in range(12)]
    for percent in (True, False):
        tables = [p for p in confusion_tables(cm, labels, 76, percent=percent) if isinstance(p, Table)]
        assert len(tables) > 1
        for table in tables:
            text = _rendered(table, width=1000).splitlines()
            assert max(cell_len(line.rstrip()) for line in text) <= 76, text
            assert len({cell_len(line.rstrip()) for line in text if line.strip()}) == 1, text    # columns align


def test_eval_data_says_what_cleaning_dropped_and_which_names_it_could_not_read(env, capsys):
    """`eval --data` printed "n 4" for a source of 6 lines and said nothing of the 2 it left out; --json alone
    counted the unreadable names."""
    src = env["root"] / "dirty.csv"
    src.write_text("name,label\nZorikov,Slavic\nZorikov,Slavic\n123,Nordic\nWyx,Slavic\nPellasson,Nordic\n",
                   encoding="utf-8")
    code, out, _ = run_cli(capsys, "eval", env["run"], "--data", src)
    assert code == 0
    assert "1 dropped in cleaning (no letter left, junk or malformed) and 1 duplicate counted once" in out, out
    assert "skipped 1 row whose name has no letter the run knows (e.g. 'Wyx')" in out, out
    code, out, _ = run_cli(capsys, "eval", env["run"], "--data", src, "--json")

    def strict(constant):
        raise ValueError(f"not JSON: {constant}")
    m = json.loads(out.strip().splitlines()[-1], parse_constant=strict)
    assert m["unreadable"] == 1 and m["unreadable_names"] == ["Wyx"] and m["n"] == 2
    assert m["cleaning"]["duplicates_removed"] == 1 and m["cleaning"]["kept"] == 3


def test_json_output_is_strict_json_even_for_a_nan_or_infinite_figure(capsys):
    from namestudio.tui.cli import _emit_json

    def strict(constant):
        raise ValueError(f"not JSON: {constant}")
    _emit_json({"loss": float("nan"), "nll": [1.5, float("inf")], "n": 3})
    assert json.loads(capsys.readouterr().out, parse_constant=strict) == {"loss": None, "nll": [1.5, None], "n": 3}
