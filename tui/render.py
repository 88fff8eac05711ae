"""Rich renderables shared by the CLI and the TUI: confusion matrix, metrics, probabilities, summaries."""
from __future__ import annotations

import os

from rich.cells import cell_len
from rich.color import Color
from rich.markup import escape
from rich.style import Style
from rich.table import Table
from rich.text import Text

from namestudio.engine import runfolder as rf
from namestudio.engine.config import model_label


class Parts:
    """A line of parts joined by " · " (or ``sep``) that breaks only between parts (``lines``, for the width it is
    drawn at): "test acc 0.852 · bal 0.604 · F1 0.596" in 46 cells wrapped as "… · bal" / "0.604 · …", a figure
    cut from its name. A part wider than the whole width stays one line, which is then wrapped as text. Drawn by
    Rich too (a table's cell), at the width it is given."""

    SEP = " · "

    def __init__(self, *parts: str | Text, style: str = "", sep: str = SEP) -> None:
        self.parts = [p if isinstance(p, Text) else Text(p) for p in parts if p]
        self.style, self.sep = style, sep

    def lines(self, width: int) -> Text:
        out: list[Text] = []
        for part in self.parts:
            if out and out[-1].cell_len + len(self.sep) + part.cell_len <= width:
                out[-1].append(self.sep).append_text(part)
            else:
                out.append(part.copy())
        text = Text("\n").join(out)
        text.stylize(self.style)
        return text

    def __rich_console__(self, console, options):
        yield self.lines(options.max_width)

    def __rich_measure__(self, console, options):
        from rich.measure import Measurement

        return Measurement(max((p.cell_len for p in self.parts), default=0),
                           sum(p.cell_len for p in self.parts) + len(self.sep) * max(0, len(self.parts) - 1))


class Squeezed:
    """A prefix and a text (a path) on one line at the width it is drawn at (``lines``, as ``Parts``): the text
    loses its beginning to "…" when the line is too long, so that its end (a run's id) stays in sight ("Best
    checkpoint: checkpoints/2026…-classify-lstm" wrapped to a line the Train pane's status had no room for)."""

    def __init__(self, prefix: str, text: str) -> None:
        self.prefix, self.text = prefix, text

    def lines(self, width: int) -> Text:
        line = self.prefix + self.text
        keep = width - cell_len(self.prefix) - 1
        if cell_len(line) > width and keep >= 8:
            line = self.prefix + "…" + self.text[-keep:]
        return Text(line)


class Clipped:
    """Text wrapped at the width it is drawn at (``lines``, as ``Parts``), in at most ``rows`` lines: the last ends
    in "…" when the text goes on (the Train pane's status has three lines; a long error pushed the line saying
    where the whole of it is out of sight)."""

    def __init__(self, text: Text, rows: int) -> None:
        self.text, self.rows = text, max(1, rows)

    def lines(self, width: int) -> Text:
        import io

        from rich.console import Console

        width = max(1, width)
        wrapped = list(self.text.wrap(Console(width=width, file=io.StringIO()), width))
        if len(wrapped) > self.rows:
            wrapped = wrapped[:self.rows]
            last = wrapped[-1]
            last.rstrip()
            last.truncate(width - 1)
            last.append("…")
        return Text("\n").join(wrapped)


def fit_cells(text: str, width: int) -> str:
    """``text`` in exactly ``width`` terminal cells: padded, or cut with "…" (by cells, not characters: 日本語 takes
    6 cells, and ``f"{lang[:10]:<10}"`` cut "Deutsch (Österreich)" with no mark and misaligned wide letters)."""
    from rich.cells import cell_len, set_cell_size

    if cell_len(text) > width:
        text = set_cell_size(text, width - 1) + "…"
    return set_cell_size(text, width)


def abbreviations(labels: list[str], width: int = 3) -> list[str]:
    """The shortest unique prefixes of at least ``width`` letters (Spanish/Scottish -> Spa/Sco)."""
    out = []
    for lab in labels:
        n = width
        while n < len(lab) and sum(1 for other in labels if other[:n] == lab[:n]) > 1:
            n += 1
        out.append(lab[:n])
    return out


