"""Data pane: the active source, its summary, and switching source (built-in, pytorch-names, a path)."""
from __future__ import annotations

from rich.cells import cell_len
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, ProgressBar, Static

from .. import keys
from ..messages import DatasetFailed, DatasetLoaded, DownloadDone, DownloadProgress
from ..render import counted, name_counts, summary_tables
from ..widgets import ANY, Field, Heading, Pane, short_path


class MinWidth:
    """A table at least ``width`` wide where there is room, else at least as wide as its title where there is
    room for that (a narrower table wraps its title). Rich's own Table.min_width fails an assertion
    ("Sum of ratios must be > 0") when the space is narrower than the table's columns: at 56 columns or
    fewer on this pane (issue 13). Here a minimum applies only when it fits."""

    def __init__(self, table: Table, width: int) -> None:
        self.table, self.width = table, width

    def _fit(self, options) -> Table:
        title = cell_len(str(self.table.title or ""))
        fits = [w for w in (max(self.width, title), title) if 0 < w <= options.max_width]
        self.table.min_width = fits[0] if fits else None
        return self.table

    def __rich_console__(self, console, options):
        yield self._fit(options)

    def __rich_measure__(self, console, options) -> Measurement:
        return Measurement.get(console, options, self._fit(options))


class DataPane(Pane):
    pane_id = "data"
    BINDINGS = keys.DATA

    def __init__(self, initial: str | None = None, **kw) -> None:
        super().__init__(eager=True, **kw)      # the first pane: built at once
        self.initial = initial
        self.source: str | None = None        # what the user asked for ("builtin", "pytorch-names", a path)
        self.dataset = None
        self.summary: dict | None = None
        self.downloading = False
        self._last_pct = -1
        self.typed: str | None = None         # a path typed in the field, while it loads

    def compose_content(self) -> ComposeResult:
        with Horizontal(id="data-sources", classes="toolbar"):
            yield Button("Built-in", id="use-builtin", compact=True, tooltip="b: use the built-in offline dataset")
            yield Button("PyTorch names", id="use-pytorch", compact=True,
                         tooltip="p: use the PyTorch names (downloaded when missing)")
            yield Label("Path:", classes="field-label")
            yield Field(placeholder="folder of <Label>.txt, .csv, .txt; Enter", accept=ANY, id="data-path")
        yield Heading("", id="data-status")
        with Horizontal(id="download-row"):
            yield Label("Downloading pytorch-names ", classes="field-label")
            yield ProgressBar(id="download-bar", show_eta=True)
        with Horizontal(id="data-body"):
            yield Static("", id="data-labels")
            with Vertical(id="data-side"):
                yield Static("", id="data-lengths")
                yield Static("", id="data-split")
                yield Static("", id="data-dups")
                yield Static("", id="data-cleaning")

    def on_mount(self) -> None:
        self.query_one("#download-row").display = False
        from namestudio.data import default_source, pytorch_names_available

        if self.initial:
            why = "chosen with --data" if self.initial not in ("builtin", "pytorch-names") else "asked for at start"
            self.load(self.initial, why)
        else:
            src = default_source()
            why = ("chosen at start: pytorch-names is on disk" if pytorch_names_available()
                   else "chosen at start: pytorch-names is not on disk (press p to download it)")
            self.load(src, why)

    # ---- loading ------------------------------------------------------------------
    def load(self, src: str, why: str) -> None:
        self._status(Text(f"Loading {short_path(src)} …"))   # a path: never markup
        self._load_worker(src, why)

    @work(thread=True, exclusive=True, group="data", exit_on_error=False)
    def _load_worker(self, src: str, why: str) -> None:
        from namestudio.data import DataError, load_dataset, split_by_name, summarise

        try:
            ds = load_dataset(src)
            split = split_by_name(ds.pairs, seed=0) if len(ds.pairs) >= 3 else None
            summary = summarise(ds, split)
        except (DataError, ValueError, OSError) as e:
            self.post_message(DatasetFailed(src, str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__))
            return
        self.post_message(DatasetLoaded(ds, summary, why))

    def on_dataset_loaded(self, msg: DatasetLoaded) -> None:
        if self.typed is not None:            # the typed path loaded: out of the field, the pane keys work again
            self.typed = None
            if self.query_one("#data-path", Field).has_focus:
                self.focus_anchor()
        self.dataset, self.summary = msg.dataset, msg.summary
        self.source = msg.dataset.source
        s = msg.summary
        # the source and its counts on the first line, why it was chosen after them: on the next line where the
        # first is full (at 80 columns the heading wrapped wherever the width ran out, mid-phrase and all)
        self.query_one("#data-status", Heading).show(
            Text.assemble(("Active source:", "bold"), f" {short_path(s['source'])}"),
            [Text(part) for part in [*name_counts(s), counted(s["n_labels"], "label")]] + [Text(msg.why, style="dim")])
        tables = summary_tables(s, names_row=False)
        labels, lengths, dups, cleaning = tables[:4]
        labels.title = "Names per label"
        lengths.title, dups.title, cleaning.title = "Name length", "Names under 2+ labels", "Cleaning, by reason"
        if len(tables) > 4:
            tables[4].title = "Rows split by name (seed 0)"   # rows (name, label), not unique names
        for t in tables[1:]:
            t.title_justify = "left"
        tables[1:] = [MinWidth(t, 30) for t in tables[1:]]
        self.query_one("#data-labels", Static).update(labels)
        self.query_one("#data-lengths", Static).update(tables[1])
        self.query_one("#data-dups", Static).update(tables[2])
        self.query_one("#data-cleaning", Static).update(tables[3])
        self.query_one("#data-split", Static).update(tables[4] if len(tables) > 4 else "")

    def _status(self, text) -> None:
        self.query_one("#data-status", Heading).say(text)

    def on_dataset_failed(self, msg: DatasetFailed) -> None:
        still = f" Still using {short_path(self.source)}." if self.dataset is not None else ""
        self._status(Text.assemble(
            (f"Could not load {short_path(msg.source)}:", "bold red"), f" {msg.message}.{still}"))
        if msg.source == self.typed:          # a typed path failed: the field keeps the focus, its text selected,
            self.typed = None                 # so that what is typed next corrects it (never fires a pane key)
            field = self.query_one("#data-path", Field)
            field.focus()
            field.select_all()

    # ---- download -----------------------------------------------------------------
    def start_download(self) -> None:
        if self.downloading:
            self.app.notify("The download is already running.")
            return
        self.downloading = True
        self._last_pct = -1
        row = self.query_one("#download-row")
        row.display = True
        self.query_one("#download-bar", ProgressBar).update(total=None, progress=0)
        self._status("Downloading the PyTorch names (checksum verified) …")
        self._download_worker()

    @work(thread=True, exclusive=True, group="download", exit_on_error=False)
    def _download_worker(self) -> None:
        from namestudio.data import DataError, download_pytorch_names

        def progress(done: int, total: int | None) -> None:
            pct = int(100 * done / total) if total else done // (256 * 1024)
            if pct != self._last_pct:       # at most ~100 small messages
                self._last_pct = pct
                self.post_message(DownloadProgress(done, total))

        try:
            download_pytorch_names(progress=progress)
        except (DataError, OSError) as e:
            self.post_message(DownloadDone(False, str(e).strip().splitlines()[0]))
            return
        self.post_message(DownloadDone(True))

    def on_download_progress(self, msg: DownloadProgress) -> None:
        self.query_one("#download-bar", ProgressBar).update(total=msg.total, progress=msg.done)

    def on_download_done(self, msg: DownloadDone) -> None:
        self.downloading = False
        self.query_one("#download-row").display = False
        if msg.ok:
            self.app.notify("PyTorch names downloaded.")
            self.load("pytorch-names", "downloaded just now")
        else:
            self._status(Text.assemble(("Download failed:", "bold red"),
                                                                      f" {msg.message}"))
            self.app.notify(msg.message, title="Download failed", severity="error", markup=False)

    # ---- actions ------------------------------------------------------------------
    def action_use_builtin(self) -> None:
        self.load("builtin", "chosen by you")

    def action_use_pytorch(self) -> None:
        from namestudio.data import pytorch_names_available

        if pytorch_names_available():
            self.load("pytorch-names", "chosen by you")
        else:
            self.start_download()

    def action_open_path(self) -> None:
        self.query_one("#data-path", Field).focus()

    def action_reload(self) -> None:
        if self.source:
            self.load(self.source, "reloaded")

    @on(Button.Pressed, "#use-builtin")
    def _builtin_pressed(self) -> None:
        self.action_use_builtin()

    @on(Button.Pressed, "#use-pytorch")
    def _pytorch_pressed(self) -> None:
        self.action_use_pytorch()

    @on(Input.Submitted, "#data-path")
    def _path_submitted(self, event: Input.Submitted) -> None:
        path = event.value.strip()
        if path:
            self.typed = path                 # the focus stays in the field until it loads (or fails)
            self.load(path, "typed by you")
        else:
            self.focus_anchor()
