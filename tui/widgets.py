"""Small widgets shared by the panes: fields that let pane keys through, the pane base, modal screens."""
from __future__ import annotations

import asyncio
import re
from pathlib import Path

from rich.cells import cell_len
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.await_complete import AwaitComplete
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import DataTable, Input, Select, Static

from namestudio.engine.experiment import run_name

from . import keys
from .render import bar, short_path  # noqa: F401  (short_path: the panes import it from here)

# Characters a field accepts. A field claims only these keys, so the pane's letter keys and the
# pane-switch digits still work while, say, the epochs field has the focus.
INTEGER = r"[0-9+\-]"
NUMBER = r"[0-9.eE+\-]"
NAME = r"[^\d]"          # names never hold digits: a digit is refused, with a word (not a pane switch)
ANY = r"."


def guard_option_list_paging() -> None:
    """Work around a Textual 8 bug found by the fuzz test: Page Up/Down on an OptionList (the command
    palette's list, an open Select) before it has a size, e.g. in a burst of keys right after it opened or
    in a tiny terminal, reads its empty line cache and raises KeyError. Then the key does nothing."""
    from textual.widgets import OptionList

    move = OptionList._move_page
    if getattr(move, "namestudio_guard", False):
        return

    def _move_page(self, direction) -> None:
        if not self.scrollable_content_region:
            return
        try:
            move(self, direction)
        except (KeyError, IndexError):
            pass

    _move_page.namestudio_guard = True
    OptionList._move_page = _move_page


class Field(Input):
    """An Input that only claims the characters it accepts (see ``accept``)."""

    def __init__(self, value: str = "", *, accept: str = ANY, **kw) -> None:
        kw.setdefault("compact", True)
        if accept == INTEGER:
            kw.setdefault("type", "integer")
        elif accept == NUMBER:
            kw.setdefault("type", "number")
        if accept == NAME:
            kw.setdefault("restrict", NAME + "*")
        super().__init__(value, **kw)
        self._accept = re.compile(accept)
        self._name = accept == NAME

    def check_consume_key(self, key: str, character: str | None) -> bool:
        if self._name and character is not None and character.isdigit():
            return True    # refused (restricted), not a pane switch: the letters typed next would be that pane's keys
        return character is not None and character.isprintable() and bool(self._accept.fullmatch(character))

    def restricted(self) -> None:
        self.app.bell()
        if self._name:
            self._no_digits()

    def _no_digits(self) -> None:
        """Say it once while the word is on screen (typing "2026" stacked four toasts)."""
        import time

        now = time.monotonic()
        if now - getattr(self, "_said", -10.0) > 4:
            self._said = now
            self.app.notify("A name holds no digits. Escape leaves the field; then 1–7 switch panes.",
                            severity="warning", timeout=4)

    def _on_paste(self, event) -> None:
        """A pasted name keeps its letters and leaves its digits out, as `namestudio classify` reads one (the whole
        paste of "Louis2" was refused)."""
        if self._name and event.text and any(c.isdigit() for c in event.text.splitlines()[0]):
            event.prevent_default()
            event.stop()
            line = re.sub(r"\d", "", event.text.splitlines()[0])
            self._no_digits()
            if self.selection.is_empty:
                self.insert_text_at_cursor(line)
            else:
                self.replace(line, *self.selection)
        # otherwise Input's own handler (Textual calls each class's handler in turn, unless prevented) pastes it


class Anchor(Static, can_focus=True):
    """The one-line heading of a pane, which takes the focus when no field has it, so that the pane's
    keys work (and ↑/↓ scroll the pane). Focusing a leaf is cheap; focusing the whole pane would make
    Textual restyle every widget in it on each pane switch."""


class Flowing(Anchor):
    """An Anchor whose text is laid out for its width, again whenever the width changes, or any text put in its
    place (``say``). As given: a line of parts (render.Parts) that breaks only between them, then more text
    (``flow``)."""

    laid: tuple | None = None

    def flow(self, parts, after: Text | None = None) -> None:
        self._show(parts, after)

    def say(self, text) -> None:
        """Something else in its place (a message: loading, a failure)."""
        self.laid = None
        self.update(text)

    def _show(self, *laid) -> None:
        self.laid = laid
        self._lay_out()

    def on_resize(self, event) -> None:
        if self.laid is not None:
            self._lay_out()

    def _lay_out(self) -> None:
        self.update(self._text(self.size.width or max(20, self.app.size.width - 3)))   # not laid out yet: about
        #                                                                                the screen's width

    def _text(self, width: int) -> Text:
        parts, after = self.laid
        text = parts.lines(width)
        if after is not None:
            text.append("\n").append_text(after.lines(width) if hasattr(after, "lines") else after)
        return text


