"""A lab-report folder from an experiment or any runs: report.md, figures, curves.csv.

  report.md      results table, curves and confusion figures (linked), top-3 table, samples per language,
                 settings (shared and varying), the machine
  curves.csv     every logged point of every run (long format: one value per line)
  curves-<task>.png, confusion-<label>.png   with matplotlib (the optional extra `namestudio[report]`)

Everything is built in a temporary folder beside DIR, then renamed into place: a report folder is whole or
absent. An existing DIR is replaced only when it is empty or holds a previous report (report.md); the current
folder (``--out .``) is never replaced: a shell in it would be left in a deleted folder.
"""
from __future__ import annotations

import csv
import io
import os
import platform
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from namestudio.data.errors import NamestudioError
from namestudio.data.fsmode import set_dir_mode

from . import experiment as ex
from . import runfolder as rf
from .config import default_threads, model_label
from .smoothing import ema

MATPLOTLIB_MISSING = "figures skipped: matplotlib is not installed (pip install 'namestudio[report]')"
SMOOTHING = 0.6        # TensorBoard's default weight for the training-loss curves


class ReportError(NamestudioError):
    """A report that cannot be written; one line."""


@dataclass
class Report:
    path: Path
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)   # one line each, e.g. MATPLOTLIB_MISSING


def _have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text).strip("_") or "run"