def _cell_style(value: float, diagonal: bool, dark: bool = True) -> Style:
    """Background intensity follows the row-normalised value; the diagonal is green, the rest red."""
    v = max(0.0, min(1.0, value))
    base = (30, 30, 30) if dark else (250, 250, 250)
    hue = (40, 200, 80) if diagonal else (230, 60, 50)
    rgb = tuple(int(b + (h - b) * (v ** 0.6)) for b, h in zip(base, hue))
    lum = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    fg = "black" if lum > 140 else "white"
    return Style(bgcolor=Color.from_rgb(*rgb), color=fg, bold=diagonal, underline=diagonal)


CONFUSION_TITLE = "Confusion matrix (rows: true, columns: predicted"    # then ", row %)" or ", counts)"


def confusion_table(confusion: list[list[int]], labels: list[str], percent: bool = True, dark: bool = True,
                    title: str | None = CONFUSION_TITLE,
                    corner: str = "true\\pred", only_seen: bool = False, columns: range | None = None) -> Table:
    """Rows are true labels, columns predicted ones. Each cell's background follows the row-normalised value;
    the diagonal is green, bold and underlined, the rest red. Label names are abbreviated to fit.
    ``only_seen``: leave out the labels with no names in the data that are never predicted (a row and a column
    of nothing each: a source of 3 languages tested on an 18-language run); the caption counts them.
    ``columns``: the predicted labels shown (their places among those kept), all by default (``confusion_tables``
    splits a matrix too wide for the terminal into tables of a few columns each)."""
    left_out = 0
    if only_seen and len(confusion) == len(labels):
        keep = [i for i in range(len(labels)) if sum(confusion[i]) or sum(row[i] for row in confusion)]
        if keep and len(keep) < len(labels):
            left_out = len(labels) - len(keep)
            confusion = [[confusion[i][j] for j in keep] for i in keep]
            labels = [labels[i] for i in keep]
    short = abbreviations(labels)
    if title == CONFUSION_TITLE:
        title += ", row %)" if percent else ", counts)"
    table = Table(title=title, show_edge=False, pad_edge=False, padding=(0, 0), collapse_padding=True,
                  header_style="bold", title_style="bold", box=None, caption_justify="left",
                  caption=f"left out: {counted(left_out, 'label')} with no names here, never predicted"
                  if left_out else None)
    table.add_column(corner, no_wrap=True)

    def shown(v: int, total: int) -> str:     # row percentages without their sign, as the title says "row %":
        return ("·" if v == 0 else f"{round(100 * v / total)}") if percent else str(v)   # "100" keeps a space

    texts = [[shown(v, sum(row) or 1) for v in row] for row in confusion]
    width = 4 if percent else max(3, max((len(str(v)) for row in confusion for v in row), default=1)) + 1
    width = max(width, max((cell_len(s) for s in short), default=0) + 1)    # cells: 日本語 takes 6
    columns = range(len(short)) if columns is None else columns
    for j in columns:     # labels are the data's own text, never markup ("[/English]")
        table.add_column(Text(" " * (width - cell_len(short[j])) + short[j]), justify="right", no_wrap=True,
                         min_width=width)
    for i, row in enumerate(confusion):
        total = sum(row) or 1
        cells = [Text(texts[i][j].rjust(width), style=_cell_style(row[j] / total, i == j, dark)) for j in columns]
        # the label and the first cell apart: a short label ("Alv") touched a full cell ("Alv100%")
        table.add_row(Text(f"{short[i] if i < len(short) else str(i)} "), *cells)
    return table