class Heading(Flowing):
    """A pane's heading given in parts (``show``): the first, then as many of the others as fit on its first
    line, each whole; the rest on the next line."""

    def show(self, first: Text, rest: list[Text]) -> None:
        self._show(first, rest)

    def _text(self, width: int) -> Text:
        first, rest = self.laid
        head, rest = first.copy(), list(rest)
        while rest and head.cell_len + 3 + rest[0].cell_len <= width:
            head.append(" · ").append_text(rest.pop(0))
        if rest:
            head.append("\n").append_text(Text(" · ").join(rest))
        return head


class Pane(VerticalScroll, can_focus=False):
    """One pane of the app. It scrolls when the terminal is small; its Anchor holds the focus so that
    its keys work after Escape leaves a field.

    A pane builds its widgets the first time it is shown (``ensure_built``), which halves the app's
    start-up work. Until then its methods only record state; ``on_built`` draws that state."""

    pane_id = ""

    def __init__(self, *, eager: bool = False, **kw) -> None:
        super().__init__(**kw)
        self.built = eager          # True once the widgets exist (queries are safe) and on_built has run
        self._building: asyncio.Event | None = None

    def compose(self) -> ComposeResult:
        if self.built or self._building is not None:
            yield from self.compose_content()

    def compose_content(self) -> ComposeResult:
        yield from ()

    async def ensure_built(self) -> None:
        """Build the widgets once. While they are being built, ``built`` stays False (so that callbacks
        such as a theme change only record state) and a second caller waits for the first."""
        if self.built:
            return
        if self._building is not None:
            await self._building.wait()
            return
        self._building = asyncio.Event()
        try:
            await self.recompose()
            self.built = True
            self.on_built()
        finally:
            self._building.set()

    def on_built(self) -> None:
        """Draw the state recorded before the widgets existed."""

    @property
    def run_path(self) -> Path | None:
        """The run this pane shows, if any (the screenshot key saves into its folder): by default the
        loaded run in ``self.run``; panes that track their run differently override this."""
        run = getattr(self, "run", None)
        return Path(run.path) if run is not None else None

    def focus_anchor(self) -> None:
        anchors = self.query(Anchor)
        if anchors:
            anchors.first().focus()

    def focus_default(self) -> None:
        self.focus_anchor()

    def on_worker_state_changed(self, event) -> None:
        """Worker state messages do not bubble: a pane's worker that raised is reported by the app."""
        from textual.worker import WorkerState

        if event.state == WorkerState.ERROR:
            self.worker_failed(event.worker)
            self.app.show_worker_error(event.worker)

    def worker_failed(self, worker) -> None:
        """Put the pane back in a usable state after its worker raised."""


class ProgressLine(Widget):
    """A one-line progress bar with its percentage. Cheap to update many times a second: it never asks
    for a new layout (Textual's ProgressBar re-lays out its labels on every update)."""

    COMPONENT_CLASSES = {"progress--bar", "progress--rest"}

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.completed, self.total = 0.0, 0.0

    def set(self, completed: float, total: float) -> None:
        if (completed, total) != (self.completed, self.total):
            self.completed, self.total = completed, total
            self.refresh()

    def render(self) -> Text:
        frac = self.completed / self.total if self.total else 0.0
        width = max(1, self.size.width - 6)
        done = bar(frac, width).rstrip()
        rest = "━" * (width - len(done))
        return Text.assemble((done, self.get_component_rich_style("progress--bar")),
                             (rest, self.get_component_rich_style("progress--rest")), f" {100 * frac:4.0f}%")