def _md(v) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def _num(v, fmt: str = ".3f") -> str:
    return "–" if v is None else format(v, fmt)


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_md(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


NETWORK_ALONE = ("The curves, and curves.csv's train_loss and val_* metrics, are the network alone while it trained, "
                 "before the n-gram {mix} (the n-gram LM column); the results table's test figures and its "
                 "\"kept model\" validation figure are the model each run keeps, with its n-gram LM where it has one.")

# ---- curves.csv -----------------------------------------------------------------------------------
CSV_COLUMNS = ["label", "run", "model", "source", "step", "epoch", "elapsed", "metric", "value"]


def _why_unread(row: dict) -> str:
    """Why a results row has no task: its error, or what its config.json lacks."""
    if row.get("error"):
        return str(row["error"]).splitlines()[0]
    return "its config.json is missing or names no task (classify or generate)"


def curves_csv(runs: list[tuple[str, Path]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for label, d in runs:
        model = ((ex._config(d).get("train") or {}).get("model")) if (d / rf.CONFIG).is_file() else None
        c = ex.curves(d)
        for s in c["steps"]:
            for k in ("loss", "lr", "names_per_s"):
                if isinstance(s.get(k), (int, float)):
                    w.writerow([label, d.name, model, "steps", s["step"], s["epoch"], s["elapsed"], k, s[k]])
        for e in c["evals"]:
            for k, v in e.items():
                if k in ("step", "epoch", "elapsed", "best") or not isinstance(v, (int, float)):
                    continue
                w.writerow([label, d.name, model, "evals", e["step"], e["epoch"], e["elapsed"], k, v])
    return buf.getvalue()


# ---- figures ----------------------------------------------------------------------------------------
def curve_name(task: str) -> str:
    """The validation curves' title: they are the network's evaluations while it trained (metrics.jsonl), before
    the n-gram LM was blended in (a classifier's blend, a generator's mix: engine/blend.py) at the end; the
    results table's test and kept-validation figures are the kept model's, with the n-gram LM where it has one."""
    name = "validation accuracy" if task == "classify" else "validation NLL (nats/char)"
    return f"{name}, network alone (before the n-gram {'blend' if task == 'classify' else 'mix'})"


KEPT_MARK = "with its n-gram LM (kept)"    # the legend of a run's kept validation figure, drawn at its best step


def kept_val(row: dict, d: Path) -> float | None:
    """The validation figure (accuracy, or NLL in nats/char) of the model a run keeps: its n-gram blend's when it
    kept one (the one its lm.safetensors says it uses, runfolder.kept_blend), else the network's best evaluation
    (metrics.jsonl)."""
    if row.get("val_kept") is not None:
        return row["val_kept"]
    key = "val_accuracy" if row.get("task") == "classify" else "val_nll"
    best = [e for e in ex.curves(d)["evals"] if e.get("best") and isinstance(e.get(key), (int, float))]
    return best[-1][key] if best else None


def _curves_figure(runs: list[tuple[str, Path]], task: str, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    metric = "val_accuracy" if task == "classify" else "val_nll"
    name = curve_name(task)
    kept = {label: row for (label, _), row in zip(runs, ex.results_rows(runs))}
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for i, (label, d) in enumerate(runs):
        color = f"C{i % 10}"
        loss = ex.series(d, "loss", "epoch")
        if loss:
            xs, ys = zip(*loss)
            axes[0].plot(xs, ys, color=color, alpha=0.25, linewidth=0.8)
            axes[0].plot(xs, ema(ys, SMOOTHING), color=color, label=label, linewidth=1.5,
                         marker="o" if len(xs) < 30 else None, markersize=3)
        for ax, x in ((axes[1], "epoch"), (axes[2], "elapsed")):
            pts = ex.series(d, metric, x)
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, color=color, marker="o", markersize=3, label=label)
        row = kept[label]
        if row.get("val_kept") is not None:      # the figure the run keeps, with its n-gram LM, at its best step
            best = [e for e in ex.curves(d)["evals"] if e.get("best")]
            for ax, x in ((axes[1], "epoch"), (axes[2], "elapsed")):
                if best and isinstance(best[-1].get(x), (int, float)):
                    ax.plot([best[-1][x]], [row["val_kept"]], color=color, marker="*", markersize=11,
                            linestyle="none", label=f"{label} {KEPT_MARK}")
    axes[0].set(title=f"training loss (EMA {SMOOTHING}, raw faint)", xlabel="epoch", ylabel="loss")
    axes[1].set(title=name, xlabel="epoch")
    axes[2].set(title=f"{name} against training time", xlabel="training seconds")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    if any(row.get("val_kept") is not None for row in kept.values()):
        axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _confusion_figure(label: str, cm: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    labels, m = cm["labels"], ex.normalized(cm["matrix"])
    n = len(labels)
    size = max(4.0, 0.38 * n + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(m, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(n), labels, fontsize=7)
    ax.set(xlabel="predicted", ylabel="true", title=f"{label} ({cm['split']}, rows sum to 1)")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---- the data each table's runs were tested on --------------------------------------------------------
def _data_split(d: Path) -> dict | None:
    """What a run was trained and tested on, as its config.json records it (engine/train.py _run_meta): the data
    as resolved (not as typed: "names2" names other names once files are deleted from it), labels, split seed and
    the names in each part. None when config.json cannot be read."""
    try:
        cfg = ex._config(d)
    except NamestudioError:
        return None
    counts = cfg.get("split_counts")
    seed = cfg.get("split_seed")
    if seed is None:
        seed = (cfg.get("train") or {}).get("split_seed")
    return {"source": rf.data_source(cfg),
            "labels": tuple(cfg["labels"]) if isinstance(cfg.get("labels"), list) else None,
            "seed": seed,
            "counts": (tuple(counts.get(k) for k in ("train", "val", "test")) if isinstance(counts, dict) else None)}


def _split_words(s: dict) -> str:
    labels = f"{len(s['labels'])} labels" if s["labels"] is not None else "labels not recorded"
    seed = f"split seed {s['seed']}" if s["seed"] is not None else "split seed not recorded"
    if s["counts"] is not None:
        tr, va, te = ("?" if c is None else f"{c:,}" for c in s["counts"])
        split = f"train {tr} / val {va} / test {te} rows (name, label); test n = {te}"   # as `train` counts them
    else:
        split = "split sizes not recorded"
    return f"`{s['source'] or 'unknown'}`, {labels}, {seed}: {split}"


DIFFERENT_TEST_SETS = ("the runs in this table were tested on different test sets ({what} differ): their test "
                       "figures are not comparable")


def data_lines(runs: list[tuple[str, Path]]) -> tuple[list[str], str | None]:
    """report.md lines that say what a results table's runs were trained and tested on, and the one-line warning
    (or None) when their test sets differ: another data source, labels, split seed or split sizes."""
    splits = [(label, _data_split(d)) for label, d in runs]
    splits = [(label, s) for label, s in splits if s is not None]
    if not splits:
        return [], None
    differ = [name for key, name in (("source", "data source"), ("labels", "labels"), ("seed", "split seed"),
                                     ("counts", "split sizes"))
              if len({repr(s[key]) for _, s in splits}) > 1]
    if not differ:
        return [f"Data: {_split_words(splits[0][1])}.\n"], None
    warning = DIFFERENT_TEST_SETS.format(what=", ".join(differ))
    lines = [f"**Warning: {warning}.**\n", "Data:\n"]
    lines += [f"- {label}: {_split_words(s)}" + (f" ({', '.join(s['labels'])})" if s["labels"] and "labels" in differ
                                                  else "") for label, s in splits]
    lines.append("")
    return lines, warning


# ---- the machine ------------------------------------------------------------------------------------
def machine(runs: list[tuple[str, Path]]) -> list[tuple[str, str]]:
    torch_versions, devices, threads = set(), set(), set()
    for _, d in runs:
        try:
            cfg = ex._config(d)
        except NamestudioError:
            continue
        if cfg.get("torch"):
            torch_versions.add(cfg["torch"])
        t = (cfg.get("train") or {}).get("threads")
        threads.add(f"{t}" if t else f"auto ({default_threads()} here)")
        try:
            device = rf.read_test(d).get("device")
            if device:
                devices.add(device)
            elif rf.read_status(d).device:
                devices.add(rf.read_status(d).device)
        except NamestudioError:
            pass
    return [("torch (the runs)", ", ".join(sorted(torch_versions)) or "–"),
            ("device", ", ".join(sorted(devices)) or "–"),
            ("torch CPU threads per run", ", ".join(sorted(threads)) or "–"),
            ("CPU cores", str(os.cpu_count())),
            ("platform", f"{platform.system()} {platform.release()} {platform.machine()}"),
            ("python", platform.python_version())]


# ---- the report ------------------------------------------------------------------------------------
def build(runs: list[tuple[str, Path]], folder: Path, names=ex.DEFAULT_NAMES, start_letters: str = "ABC",
          temperature: float = 0.8, sources: list[str] | None = None, figures: bool = True,
          notes: list[str] | None = None) -> Report:
    """Write report.md, curves.csv and the figures into ``folder`` (which exists and is empty). ``notes``: lines
    said in the report and on the terminal (an experiment's runs that never started)."""
    rep = Report(path=folder, notes=list(notes or []))
    plots = figures and _have_matplotlib()
    if figures and not plots:
        rep.notes.append(MATPLOTLIB_MISSING)
    rows = ex.results_rows(runs)
    unread = [r for r in rows if r["task"] not in ("classify", "generate") or r["state"] == "damaged"]
    if unread and len(unread) == len(rows):
        first = unread[0]
        raise ReportError(f"no run could be read: {first['label']}: {_why_unread(first)}"
                          + (f" (and {len(unread) - 1} more)" if len(unread) > 1 else ""))
    for r in unread:                       # said in the report and on the terminal, never silently left out
        rep.notes.append(f"left out of the report: {r['label']}: {_why_unread(r)}")
    # a run stopped before its first step has no weights, no test and no curve: one note, not a row of dashes and
    # its error in every top-3 cell
    untrained = {id(r) for r in rows if r not in unread and rf.read_test(Path(r["run"])).get("untested") == rf.UNTRAINED}
    if untrained and len(untrained) + len(unread) == len(rows):
        first = next(r for r in rows if id(r) in untrained)
        raise ReportError(f"nothing to report: {first['label']} was {rf.UNTRAINED}"
                          + (f" (and {len(rows) - 1} more runs had nothing to report)" if len(rows) > 1 else ""))
    for r in rows:
        if id(r) in untrained:
            rep.notes.append(f"left out of the report: {r['label']}: {rf.no_weights(Path(r['run']))}")
    runs, rows = [x for x, r in zip(runs, rows) if id(r) not in untrained], [r for r in rows if id(r) not in untrained]
    by_task = {t: [(lab, d) for (lab, d), r in zip(runs, rows) if r["task"] == t] for t in ("classify", "generate")}
    md = ["# namestudio report\n", f"Generated {time.strftime('%Y-%m-%d %H:%M')} from "
          + (", ".join(f"`{s}`" for s in sources) if sources else f"{len(runs)} runs") + ".\n"]

    (folder / "curves.csv").write_text(curves_csv(runs), encoding="utf-8")
    rep.files.append("curves.csv")

    for task, title in (("classify", "Classifiers"), ("generate", "Generators")):
        trows = [r for r in rows if r["task"] == task]
        if not trows:
            continue
        md.append(f"## Results: {title.lower()}\n")
        if task == "classify":
            header = ["run", "model", "recipe", "parameters", "train time (s)", "names/s", "epochs to best",
                      "test accuracy", "balanced accuracy", "macro-F1", "val accuracy (kept model)", "n-gram LM",
                      "state"]
            body = [[r["label"], model_label(r["model"], r["members"]), r["recipe"], f"{r['params']:,}" if r["params"] else "–",
                     _num(r["train_seconds"], ".1f"), _num(r["names_per_s"], ",.0f"), _num(r["epochs_to_best"], ".2f"),
                     _num(r["test_accuracy"]), _num(r["test_balanced_accuracy"]), _num(r["test_macro_f1"]),
                     _num(kept_val(r, Path(r["run"]))), r["n_gram"] or "–", r["state"] or "–"] for r in trows]
        else:
            header = ["run", "model", "recipe", "parameters", "train time (s)", "names/s", "epochs to best",
                      "test NLL (nats/char)", "perplexity", "val NLL (kept model)", "n-gram LM", "state"]
            body = [[r["label"], model_label(r["model"], r["members"]), r["recipe"], f"{r['params']:,}" if r["params"] else "–",
                     _num(r["train_seconds"], ".1f"), _num(r["names_per_s"], ",.0f"), _num(r["epochs_to_best"], ".2f"),
                     _num(r["test_nll"]), _num(r["test_perplexity"], ".2f"), _num(kept_val(r, Path(r["run"]))),
                     r["n_gram"] or "–",
                     r["state"] or "–"] for r in trows]
        data, warning = data_lines(by_task[task])
        md.extend(data)
        if warning:
            rep.notes.append(f"{title.lower()}: {warning}")
        md.append(_table(header, body))
        failed = [r for r in trows if r["error"]]
        for r in failed:
            md.append(f"- {r['label']}: {r['error']}\n")
        md.append("")

        md.append("### Curves\n")
        if plots:
            fig = f"curves-{task}.png"
            _curves_figure(by_task[task], task, folder / fig)
            rep.files.append(fig)
            md.append(f"![curves]({fig})\n")
        else:
            md.append(f"_{MATPLOTLIB_MISSING}._\n")
        md.append("Every logged point: [curves.csv](curves.csv).\n")
        md.append(NETWORK_ALONE.format(mix="blend" if task == "classify" else "mix") + "\n")

        if task == "classify":
            mats = []
            for label, d in by_task[task]:
                try:
                    cm = ex.confusion(d)
                except NamestudioError:
                    cm = None
                if cm:
                    mats.append((label, cm))
            if mats:
                md.append("### Confusion matrices\n")
                if plots:
                    for label, cm in mats:
                        fig = f"confusion-{_slug(label)}.png"
                        _confusion_figure(label, cm, folder / fig)
                        rep.files.append(fig)
                        md.append(f"**{label}** ({cm['split']})\n\n![confusion {label}]({fig})\n")
                else:
                    md.append(f"_{MATPLOTLIB_MISSING}._\n")
            top = ex.topk_table(by_task[task], list(names), 3)
            if top:
                md.append("### Top 3 for chosen names\n")
                body = []
                order = {n: i for i, n in enumerate(names)}
                for t in sorted(top, key=lambda t: order.get(t["name"], len(order))):   # by name, then run
                    cells = [f"{lab} {p:.2f}" for lab, p in t["top"]] if not t["error"] else [t["error"], "", ""]
                    body.append([t["name"], t["label"], *(cells + ["", "", ""])[:3]])
                md.append(_table(["name", "run", "1st", "2nd", "3rd"], body))
        else:
            for label, d in by_task[task]:
                try:
                    table = ex.samples_table(d, temperature, start_letters)
                except NamestudioError as e:
                    md.append(f"- samples of {label}: {e}\n")
                    continue
                md.append(f"### Samples of {label} (temperature {temperature:g}, start letters "
                          f"{''.join(table['letters']) or '–'})\n")
                for note in table["notes"]:
                    md.append(f"- {note}\n")
                if table["letters"]:
                    md.append(_table(["language", *table["letters"]],
                                     [[r["language"], *(", ".join(r["samples"][c]) for c in table["letters"])]
                                      for r in table["rows"]]))

    s = ex.settings(runs)
    md.append("## Settings\n")
    md.append("Shared by every run:\n")
    md.append(_table(["setting", "value"], [[k, repr(v) if isinstance(v, str) else str(v)] for k, v in s.common.items()]))
    if s.varying:
        md.append("\nVarying:\n")
        labels = [lab for lab, _ in runs]
        md.append(_table(["setting", *labels], [[k, *(str(vals.get(l, "–")) for l in labels)]
                                                for k, vals in s.varying.items()]))
    md.append("\n## Machine\n")
    md.append(_table(["", ""], [[k, v] for k, v in machine(runs)]))
    if rep.notes:
        md.append("\n" + "\n".join(f"_{n}._" for n in rep.notes) + "\n")
    (folder / "report.md").write_text("\n".join(md), encoding="utf-8")
    rep.files.insert(0, "report.md")
    return rep


def _unstarted(exp: Path) -> list[str]:
    """A line for an experiment whose runs did not all start (stopped, or still running): those runs are in no
    table, and a reader must not take the report for the whole plan."""
    try:
        doc = ex.read_experiment(exp)
    except NamestudioError:
        return []
    missing = [r["dir"] for r in doc["runs"] if not (Path(exp) / r["dir"]).is_dir()]
    if not missing:
        return []
    state = doc.get("state") or "unknown"
    have = "runs has" if len(missing) == 1 else "runs have"     # "1 of its 2 runs has", never "2 run has"
    how = (f"; `namestudio compare --resume {rf.as_arg(exp)}` trains {'it' if len(missing) == 1 else 'them'}"
           if state in (rf.STOPPED, "failed", "stale") else "")
    return [f"experiment {exp.name} is {state}: {len(missing)} of its {len(doc['runs'])} {have} not started "
            f"({', '.join(missing)}) and {'is' if len(missing) == 1 else 'are'} in no table{how}"]


def _report_file(name: str) -> bool:
    """A file name a report writes (``build``): report.md, curves.csv and its figures."""
    return name in ("report.md", "curves.csv") or (name.endswith(".png") and name.startswith(("curves-", "confusion-")))


def target(out: str | Path) -> Path:
    """The report folder ``out`` as an absolute path whose name is a folder's name, so that its parent is where
    the temporary folder goes and what is renamed is the folder itself: ``..`` and ``rep/..`` resolved (Path("..")
    is named ".." and Path(".") ""), a trailing slash dropped; the last part is not resolved when it is a name
    (a link named as the report folder is replaced, as before, not the folder it points to)."""
    out = Path(out)
    if out.name in ("", ".", ".."):
        return out.absolute().resolve()
    return out.absolute().parent.resolve() / out.name


def check_out(out: str | Path, keep: list[Path] = ()) -> None:
    """ReportError, one line, unless a report can be written to folder ``out``: a new or empty folder or an
    earlier report, in a folder that can be made and written (``compare --report`` asks before training).
    An earlier report is replaced whole, so a folder counts as one only when it holds nothing but the files a
    report writes (a project folder with a report.md of its own beside the user's files, or the checkpoints,
    was deleted with it). ``keep``: folders that must survive (the runs reported on, the checkpoints): an
    ``out`` that holds one is refused."""
    out = Path(out)
    where = out.absolute().resolve()
    cwd = Path.cwd().resolve()
    if where == cwd or where in cwd.parents:   # renamed away and deleted with the old report: the shell's folder
        raise ReportError(f"{out}: {'is' if where == cwd else 'holds'} the current folder, which a report "
                          "replaces whole (the shell would be left in a deleted folder); give a new folder name for "
                          "the report, such as report")
    for k in keep:
        k = Path(k).absolute().resolve()
        if k == where or where in k.parents:
            raise ReportError(f"{out}: holds {k}, which the report reads; give another folder for the report")
    if out.exists():
        if not out.is_dir():
            raise ReportError(f"{out}: is a file; give a folder for the report")
        entries = list(out.iterdir())
        if entries and not (out / "report.md").is_file():
            raise ReportError(f"{out}: not empty and not a namestudio report; give a new or empty folder")
        other = sorted(e.name for e in entries if not (e.is_file() and not e.is_symlink() and _report_file(e.name)))
        if other:
            more = f" and {len(other) - 1} more" if len(other) > 1 else ""
            raise ReportError(f"{out}: holds {other[0]}{more} beside a report, which replacing the report would "
                              "delete; give a new or empty folder")
    parent = target(out).parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        if not os.access(parent, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as e:
        raise ReportError(f"could not write {out}: {e.strerror or e}") from None


STALE_TMP_S = 3600      # a report's temporary folder older than this was left by a killed writer


def _sweep(parent: Path, name: str) -> None:
    """Remove the temporary folders a killed `report` (or `compare --report`) left beside ``name``: the report
    being written (``.NAME.*.tmp``) and the one being replaced (``.NAME.old-PID``), once over an hour old (a
    writer at work now is younger)."""
    now = time.time()
    for pattern in (f".{name}.*.tmp", f".{name}.old-*"):
        for d in parent.glob(pattern):
            try:
                if d.is_dir() and not d.is_symlink() and now - d.stat().st_mtime > STALE_TMP_S:
                    shutil.rmtree(d, ignore_errors=True)
            except OSError:
                pass


def write_report(items: list[str], out: str | Path, checkpoints: str | Path = "checkpoints",
                 names=ex.DEFAULT_NAMES, start_letters: str = "ABC", temperature: float = 0.8,
                 figures: bool = True) -> Report:
    """The report of experiments and/or runs (as a command line names them) in folder ``out``, atomically.
    Bad sampling settings are refused before anything is read or written."""
    from .infer import check_sampling
    try:
        check_sampling(temperature)
    except NamestudioError as e:
        raise ReportError(str(e)) from None
    letters = "".join(str(start_letters).split())
    if not letters or not all(c.isalpha() for c in letters):
        raise ReportError(f"start letters must be letters, such as ABC; not {start_letters!r}")
    runs, exps = ex.collect_runs(items, checkpoints)
    given = Path(out)
    # a checkpoints folder that does not exist holds nothing the report reads (it refused `--out .` in an empty
    # folder: ".: holds ./checkpoints"); compare --report, which makes it, checks it whether it exists or not
    check_out(given, keep=[*(p for p in [Path(checkpoints)] if p.exists()), *exps, *(d for _, d in runs)])
    out = target(given)                    # ".." renamed, not "." + "." (was: ".: Device or resource busy")
    parent = out.parent
    _sweep(parent, out.name)
    try:
        tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{out.name}.", suffix=".tmp"))
        set_dir_mode(tmp)                    # mkdtemp makes 0700; a report folder is an ordinary folder
    except OSError as e:
        raise ReportError(f"could not write {out}: {e.strerror or e}") from None
    try:
        rep = build(runs, tmp, names, start_letters, temperature,
                    sources=[e.name for e in exps] + [d.name for _, d in runs if d.parent not in exps],
                    figures=figures, notes=[n for e in exps for n in _unstarted(e)])
        for f in rep.files:
            with open(tmp / f, "rb") as fh:
                os.fsync(fh.fileno())
        old = None
        if out.exists():
            old = parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    rep.path = given if given.name == out.name else out     # "rep/x/.." said as the folder it names
    return rep