def confusion_tables(confusion: list[list[int]], labels: list[str], width: int | None, **kw) -> list:
    """``confusion_table`` as tables that each fit ``width`` columns: the whole matrix when it fits (or ``width``
    is None), else a few predicted columns at a time, every table with all the rows, after a line saying which
    columns it holds. An 18-label matrix in an 80-column terminal lost its last columns with no word of it (the
    Russian row read as if Russian were never predicted: its diagonal was past the edge)."""
    whole = confusion_table(confusion, labels, **kw)
    n = len(whole.columns) - 1
    # its width, counted (no padding, no edges, no separators; every predicted column as wide, at its min_width):
    # measured by Rich it took 13 ms more of the UI thread per new evaluation
    head = whole.columns[0]
    label = max([cell_len(str(head.header)), *(cell_len(str(c)) for c in head.cells)])
    column = max([c.min_width or 0 for c in whole.columns[1:]], default=0)
    if width is None or label + n * column <= width or n <= 1:
        return [whole]
    per = max(1, (width - label) // max(1, column))
    title = kw.pop("title", CONFUSION_TITLE)
    if title == CONFUSION_TITLE:
        title += ", row %)" if kw.get("percent", True) else ", counts)"
    out: list = []
    for k in range(0, n, per):       # each part's title a line of its own (a narrow table would wrap it)
        part = range(k, min(n, k + per))
        out += [Text((f"{title}: " if title else "") + f"columns {part.start + 1}–{part.stop} of {n}", style="bold"),
                confusion_table(confusion, labels, **kw, title=None, columns=part)]
    return out


def prerendered(renderable, width: int) -> "DrawnTable | None":
    """A Rich renderable drawn once, off the UI thread, into plain styled text at its natural width (at most
    ``width``): showing it costs a tenth of the table's own rendering (2 ms against 18 ms for an 18-label
    confusion matrix), which Textual would otherwise do on the pane switch. None when it would need more than
    ``width`` columns (the caller keeps the table, which Rich can squeeze)."""
    import io

    from rich.console import Console

    console = Console(width=1000, file=io.StringIO(), color_system="truecolor", force_terminal=True,
                      legacy_windows=False)
    natural = console.measure(renderable).maximum
    if natural > width:
        return None
    lines = console.render_lines(renderable, console.options.update(width=natural), pad=False)
    drawn = DrawnTable(no_wrap=True, overflow="crop", end="")
    drawn.append_text(Text("\n").join(Text.assemble(*((seg.text, seg.style) for seg in line if not seg.control))
                                       for line in lines))
    return drawn


class DrawnTable(Text):
    """What ``prerendered`` returns: a table drawn into text, laid out at its own width like the table it stands
    for; a pane tells it from a plain Text, which is a sentence in place of a table (and wraps)."""
    __slots__ = ()


def _difference_style(value: float, diagonal: bool, dark: bool = True) -> Style:
    """Green where A does better than B (more on the diagonal, fewer confusions off it), red where worse;
    the intensity follows the size of the difference."""
    better = value > 0 if diagonal else value < 0
    v = min(1.0, abs(value))
    base = (30, 30, 30) if dark else (250, 250, 250)
    hue = (40, 200, 80) if better else (230, 60, 50)
    rgb = tuple(int(b + (h - b) * (v ** 0.5)) for b, h in zip(base, hue))
    lum = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    return Style(bgcolor=Color.from_rgb(*rgb), color="black" if lum > 140 else "white", bold=diagonal,
                 underline=diagonal)


def difference_table(matrix: list[list[float]], labels: list[str], dark: bool = True, title: str | None = None,
                     corner: str = "") -> Table:
    """A difference of two row-normalised confusion matrices (A minus B), in signed percentage points: green
    where A does better (a larger diagonal, a smaller confusion), red where it does worse; · for no change."""
    short = abbreviations(labels)
    table = Table(title=title, show_edge=False, pad_edge=False, padding=(0, 0), collapse_padding=True,
                  header_style="bold", title_style="bold", box=None)
    table.add_column(corner, no_wrap=True)
    width = max(5, max((len(s) for s in short), default=0) + 1)
    for s in short:
        table.add_column(Text(s.rjust(width)), justify="right", no_wrap=True, min_width=width)
    for i, row in enumerate(matrix):
        cells = []
        for j, v in enumerate(row):
            points = round(100 * v)
            text = "·" if points == 0 else f"{points:+d}"
            cells.append(Text(text.rjust(width), style=_difference_style(v, i == j, dark) if points else ""))
        table.add_row(Text(short[i] if i < len(short) else str(i)), *cells)
    return table


def per_class_table(metrics: dict, compact: bool = False) -> Table:
    """Per-class precision, recall, F1 and support. ``compact`` abbreviates the labels and drops the
    leading zeros (".82") so that the table fits beside an 18-label confusion matrix in 100 columns.

    The rows are the labels the macro metrics average over (engine.metrics.classification_report): those with
    names in the data, and those predicted for names of other labels (n 0, recall "–": F1 0, counted in
    macro-F1, not in balanced accuracy). A label with no names that is never predicted is left out (its
    figures would be zeros that mean nothing); the caption says how many were (compact too, in fewer words)."""
    per_class = metrics.get("per_class", {})
    predicted = _predicted_counts(metrics, len(per_class))
    shown = [(lab, m) for i, (lab, m) in enumerate(per_class.items())
             if m.get("support") or predicted is None or predicted[i]]
    left_out = len(per_class) - len(shown)
    absent = sum(1 for _, m in shown if not m.get("support"))
    notes = (["n 0: no names here, predicted for others (F1 0 in macro-F1, out of balanced accuracy)"]
             if absent else []) + ([f"left out: {counted(left_out, 'label')} with no names here, never predicted"]
                                   if left_out else [])
    if compact:       # beside the confusion matrix: the same notes, in few words
        notes = (["n 0: only predicted"] if absent else []) + ([f"{left_out} without names left out"]
                                                               if left_out else [])
    table = Table(title=None if compact else "Per class", show_edge=False, header_style="bold",
                  padding=(0, 1) if not compact else (0, 0, 0, 1), pad_edge=False,
                  caption=" · ".join(notes) if notes else None, caption_justify="left",
                  **({"box": None} if compact else {}))
    for col in ("label", "prec", "rec", "F1", "n"):
        table.add_column(("" if col == "label" else col[:1].upper() if col in ("prec", "rec") else col)
                         if compact else col, justify="left" if col == "label" else "right", no_wrap=True)
    names = abbreviations([lab for lab, _ in shown]) if compact else [lab for lab, _ in shown]
    fmt = _short_float if compact else (lambda v: f"{v:.2f}")
    for name, (_, m) in zip(names, shown):
        recall = fmt(m["recall"]) if m.get("support") else "–"
        table.add_row(Text(name), fmt(m["precision"]), recall, fmt(m["f1"]), str(m["support"]))
    return table


def _predicted_counts(metrics: dict, n: int) -> list[int] | None:
    """How many names each label was predicted for: the confusion matrix's column sums (None without one)."""
    cm = metrics.get("confusion")
    if not (isinstance(cm, list) and len(cm) == n and all(isinstance(row, list) and len(row) == n for row in cm)):
        return None
    return [sum(col) for col in zip(*cm)] if n else []


def _short_float(v: float) -> str:
    return "1.0" if v >= 0.995 else f"{v:.2f}"[1:]


def headline(metrics: dict, task: str) -> str:
    if task == "generate" or "nll" in metrics:
        return f"NLL {metrics['nll']:.3f} nats/char · perplexity {metrics['perplexity']:.2f}"
    return (f"accuracy {metrics['accuracy']:.3f} · balanced accuracy {metrics['balanced_accuracy']:.3f} · "
            f"macro-F1 {metrics['macro_f1']:.3f} · n {metrics.get('n', 0)}")


def bar(fraction: float, width: int = 20) -> str:
    """A horizontal bar with eighth-block resolution."""
    fraction = max(0.0, min(1.0, fraction))
    eighths = int(round(fraction * width * 8))
    full, part = divmod(eighths, 8)
    return ("█" * full + (" ▏▎▍▌▋▊▉"[part] if part else "")).ljust(width)


def reliability_table(bins: list[dict], width: int = 20) -> Table:
    """A reliability diagram as a table: one row per non-empty confidence bin (engine.calibration.reliability)
    with its count, mean confidence and accuracy, and a bar of the accuracy (█) with a mark at the bin's
    confidence (┃): the diagonal, where a calibrated model's bar ends. The bar is green within 5 points of the
    mark, red where the model is over-confident (accuracy below confidence), yellow where under-confident.
    The last row, "all", sums the counts: the number of names evaluated."""
    t = Table(show_edge=False, pad_edge=False, box=None, padding=(0, 1, 0, 0), header_style="bold")
    t.add_column("confidence", no_wrap=True)
    t.add_column("n", justify="right", no_wrap=True)
    t.add_column("conf", justify="right", no_wrap=True)
    t.add_column("acc", justify="right", no_wrap=True)
    t.add_column(Text.assemble("accuracy █ vs confidence ┃"), no_wrap=True, min_width=width)
    total = sum(b["count"] for b in bins)
    for b in bins:
        if not b["count"]:
            continue
        acc, conf = b["accuracy"], b["confidence"]
        gap = acc - conf
        colour = "green" if abs(gap) <= 0.05 else ("red" if gap < 0 else "yellow")
        cells = list(bar(acc, width))
        mark = min(width - 1, int(conf * width))
        filled = cells[mark] != " "
        text = Text("".join(cells[:mark]), style=colour)
        text.append("┃", style=f"bold reverse {colour}" if filled else "bold")
        text.append("".join(cells[mark + 1:]), style=colour)
        t.add_row(f"{b['lo']:.2f}–{b['hi']:.2f}", str(b["count"]), f"{conf:.2f}", f"{acc:.2f}", text)
    if total:
        conf = sum(b["count"] * b["confidence"] for b in bins if b["count"]) / total
        acc = sum(b["count"] * b["accuracy"] for b in bins if b["count"]) / total
        t.add_row(Text("all", style="bold"), Text(str(total), style="bold"), f"{conf:.2f}", f"{acc:.2f}", "")
    return t


def probability_table(top: list[tuple[str, float]], width: int = 20) -> Table:
    table = Table(show_header=False, show_edge=False, box=None, padding=(0, 1))
    table.add_column("label", no_wrap=True)
    table.add_column("bar", no_wrap=True, style="cyan")
    table.add_column("p", justify="right")
    for lab, p in top:
        table.add_row(Text(lab), bar(p, width), f"{100 * p:5.1f}%")
    return table


def attribution_text(name: str, scores: list[float]) -> Text:
    """Letters coloured by how much they drive the prediction (green: supports it, red: argues against).

    Spaces, hyphens and apostrophes stay plain (no colour), so the gaps between the parts of a name show as
    gaps: a coloured space reads as one more letter block and the words run together."""
    text = Text()
    letters = [s for ch, s in zip(name, scores) if not _is_gap(ch)]
    top = max((abs(s) for s in letters), default=0) or 1.0
    for ch, s in zip(name, scores):
        if _is_gap(ch):
            text.append(ch)
            continue
        v = min(1.0, abs(s) / top)
        rgb = (40, int(80 + 175 * v), 80) if s >= 0 else (int(80 + 175 * v), 60, 60)
        text.append(ch, style=Style(bgcolor=Color.from_rgb(*rgb), color="white", bold=v > 0.5))
    return text


def _is_gap(ch: str) -> bool:
    return ch.isspace() or ch in "-'"


LENGTH_HEADERS = {"median": "med"}


def short_path(path: str | os.PathLike | None) -> str:
    """A path as the user would type it: relative to the working folder when inside it, ~ for home."""
    if path is None:
        return ""
    p = str(path)
    if p in ("builtin", "pytorch-names"):
        return p
    try:
        rel = os.path.relpath(p)
        if not rel.startswith(".."):
            return rel
    except ValueError:
        pass
    home = os.path.expanduser("~")
    return "~" + p[len(home):] if home != "/" and p.startswith(home + os.sep) else p


def data_label(source: str | None, ascii_fold: bool = False, short: bool = False) -> str:
    """The data a run was trained on, as shown: its recorded source ("builtin", "pytorch-names", a path; with
    ``short``, a path as the user would type it) and "(ASCII)" when it was folded to ASCII (--ascii); "?" for a
    run that does not record it."""
    shown = (short_path(source) if short else str(source)) if source else "?"
    return shown + (" (ASCII)" if ascii_fold else "")


def counted(n: int, word: str) -> str:
    """"1 label", "18 labels", "1,200 names": a count and its word, in the singular for one."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def name_counts(summary: dict) -> list[str]:
    """A data summary's size in words: ["90 names"] while each name has one label; with names under several
    labels, each (name, label) row and each name apart: ["20,074 rows", "17,424 unique names"]."""
    rows = summary.get("n_pairs", 0)
    unique = summary.get("n_names", rows)
    return [counted(rows, "name")] if unique == rows else [counted(rows, "row"), counted(unique, "unique name")]


NAMELESS_SHOWN = 6      # labels with no name left named in the cleaning table; the rest counted


def summary_tables(summary: dict, names_row: bool = True) -> list:
    """The data summary as a few small tables: labels with bars, lengths, duplicates, cleaning counts, and the
    split: its rows (name, label) and, with ``names_row``, its unique names per part (the Data pane's 30
    columns hold one row: its title says they are rows)."""
    per_label = summary.get("per_label", {})
    most = max(per_label.values(), default=1) or 1
    labels = Table(title=" · ".join([*name_counts(summary), counted(summary.get('n_labels', 0), "label"),
                                     f"source {escape(str(summary.get('source')))}"]), show_edge=False, header_style="bold")
    labels.add_column("label")
    labels.add_column("names", justify="right")
    labels.add_column("", no_wrap=True, style="green")
    # the bars give way to long labels, so that the table keeps its width: at 80 columns a 14-letter label
    # ("Serbo-Croatian") widened it and cut the tables beside it ("med" and p95 of Name length gone)
    longest = max((cell_len(str(lab)) for lab in per_label), default=0)
    width = max(8, 24 - 2 * max(0, longest - 10))       # (a median of 10.0 and more takes a column more too)
    for lab, n in sorted(per_label.items(), key=lambda kv: -kv[1]):
        labels.add_row(Text(lab), str(n), bar(n / most, width))
    lengths = Table(title="Name length", show_edge=False, header_style="bold", pad_edge=False)
    stats = summary.get("length", {})
    for k in stats:     # headers whole at 30 columns (80×24): "median" as "med", never "me…"
        lengths.add_column(LENGTH_HEADERS.get(k, k), justify="right", no_wrap=True, min_width=len(LENGTH_HEADERS.get(k, k)))
    lengths.add_row(*[f"{v:.1f}" if isinstance(v, float) else str(v) for v in stats.values()])
    cleaning = Table(title="Cleaning (every change, by reason)", show_edge=False, header_style="bold")
    cleaning.add_column("reason")
    cleaning.add_column("count", justify="right")
    dropped = summary.get("dropped_labels") if isinstance(summary.get("dropped_labels"), dict) else {}
    for k, v in summary.get("cleaning", {}).items():
        if k == "dropped_small_labels" and dropped:   # the names of labels left out whole: which, why, how many
            cleaning.add_row(Text(f"in labels dropped ({dropped.get('why', 'too small')})"), str(v))
            for lab, n in dropped.get("labels", {}).items():
                cleaning.add_row(Text(f"  {lab}", style="dim"), Text(str(n), style="dim"))
            continue
        cleaning.add_row(k.replace("_", " "), str(v))
        nameless = summary.get("nameless_labels")
        if k == "labels_dropped" and isinstance(nameless, list) and nameless:   # which: a few by name, then how many
            shown = ", ".join(map(str, nameless[:NAMELESS_SHOWN]))
            more = len(nameless) - NAMELESS_SHOWN
            cleaning.add_row(Text(f"  no names left: {shown}{f' and {more} more' if more > 0 else ''}", style="dim"),
                             Text(str(len(nameless)), style="dim"))
    dup = summary.get("cross_label_duplicates", {})
    dups = Table(title="Names under more than one label", show_edge=False, header_style="bold")
    dups.add_column("count", justify="right")
    dups.add_column("examples")
    if isinstance(dup, dict):
        examples = dup.get("examples", [])
        dups.add_row(str(dup.get("count", 0)),     # a name and its count keep together ("Thomas" / "(5)" wrapped)
                     Parts(*(Text(_example(e)) for e in examples[:6]), sep=", "))
    out = [labels, lengths, dups, cleaning]
    if summary.get("split"):
        info = summary["split"]
        counts = info.get("counts") if isinstance(info.get("counts"), dict) else {
            k: v for k, v in info.items() if not isinstance(v, dict)}
        split = Table(title=f"Split by unique name (seed {info.get('seed', 0)})" if "counts" in info
                      else "Split (by unique name)", show_edge=False, header_style="bold")
        names = info.get("names") if isinstance(info.get("names"), dict) and names_row else None
        if names:                             # rows and names told apart (14400 rows read as 14400 unique names)
            split.add_column("", no_wrap=True)
        for k in counts:
            split.add_column(k, justify="right")
        split.add_row(*(["rows"] if names else []), *[str(v) for v in counts.values()])
        if names:
            split.add_row("names", *[str(names.get(k, "–")) for k in counts])
        out.append(split)
    return out


def _example(e) -> str:
    """One cross-label duplicate: a name, a (name, labels) pair or {"name", "labels"}."""
    if isinstance(e, str):
        return e
    if isinstance(e, dict):
        labels = e.get("labels") or []
        return f"{e.get('name', '?')} ({len(labels)})" if labels else str(e.get("name", "?"))
    if e and len(e) == 2 and isinstance(e[1], (list, tuple)):
        return f"{e[0]} ({len(e[1])})"
    return str(e[0]) if e else "?"


# ---- the list of runs ------------------------------------------------------------------------
LIVE_STATES = rf.LIVE_STATES
# (header, drop order: the highest number goes first when the table is too wide; 0 never goes)
# (the id already names the task and the model of a run trained without --run-dir)
RUN_COLUMNS = [("run", 0), ("state", 0), ("progress", 1), ("test", 2), ("best val", 4), ("time", 5), ("task", 6),
               ("model", 7), ("params", 8), ("data", 3)]     # data last: the piped columns keep their places
DATA_WIDTH = (12, 28)   # the runs table's data column, narrowest and widest: a longer path shows its end ("…names.csv")



def marked_task(tasks: list[str | None]) -> str | None:
    """The task shown for marked runs of both tasks (the Runs overlay and the Compare pane: the same choice):
    the one most of them have; on a tie, that of the newest (``tasks`` newest first)."""
    counts = {t: tasks.count(t) for t in tasks if t}
    if not counts:
        return None
    most = max(counts.values())
    return next(t for t in tasks if counts.get(t) == most)


def run_cells(row: dict) -> dict[str, str]:
    """The display text of one ``list_runs`` row, by column header. Uses ``state`` (falls back to the older
    ``status``), and shows progress (step/total) for live runs."""
    if row.get("error"):
        return {"run": row.get("run", "?"), "state": f"damaged: {row['error']}"}
    state = rf.stopped_word(row.get("state") or row.get("status") or "")
    reason = rf.stopped_word(row.get("reason"))
    words = "" if reason in (None, "", "finished") else rf.reason_words(reason)
    if state in rf.REASONS and state != rf.STOPPED:   # runs listed before states existed: status was the reason
        state = "done" if state == "finished" else rf.reason_words(state)
    elif words and words != state:
        state = f"{state} ({words})"
    else:
        state = rf.state_words(state, row.get("untested"))     # "stopped, untrained": no test figures, and why
    if row.get("resumable") and not any(state.startswith(s) for s in LIVE_STATES + ("done",)):
        state += " · resumable"
    progress = ""
    if (row.get("state") in LIVE_STATES + ("stale",)) and row.get("total_steps"):
        step, total = int(row.get("step") or 0), int(row["total_steps"])
        progress = f"{step}/{total} {100 * step / total:.0f}%"
    if row.get("task") == "classify":
        best = f"acc {row['best_val_accuracy']:.3f}" if row.get("best_val_accuracy") is not None else ""
        test = (f"acc {row['test_accuracy']:.3f} F1 {row['test_macro_f1']:.3f}"
                if row.get("test_accuracy") is not None and row.get("test_macro_f1") is not None else "")
    else:
        best = f"nll {row['best_val_nll']:.3f}" if row.get("best_val_nll") is not None else ""
        test = f"nll {row['test_nll']:.3f}" if row.get("test_nll") is not None else ""
    secs = row.get("train_seconds")
    return {"run": row.get("run", "?"), "state": state, "progress": progress, "task": row.get("task") or "",
            "data": data_label(row.get("data"), bool(row.get("ascii_fold")), short=True) if "data" in row else "",
            "test": test, "best val": best, "model": model_label(row.get("model"), row.get("members")),
            "time": f"{secs:.0f}s" if isinstance(secs, (int, float)) else "",
            "params": f"{row['params']:,}" if isinstance(row.get("params"), int) else ""}


def runs_table(rows: list[dict], width: int = 80, title: str | None = None) -> Table:
    """The runs as a table that fits ``width`` columns. Run ids are never cut: the id column does not wrap and is
    as wide as the longest id; when the table is too wide, the least useful columns are dropped first (params,
    model, task, time, best val, data, test, then progress, which joins the state); a long state (a damaged run's
    error) wraps. The data column is the run's recorded source; a long path shows its end, in as few as 12
    columns before the column goes."""
    from io import StringIO

    from rich import box
    from rich.console import Console
    from rich.measure import Measurement

    cells = [run_cells(r) for r in rows]
    columns = [(h, prio) for h, prio in RUN_COLUMNS if prio == 0 or any(c.get(h) for c in cells)]
    longest = max((len(c["run"]) for c in cells), default=3)

    def ending(text: str, room: int) -> str:
        return text if len(text) <= room else "…" + text[len(text) - room + 1:]

    def build(cols, data_room: int = DATA_WIDTH[1]) -> Table:
        t = Table(title=title, header_style="bold", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  padding=(0, 1, 0, 0), title_justify="left")
        for h, _ in cols:
            t.add_column(h, no_wrap=h != "state", min_width=longest if h == "run" else None,
                         max_width=22 if h == "state" else None,
                         justify="right" if h in ("progress", "time", "params") else "left")
        merge = not any(h == "progress" for h, _ in cols)   # no room for progress: it joins the state
        for c in cells:
            t.add_row(*[Text(f"{c['state']} {c['progress']}" if merge and h == "state" and c.get("progress")
                              else ending(c.get(h, ""), data_room) if h == "data"
                              else c.get(h, "")) for h, _ in cols])     # run ids, errors: never markup
        return t

    console = Console(width=width, file=StringIO())
    room = DATA_WIDTH[1]
    table = build(columns, room)
    wide = console.options.update(width=10_000, max_width=10_000)
    while (over := Measurement.get(console, wide, table).maximum - width) > 0 and any(p for _, p in columns):
        worst = max(p for _, p in columns)
        if dict(columns).get("data") == worst and room > DATA_WIDTH[0]:    # a shorter end of the path first
            room = max(DATA_WIDTH[0], room - over)
        else:
            columns = [(h, p) for h, p in columns if p != worst]
        table = build(columns, room)
    return table


def runs_tsv(rows: list[dict]) -> list[str]:
    """The runs as tab-separated lines, a header first: every column, nothing cut, "-" for an empty cell."""
    heads = [h for h, _ in RUN_COLUMNS]
    out = ["\t".join(h.replace(" ", "_") for h in heads)]
    for r in rows:
        c = run_cells(r)
        if "data" in r:     # whole: the source as recorded, for scripts
            c["data"] = data_label(r.get("data"), bool(r.get("ascii_fold")))
        out.append("\t".join((c.get(h) or "-").replace("\t", " ").replace("\n", " ") for h in heads))
    return out