class KeyBar(Widget):
    """The footer: the active keys with their descriptions, on one line (a click runs the key).

    Textual's Footer mounts a widget per key and rebuilds them all whenever the focus moves, which costs
    tens of milliseconds on every pane switch; this draws one line of text instead."""

    COMPONENT_CLASSES = {"keybar--key", "keybar--disabled"}

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self._spans: list[tuple[int, int, str]] = []   # (start, end, key) of each shown binding

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, lambda _screen: self.refresh())
        changed = getattr(self.app, "screen_change_signal", None)   # a dialog opens or closes: its keys, or ours
        if changed is not None:
            changed.subscribe(self, lambda _screen: self.refresh())

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)
        changed = getattr(self.app, "screen_change_signal", None)
        if changed is not None:
            changed.unsubscribe(self)

    def items(self) -> list[tuple[list[str], str, bool, str]]:
        """(keys, description, enabled, id) of the shown bindings, a group's keys together, in footer order:
        the focused pane's keys first, then the app's in keys.FOOTER_ORDER."""
        from .keys import FOOTER_ORDER

        by_action: dict[str, tuple] = {}
        screen = self.app.screen if isinstance(self.app.screen, ModalScreen) else self.screen  # a dialog's keys
        for active in screen.active_bindings.values():
            b = active.binding
            if b.show and b.action not in by_action:
                by_action[b.action] = (b, active.enabled)
        out: list[tuple[list[str], str, bool, str]] = []
        groups: dict[str, int] = {}
        for b, enabled in by_action.values():
            bid = (b.id or "").removeprefix("namestudio.")
            if b.group is not None:
                if b.group.description in groups:
                    out[groups[b.group.description]][0].append(b.key)
                    continue
                groups[b.group.description] = len(out)
                out.append(([b.key], b.group.description, enabled, bid.split(".")[0]))
            else:
                out.append(([b.key], b.description, enabled, bid))
        app_rank = {bid: i for i, bid in enumerate(FOOTER_ORDER)}
        return sorted(out, key=lambda item: app_rank.get(item[3], -1))    # stable: the pane's keys keep their order

    def fitted(self, width: int | None = None) -> list[tuple[list[str], str, bool, str]]:
        """The items that fit in ``width`` cells: all of them when they fit; else without keys.FOOTER_SPARE;
        then with the short descriptions of keys.FOOTER_SHORT; then without keys.FOOTER_DROP, in that order,
        so that the pane's keys, esc, F1, ^p and ^q stay at 80 columns (issue 12); then, if still too long,
        without the pane's last keys, so that esc, F1, ^p and ^q always show."""
        from .keys import FOOTER_DROP, FOOTER_ORDER, FOOTER_SHORT, FOOTER_SPARE

        width = self.size.width if width is None else width
        items = self.items()
        for bid in FOOTER_SPARE:
            if _bar_width(items) <= width:
                return items
            items = [item for item in items if item[3] != bid]
        if _bar_width(items) <= width:
            return items
        items = [(k, FOOTER_SHORT.get(bid, d), e, bid) for k, d, e, bid in items]
        for bid in FOOTER_DROP:
            if _bar_width(items) <= width:
                break
            items = [item for item in items if item[3] != bid]
        # still too long (a form field focused adds esc Leave): the pane's last keys go, one by one, so that
        # esc, F1, ^p and ^q are never cut off the end (F1 and ^p still list the keys left out)
        while _bar_width(items) > width:
            last = next((i for i in range(len(items) - 1, -1, -1) if items[i][3] not in FOOTER_ORDER), None)
            if last is None:
                break
            del items[last]
        return items

    def render(self) -> Text:
        from rich.style import Style

        # colours only: the bar's own background shows through (an explicit one renders differently in 256 colours)
        key = self.get_component_rich_style("keybar--key")
        key_style = Style(color=key.color, bold=key.bold, bgcolor=self.rich_style.bgcolor)
        off_style = Style(color=self.get_component_rich_style("keybar--disabled").color)
        text, self._spans = Text(no_wrap=True, overflow="crop"), []
        for combo, description, enabled, _ in self.fitted():
            start = len(text)
            label = _keys_label(combo)
            text.append(f" {label}", key_style if enabled else off_style)
            text.append(f" {description}", None if enabled else off_style)
            if len(combo) == 1:
                self._spans.append((start, len(text), combo[0]))
            else:
                pos = start + 1
                for k in combo:
                    self._spans.append((pos, pos + len(key_label(k)), k))
                    pos += len(key_label(k))
        return text

    def on_click(self, event) -> None:
        for start, end, key in self._spans:
            if start <= event.x < end:
                self.app.simulate_key(key)
                break


class DismissOnce:
    """A screen mixin: dismiss only while on top, and only once. Two Enter or Escape keys in one burst both
    reach a screen before it is gone; the second dismiss would pop the screen under it (or raise
    ScreenStackError when none is left)."""

    _dismissed = False

    def dismiss(self, result=None) -> AwaitComplete:
        if self._dismissed or self.app.screen is not self:
            return AwaitComplete()
        self._dismissed = True
        return super().dismiss(result)


