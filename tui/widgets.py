"""Small widgets shared by the panes: fields that let pane keys through, the pane base, modal screens."""
from __future__ import annotations

import os
import re
from pathlib import Path

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Static

# Characters a field accepts. A field claims only these keys, so the pane's letter keys and the
# pane-switch digits still work while, say, the epochs field has the focus.
INTEGER = r"[0-9+\-]"
NUMBER = r"[0-9.eE+\-]"
NAME = r"[^\d]"          # names never hold digits: digits switch panes
ANY = r"."


class Field(Input):
    """An Input that only claims the characters it accepts (see ``accept``)."""

    def __init__(self, value: str = "", *, accept: str = ANY, **kw) -> None:
        kw.setdefault("compact", True)
        if accept == INTEGER:
            kw.setdefault("type", "integer")
        elif accept == NUMBER:
            kw.setdefault("type", "number")
        super().__init__(value, **kw)
        self._accept = re.compile(accept)

    def check_consume_key(self, key: str, character: str | None) -> bool:
        return character is not None and character.isprintable() and bool(self._accept.fullmatch(character))


class Pane(VerticalScroll, can_focus=True):
    """One pane of the app. It scrolls when the terminal is small, and it can hold the focus itself
    so that its keys work after Escape leaves a field.

    A pane builds its widgets the first time it is shown (``ensure_built``), which halves the app's
    start-up work. Until then its methods only record state; ``on_built`` draws that state."""

    pane_id = ""

    def __init__(self, *, eager: bool = False, **kw) -> None:
        super().__init__(**kw)
        self.built = eager

    def compose(self) -> ComposeResult:
        if self.built:
            yield from self.compose_content()

    def compose_content(self) -> ComposeResult:
        yield from ()

    async def ensure_built(self) -> None:
        if not self.built:
            self.built = True
            await self.recompose()
            self.on_built()

    def on_built(self) -> None:
        """Draw the state recorded before the widgets existed."""

    @property
    def run_path(self) -> Path | None:
        """The run this pane shows, if any (the screenshot key saves into its folder)."""
        return None

    def focus_default(self) -> None:
        self.focus()

    def on_worker_state_changed(self, event) -> None:
        """Worker state messages do not bubble: a pane's worker that raised is reported by the app."""
        from textual.worker import WorkerState

        if event.state == WorkerState.ERROR:
            self.worker_failed(event.worker)
            self.app.show_worker_error(event.worker)

    def worker_failed(self, worker) -> None:
        """Put the pane back in a usable state after its worker raised."""


class ErrorScreen(ModalScreen[None]):
    """A message that must be read: a worker error, a failed run, bad data."""

    BINDINGS = [Binding("escape,enter,q", "dismiss", "Close", tooltip="Close this message.")]

    def __init__(self, title: str, message: str) -> None:
        super().__init__()
        self.title_text = title
        self.message = message

    def compose(self) -> ComposeResult:
        with Vertical(id="error-box"):
            yield Static(Text(self.title_text, style="bold"), id="error-title")
            yield Static(Text(self.message), id="error-message")
            yield Static(Text("Enter or Escape closes this message.", style="dim"), id="error-hint")


class HelpScreen(ModalScreen[None]):
    """Every key with its help text, by pane."""

    BINDINGS = [Binding("escape,f1,question_mark,q", "dismiss", "Close", tooltip="Close the keys screen.")]

    def __init__(self, groups: list[tuple[str, list[Binding]]]) -> None:
        super().__init__()
        self.groups = groups

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(Text("Keys (Escape closes)", style="bold"), id="help-title")
            for title, bindings in self.groups:
                table = Table(title=title, title_justify="left", title_style="bold", show_header=False,
                              box=None, padding=(0, 1), expand=True)
                table.add_column("key", style="bold", no_wrap=True, width=12)
                table.add_column("what", ratio=1)
                for b in bindings:
                    table.add_row(key_label(b.key), f"{b.description}: {b.tooltip}" if b.tooltip else b.description)
                yield Static(table, classes="help-group")


_KEY_NAMES = {"question_mark": "?", "space": "space", "escape": "esc", "up": "↑", "down": "↓"}


def key_label(key: str) -> str:
    if key in _KEY_NAMES:
        return _KEY_NAMES[key]
    return key.replace("ctrl+", "^") if key.startswith("ctrl+") else key


# ---- formatting helpers -------------------------------------------------------------
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


def duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "–"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def compact_number(n: float | int | None) -> str:
    if n is None:
        return ""
    n = float(n)
    for unit, size in (("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n:.0f}"


def short_run(row: dict) -> str:
    """The run id without the task and model it ends with (they have their own columns)."""
    run = row.get("run", "")
    suffix = f"-{row.get('task')}-{row.get('model')}"
    if suffix in run:
        head, _, tail = run.partition(suffix)
        return head + tail
    return run


def set_select(select, options: list[tuple[str, object]] | None = None, value=None) -> None:
    """Replace a Select's options (when given) and choose ``value`` when it is one of them.

    Select.Changed messages that this causes arrive later; handlers compare the Select's value with
    the pane's own state, so a programmatic change never reloads anything twice."""
    from textual.widgets import Select

    if options is not None:
        select.set_options(options)
    values = [v for _, v in select._options]
    if value is not None and value in values:
        select.value = value
    elif value is None and options is not None and select.value not in values:
        select.clear()


def usable(run: dict) -> bool:
    """A run row that has finished (or was stopped) and so has weights to load."""
    return "error" not in run and run.get("status", "incomplete") != "incomplete"