class ErrorScreen(DismissOnce, ModalScreen[None]):
    """A message that must be read: a worker error, a failed run, bad data."""

    BINDINGS = keys.ERROR

    def __init__(self, title: str, message: str) -> None:
        super().__init__()
        self.title_text = title
        self.message = message

    def compose(self) -> ComposeResult:
        with Vertical(id="error-box"):
            yield Static(Text(self.title_text, style="bold"), id="error-title")
            yield Static(Text(self.message), id="error-message")
            yield Static(Text("Enter or Escape closes this message.", style="dim"), id="error-hint")


class HelpScreen(DismissOnce, ModalScreen[None]):
    """Every key with its help text, by pane."""

    BINDINGS = keys.HELP

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


def _keys_label(keys: list[str]) -> str:
    return "".join(key_label(k) for k in keys) if len(keys) > 1 else key_label(keys[0])


def _bar_width(items) -> int:
    return sum(len(_keys_label(k)) + len(d) + 2 for k, d, _, _ in items)


def key_label(key: str) -> str:
    if key in _KEY_NAMES:
        return _KEY_NAMES[key]
    return key.replace("ctrl+", "^") if key.startswith("ctrl+") else key


# ---- formatting helpers -------------------------------------------------------------
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


RUN_CELL = 20     # the Runs table's id column: with state, task, model, test and F1 beside it, 80 columns (issue 12)


def run_cell(row: dict, width: int = RUN_CELL) -> str:
    """The run id as the Runs table shows it: ``short_run``, unless that is wider than ``width``. An
    experiment's run (``exp-<date>-<time>-<task>/<model>-<key>=<value>…``) then shows as the experiment's
    time and the run's model and values (the keys are the same for every run of an experiment), without the
    time if that is still too wide; whatever is still too wide loses its middle. The state and the test
    figures stay on screen at 80 columns, and the pane's title shows the highlighted run's whole id."""
    text = short_run(row)
    if len(text) <= width:
        return text
    exp, sep, rest = text.rpartition("/")
    if sep:
        parts = re.split(r"-(?=[a-z_]+=)", rest)        # a value may hold a hyphen (1e-05), a key never
        values = " ".join([parts[0], *(p.split("=", 1)[1] for p in parts[1:])])
        m = re.fullmatch(r"exp-\d{8}-(\d{6})(?:-.*)?", exp)
        text = f"{m.group(1) if m else exp}/{values}"
        if len(text) > width:
            text = values
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head):]


class ScrollTable(DataTable):
    """A row-cursor DataTable that says which of its columns end past its right edge (``offscreen``), so that
    its pane can name them with the way to them (``scroll_hint``: → scrolls a row-cursor table, ← back); it
    posts ``Resized`` on each change of its size, for the pane to keep that right. Its first ``fixed_columns``
    stay in view as it scrolls. (At 80 columns tables were cut at the edge with only a thin scroll bar to
    tell: the Compare pane's n-gram column, the Runs pane's time and params.)"""

    class Resized(Message):
        def __init__(self, table: "ScrollTable") -> None:
            super().__init__()
            self.table = table

        @property
        def control(self) -> "ScrollTable":
            return self.table

    def on_resize(self, event) -> None:
        self.post_message(self.Resized(self))

    def offscreen(self) -> list[str]:
        """The headers of the columns that end past the right edge while the table is scrolled to the left;
        none before it has a size. The widths are measured from the cells: the table measures its own only
        when it is next idle."""
        width = self.scrollable_content_region.width
        if width <= 0:
            return []
        out, x = [], 0
        for column in self.ordered_columns:
            label = str(column.label).strip()
            x += max([cell_len(label), *(cell_len(str(c)) for c in self.get_column(column.key))]) \
                + 2 * self.cell_padding
            if x > width:
                out.append(label)
        return out


def scroll_hint(columns: list[str]) -> Text:
    """What a ScrollTable's pane says of the columns past its right edge."""
    return Text.assemble(("→", "bold"), f" scrolls to {', '.join(columns)} (", ("←", "bold"), " back)") \
        if columns else Text("")


class Choice(Select):
    """Textual's Select, safe to mount under load. Its mount sets up the options' list in its overlay child;
    under a loaded CPU that child was once not there yet (or no longer: the app quitting during start-up), and
    the NoMatches crashed the app (a CI run; the same family as Textual issue #6581). The set-up then waits
    for the next refresh, and is dropped once the Select has left the screen."""

    def _setup_options_renderables(self) -> None:
        try:
            from textual.widgets._select import SelectOverlay   # private: another Textual may lack it
        except ImportError:
            return super()._setup_options_renderables()
        if self.query(SelectOverlay):
            super()._setup_options_renderables()
        elif self.is_attached:
            self.call_after_refresh(self._setup_options_renderables)


def set_select(select, options: list[tuple[str, object]] | None = None, value=None) -> None:
    """Replace a Select's options (when given) and choose ``value`` when it is one of them.

    Select.Changed messages that this causes arrive later; handlers compare the Select's value with
    the pane's own state, so a programmatic change never reloads anything twice."""
    if options is not None:   # a prompt with a "[" (a run's folder, a label "[/Irish]") is text, never markup
        options = [(Text(p) if isinstance(p, str) and "[" in p else p, v) for p, v in options]
        current = [(p, v) for p, v in select._options if v is not select.NULL]
        if list(options) == current:      # the same options (each runs listing sends them): nothing to rebuild
            if value is None and select.value is not select.NULL:
                select.clear()            # as set_options would: no choice shown that the pane does not hold
            options = None
        else:
            select.set_options(options)
    values = [v for _, v in select._options]
    if value is not None and value in values:
        select.value = value
    elif value is None and options is not None and select.value not in values:
        select.clear()


def usable(run: dict) -> bool:
    """A run row that has finished (or was stopped) and so has weights to load; a live one (its first evaluation
    saves them). Not a run stopped before any training (or before its first evaluation): it has none."""
    from namestudio.engine.runfolder import LIVE_STATES
    return ("error" not in run and run.get("status", "incomplete") != "incomplete"
            and (run.get("weights", True) or run.get("state") in LIVE_STATES))


def best_run(runs: list[dict], task: str, data: str | None = None) -> dict | None:
    """The run a selector starts on: the best finished run of ``task`` (state done; the highest test accuracy
    of a classifier, the lowest test NLL of a generator), not the newest, which may be a stopped one. Without
    a finished run with test metrics, the newest usable run (issue 12). With ``data`` (a data source), only
    the runs trained on it when there are any: figures on other data do not compare, and a toy run's 1.000
    would win."""
    mine = [r for r in runs if r.get("task") == task and usable(r)]
    if data is not None:
        mine = [r for r in mine if r.get("data") == data] or mine
    key = "test_accuracy" if task == "classify" else "test_nll"
    done = [r for r in mine if r.get("state", "done") == "done" and isinstance(r.get(key), (int, float))]
    if done:
        return max(done, key=lambda r: r[key]) if task == "classify" else min(done, key=lambda r: r[key])
    return mine[0] if mine else None


def read_run(path: str, task: str) -> tuple[object, str, str]:
    """Load a saved run for a pane, in any thread: (run, "", "") or (None, a one-line reason, its severity) for a
    run that cannot be read or is of the other task (never an exception)."""
    from namestudio.engine.infer import load_run

    try:
        run = load_run(path)
    except Exception as e:
        text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return None, f"{run_name(path)}: {text}", "error"
    if run.task != task:
        need = "a classifier" if task == "classify" else "a generator"
        return None, f"{run_name(run.path)} is a {run.task} run; this needs {need}.", "warning"
    return run, "", ""


def load_run_in_worker(pane, slot: str, path: str, task: str, quiet: bool) -> None:
    """Load a run for ``pane`` off the UI thread (reading the weights takes 12-25 ms, 250-300 ms beside a training
    run, and froze the screen): the pane gets a ``RunLoaded`` message. One load per pane and slot at a time; the
    pane keeps only the answer for the path it asked for last."""
    from .messages import RunLoaded

    def work() -> None:
        run, error, severity = read_run(path, task)
        pane.post_message(RunLoaded(slot, path, quiet, run, error, severity or "error"))
    pane.run_worker(work, thread=True, exclusive=True, group=f"{pane.pane_id}-{slot}", exit_on_error=False)


def load_failed(pane, msg, select_id: str) -> None:
    """A run a pane asked for (``RunLoaded`` with no run): said unless quiet, and the selector back on the run
    still shown."""
    if not msg.quiet:
        pane.app.notify(msg.error, title="Cannot load the run" if msg.severity == "error" else "",
                        severity=msg.severity, markup=False)
    if pane.run is not None:
        set_select(pane.query_one(select_id), value=str(pane.run.path))
    pane._refresh_view()
