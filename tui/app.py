"""The namestudio Textual app: seven panes (Data, Train, Evaluate, Classify, Generate, Runs, Compare).

The app renders engine events and calls the engine's API; it holds no training logic. Every key is
defined in tui/keys.py, every message in tui/messages.py, every style in app.tcss.
"""
from __future__ import annotations

import asyncio
import gc
import time
from functools import partial
from pathlib import Path

from rich.text import Text
from textual import events, work
from textual.app import App, ComposeResult
from textual.command import CommandList, CommandPalette, DiscoveryHit, Hit, Hits, Provider
from textual.widgets import Input, Static, TabbedContent, TabPane, Tabs
from textual.worker import Worker, WorkerState, get_current_worker

from namestudio.engine import runfolder as rf
from namestudio.engine.experiment import run_name

from . import keys
from .dialogs import QuitScreen
from .follow import Follower
from .messages import DatasetLoaded, DevicesFound, OpenRun, RunEvents, RunsListed
from .panes.classify import ClassifyPane
from .panes.compare import ComparePane
from .panes.data import DataPane
from .panes.evaluate import EvaluatePane
from .panes.generate import GeneratePane
from .panes.runs import RunsPane
from .panes.train import TrainPane
from .render import counted, name_counts
from .widgets import DismissOnce, ErrorScreen, HelpScreen, KeyBar, Pane, guard_option_list_paging, short_path

guard_option_list_paging()

PANE_CLASSES = {"data": DataPane, "train": TrainPane, "evaluate": EvaluatePane, "classify": ClassifyPane,
                "generate": GeneratePane, "runs": RunsPane, "compare": ComparePane}
PANE_TITLES = {pid: title for pid, title, _ in keys.PANES}
NARROW = 98          # below this width the Evaluate pane stacks its tables


def status_line(data: str, train: str, runs: str, width: int) -> str:
    """The status bar: data source │ training │ runs folder, whole in ``width`` cells where it can be; the
    label count and then the runs folder go first (issue 12: 80 columns)."""
    short_data = data.split(", ")[0] + ")" if ", " in data else data
    for line in (f" {data} │ {train} │ runs in {runs}", f" {short_data} │ {train} │ runs in {runs}",
                 f" {short_data} │ {train}"):
        if len(line) <= width:
            return line
    # still too wide: the data source loses the middle of its path, the training words stay whole ("training lstm
    # classify 60% · epoch" had lost its epoch at the edge); with no room for the source, the training alone
    room = width - len(f"  │ {train}")
    if room >= 16:
        return f" {short_data[:5]}…{short_data[-(room - 6):]} │ {train}"
    line = f" {train}"
    return line if len(line) <= width else line[:max(0, width - 1)] + "…"


class NameStudioCommands(Provider):
    """The command palette (Ctrl+P): every pane and every pane action, with its help text."""

    def _commands(self):
        app = self.app
        assert isinstance(app, NameStudioApp)
        for pid, title, key in keys.PANES:
            yield f"Go to {title}", f"Show the {title} pane (key {key}).", partial(app.action_pane, pid)
        for pid, bindings in keys.BY_PANE.items():
            seen = set()
            for b in bindings:
                if b.action in seen:
                    continue
                seen.add(b.action)
                yield (f"{PANE_TITLES[pid]}: {b.description}", b.tooltip,
                       partial(app.run_pane_action, pid, b.action))
        for b in keys.APP:
            if b.show and not b.action.startswith("app.pane("):
                yield b.description, b.tooltip, partial(app.run_action, b.action)

    async def discover(self) -> Hits:
        for title, help_text, callback in self._commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._commands():
            score = max(matcher.match(title), 0.8 * matcher.match(help_text or ""))   # the help text counts too
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)


class Palette(DismissOnce, CommandPalette):
    """Textual's command palette, less two crashes found by the fuzz test: a search still running when a
    command was chosen queried the list after it was removed, and two Enter keys in one burst dismissed it
    twice (the second popped the screen under it)."""

    def dismiss(self, result=None):
        self.workers.cancel_node(self)       # the search stops before the widgets go
        return super().dismiss(result)       # once, and only while on top (DismissOnce)

    def _refresh_command_list(self, command_list, commands, clear_current) -> None:
        if self.query(CommandList):          # not after the palette's widgets were removed
            super()._refresh_command_list(command_list, commands, clear_current)


class NameStudioApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "namestudio"
    BINDINGS = keys.APP
    COMMANDS = App.COMMANDS | {NameStudioCommands}

    def __init__(self, data: str | None = None, checkpoints: str | Path = "checkpoints") -> None:
        super().__init__()
        self.data_arg = data
        self.checkpoints = Path(checkpoints)
        self.dataset = None                  # namestudio.data.Dataset of the Data pane
        self.runs: list[dict] = []           # rows of engine.experiment.list_all_runs
        self.training_run: str | None = None  # folder of the attached run (the Train pane's)
        self.launched_here: set[str] = set()  # run folders this TUI started: their failure is a toast, however seen
        self.follower = Follower(self.checkpoints, self.post_message)   # reads the run folders (tui/follow.py)
        self.train_overrides: dict = {}      # extra TrainConfig fields (tests, benchmarks): e.g. max_steps
        self._status = {"data": "loading data …", "train": "idle"}
        self._status_dirty = False
        self._panes: dict[str, Pane] = {}
        self.closing = False
        self.prebuild = True                 # build the hidden panes after start-up (tests of lazy builds: False)

    # ---- layout -------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with TabbedContent(initial="data", id="panes"):
            for pid, title, key in keys.PANES:
                with TabPane(f"{key} {title}", id=pid):
                    kw = {"initial": self.data_arg} if pid == "data" else {}
                    self._panes[pid] = PANE_CLASSES[pid](id=f"{pid}-pane", **kw)
                    yield self._panes[pid]
        yield Static("", id="status-bar")
        yield KeyBar(id="footer")

    # Textual's system commands that the app has its own of (keys.APP: Quit, Theme, Keys, SVG screenshot):
    # the palette lists one of each, the app's, which do what its keys do (issue 12)
    OWN_SYSTEM_COMMANDS = ("Quit", "Theme", "Keys", "Screenshot")

    def get_system_commands(self, screen):
        for command in super().get_system_commands(screen):
            if command.title not in self.OWN_SYSTEM_COMMANDS:
                yield command

    def on_mount(self) -> None:
        # the tab bar takes no focus: Tab moves between a pane's own fields (so its keys stay in the footer);
        # the number keys and the mouse switch panes (issue 12)
        self.query_one("#panes").query_one(Tabs).can_focus = False
        self._narrow(self.size.width)
        self._startup()
        self._follow()
        self.pane("data").focus_default()
        self._show_status()

    def on_resize(self, event: events.Resize) -> None:
        self._narrow(event.size.width)
        self.call_after_refresh(self._show_status)     # the status line fits the new width
        self.call_after_refresh(self.pane("evaluate").screen_resized)

    def _narrow(self, width: int) -> None:
        if self.screen_stack:
            self.screen_stack[0].set_class(width < NARROW, "-narrow")

    def pane(self, pid: str) -> Pane:
        return self._panes[pid]

    def exit(self, *args, **kw) -> None:
        self.closing = True       # background messages that still arrive are ignored from now on
        self.follower.close()     # the follower thread ends at once
        super().exit(*args, **kw)

    @property
    def active_pane(self) -> Pane:
        return self.pane(self.query_one("#panes", TabbedContent).active or "data")

    # ---- start-up and runs ----------------------------------------------------------
    @work(thread=True, group="startup", exit_on_error=False)
    def _startup(self) -> None:
        """Import torch off the UI thread and find the devices (the follower lists the runs)."""
        from namestudio.engine.device import available_devices

        self.post_message(DevicesFound(available_devices()))

    @work(thread=True, group="follow", exit_on_error=False, name="follower")
    def _follow(self) -> None:
        """The one follower thread (tui/follow.py): runs until the app quits."""
        worker = get_current_worker()
        self.follower.loop(lambda: worker.is_cancelled or self.closing)

    def refresh_runs(self) -> None:
        self.follower.poke()

    def run_launched(self, launched) -> None:
        """A run this TUI started (engine.process.Launched): follow it, reap it, ask about it at quit."""
        self.follower.children.append(launched)
        self.launched_here.add(str(launched.run_dir))
        self.attach_run(str(launched.run_dir))

    def data_source(self) -> str | None:
        """The loaded dataset's source, as run folders record it (config.json data_source); None until loaded."""
        return self.dataset.source if self.dataset is not None else None

    def attach_run(self, run_dir: str) -> None:
        """Show this run on the Train and Evaluate panes: its logs so far, then live."""
        self.training_run = str(run_dir)
        self.pane("train").attached(str(run_dir))
        self.follower.attach(run_dir)

    def own_live_runs(self) -> list:
        """The runs this TUI started whose process still runs."""
        return [c for c in self.follower.children if c.popen.poll() is None]

    def on_devices_found(self, msg: DevicesFound) -> None:
        if self.closing or not self.is_running:
            return
        gc.freeze()                              # torch is loaded: out of the collector's sight (see _prebuild)
        self.pane("train").set_devices(msg.devices)
        if self.prebuild:
            self._prebuild()

    @work(group="startup", exit_on_error=False)
    async def _prebuild(self) -> None:
        """Build the panes not shown yet, one at a time while the app is idle, so that the first visit of a
        pane is a switch, not a build (100-200 ms); then move everything built so far out of the garbage
        collector's sight (gc.freeze), so that full collections stop walking torch and the widgets (they
        cost 30-250 ms of key latency each)."""
        for pid in PANE_CLASSES:
            pane = self.pane(pid)
            if self.closing or not self.is_running:
                return
            if not pane.built:
                await asyncio.sleep(0.05)        # keys and frames first
                await pane.ensure_built()
        gc.freeze()

    def on_runs_listed(self, msg: RunsListed) -> None:
        if self.closing or not self.is_running:
            return
        self.runs = msg.runs
        for pid in ("runs", "evaluate", "classify", "generate", "compare"):
            self.pane(pid).set_runs(msg.runs)

    # ---- data -----------------------------------------------------------------------
    def on_dataset_loaded(self, msg: DatasetLoaded) -> None:
        if self.closing or not self.is_running:
            return
        self.dataset = msg.dataset
        for pid in ("classify", "generate"):    # runs chosen for the user: those of this data
            self.pane(pid).data_changed(self.runs)
        s = msg.summary
        self._status["data"] = f"data {short_path(s['source'])} ({', '.join(name_counts(s))}, {counted(s['n_labels'], 'label')})"
        self._show_status()

    # ---- the followed runs' events (tui/follow.py) ------------------------------------
    def on_run_events(self, msg: RunEvents) -> None:
        if self.closing or not self.is_running:
            return
        from namestudio.engine.events import Done, Eval, Failed, Started

        if not msg.run_dir:                    # the follower's own trouble
            for e in msg.events:
                self.notify(getattr(e, "message", str(e)), title="Following runs", severity="error", markup=False)
            return
        if msg.run_dir != self.training_run and msg.run_dir != str(self.follower.want or ""):
            return                             # a batch of a run just left
        self.training_run = msg.run_dir
        self.pane("train").on_events(msg.run_dir, msg.events)
        evaluate = self.pane("evaluate")
        # the last evaluation of a batch supersedes the others: rendering each (4-7 ms) froze the screen for
        # seconds when attaching to a run with a long history
        last_eval = max((i for i, e in enumerate(msg.events) if isinstance(e, Eval)), default=-1)
        for i, e in enumerate(msg.events):
            if isinstance(e, Started):
                evaluate.on_live_started(msg.run_dir, e)
            elif isinstance(e, Eval):
                if i == last_eval:
                    evaluate.on_live_eval(e)
            elif isinstance(e, Done):
                evaluate.on_live_done(e)
                if not msg.attach or msg.run_dir in self.launched_here:
                    self.launched_here.discard(msg.run_dir)
                    self._run_ended(e)
            elif isinstance(e, Failed) and (not msg.attach or msg.run_dir in self.launched_here):
                self.launched_here.discard(msg.run_dir)
                self.notify(e.message.splitlines()[0], title=f"Run {run_name(msg.run_dir)} "
                                                                f"{'stale' if e.stale else 'failed'}",
                            severity="error", markup=False)
        if any(isinstance(e, (Done, Failed)) for e in msg.events):
            self.refresh_runs()

    def _run_ended(self, e) -> None:
        task = self.pane("train").train_task
        words = self.pane("train").status_text().removeprefix("last run ")
        if not (Path(e.run_dir) / rf.WEIGHTS).is_file():      # stopped before any training: nothing to load
            self.notify(f"Run {run_name(e.run_dir)}: {e.untested or rf.no_weights(e.run_dir)}.",
                        title=f"Training {rf.STOPPED}", markup=False)
            return
        pane = self.pane("classify" if task == "classify" else "generate")
        chosen, kept = pane.users_run(), ""
        if chosen is None:                   # a run the user chose in the pane stays chosen
            pane.load_run(e.run_dir, quiet=True)
            pane.auto = True                 # chosen for them: the next run trained replaces it too
        else:
            kept = (f" {'Classify' if task == 'classify' else 'Generate'} keeps {run_name(chosen)}, your choice;"
                    " this run is in its Run list.")
        if task == "classify":
            gen = self.pane("generate")
            if gen.classifier is None:
                gen.load_classifier(e.run_dir, quiet=True)
        title = f"Training {rf.STOPPED}" if rf.stopped_word(e.reason) == rf.STOPPED else "Training done"
        self.notify(f"Run {run_name(e.run_dir)}: {words}.{kept}", title=title, markup=False)

    def set_train_status(self, text: str) -> None:
        """The Train pane's words for the attached run; drawn by its 4 Hz timer (flush_status)."""
        if text != self._status["train"]:
            self._status["train"] = text
            self._status_dirty = True

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.show_worker_error(event.worker)

    def show_worker_error(self, worker: Worker) -> None:
        """A worker that raised becomes a message in the app, not a crash."""
        if self.closing or not self.is_running:
            return
        error = worker.error
        text = f"{type(error).__name__}: {error}" if error is not None else "unknown error"
        self.push_screen(ErrorScreen(f"Background task failed ({worker.group or worker.name})", text))

    async def on_open_run(self, msg: OpenRun) -> None:
        pane = self.pane(msg.target)
        await pane.ensure_built()
        ok = pane.load_run(msg.path)
        if ok is not False:
            await self.action_pane(msg.target)

    # ---- status -------------------------------------------------------------------
    def flush_status(self) -> None:
        """Called by the Train pane's 4 Hz timer, so that the status bar changes in the same frame."""
        if self._status_dirty:
            self._show_status()

    def _show_status(self) -> None:
        self._status_dirty = False
        try:
            bar = self.query_one("#status-bar", Static)
        except Exception:
            return
        bar.update(Text(status_line(self._status['data'], self._status['train'], short_path(self.checkpoints),
                                    bar.size.width or self.size.width)), layout=False)   # paths: never markup

    # ---- actions ------------------------------------------------------------------
    async def action_pane(self, pid: str) -> None:
        tabs = self.query_one("#panes", TabbedContent)
        tabs.active = pid
        pane = self.pane(pid)
        await pane.ensure_built()
        if tabs.active == pid:   # not if another pane was chosen meanwhile: focusing would switch back to this one
            pane.focus_default()

    async def run_pane_action(self, pid: str, action: str) -> None:
        await self.action_pane(pid)
        await self.pane(pid).run_action(action)

    async def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        """A tab chosen with the mouse (or the tab bar's keys): build the pane and focus into it."""
        pid = event.pane.id or ""
        if pid not in PANE_CLASSES or self.closing or not self.screen_stack:
            return
        pane = self.pane(pid)
        await pane.ensure_built()
        if self.query_one("#panes", TabbedContent).active != pid:
            return               # another pane was chosen while this one was built (a key during start-up)
        if not (self.focused and pane in self.focused.ancestors_with_self):
            pane.focus_default()

    async def action_help(self) -> None:
        """F1: show the keys; F1 again closes them. In the command palette it closes the palette first,
        so the two never stack (issue 13)."""
        if isinstance(self.screen, HelpScreen):
            await self.screen.dismiss()
            return
        if isinstance(self.screen, CommandPalette):
            await self.screen.run_action("escape")
        if len(self.screen_stack) > 1:
            return                # a message or a question is open: it is answered first
        groups = [("Everywhere", [b for b in keys.APP if b.show or b.key == "question_mark"])]
        groups += [(PANE_TITLES[pid], bindings) for pid, bindings in keys.BY_PANE.items()]
        self.push_screen(HelpScreen(groups))

    async def action_command_palette(self) -> None:
        """Ctrl+P: the palette; over the keys screen it replaces it (never two palettes, issue 13)."""
        if isinstance(self.screen, HelpScreen):
            await self.screen.dismiss()
        if len(self.screen_stack) > 1 or not self.use_command_palette:
            return                # the palette is open already, or a message or question is
        self.push_screen(Palette(id="--command-palette"))

    def action_screenshot(self) -> None:
        """An SVG of the screen, into the folder of the pane's run, else the training run, else checkpoints."""
        folder = self.active_pane.run_path or (Path(self.training_run) if self.training_run else None)
        if folder is None or not folder.is_dir():
            folder = self.checkpoints
        try:
            folder.mkdir(parents=True, exist_ok=True)
            name = f"namestudio-{self.active_pane.pane_id}-{time.strftime('%Y%m%d-%H%M%S')}.svg"
            path = self.save_screenshot(filename=name, path=str(folder))
        except OSError as e:
            self.notify(str(e), title="Screenshot failed", severity="error", markup=False)
            return
        self.last_screenshot = path
        self.notify(short_path(path), title="Screenshot saved", markup=False)

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    def action_leave_field(self) -> None:
        self.active_pane.focus_anchor()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "leave_field":
            return isinstance(self.focused, Input) and len(self.screen_stack) == 1   # not in a modal or palette
        if action in ("help", "command_palette") and len(self.screen_stack) > 1:
            return isinstance(self.screen, (HelpScreen, CommandPalette))   # not over a message or question
        if action == "pane" and len(self.screen_stack) > 1:
            return False          # not behind a modal message
        return True

    async def action_quit(self) -> None:
        """Quit at once; with a run started here still training, ask first: stop it, leave it, or cancel."""
        own = self.own_live_runs()
        if not own or isinstance(self.screen, QuitScreen):
            self.exit()
            return

        def chosen(choice: str | None) -> None:
            if choice == "cancel" or choice is None:
                return
            if choice == "stop":
                from namestudio.engine.runfolder import RunFolderError, send_control

                for child in own:
                    try:
                        send_control(child.run_dir, "stop")      # the run ends by itself, best kept, tested
                    except RunFolderError:
                        pass                                     # it ended meanwhile
            self.exit()

        self.push_screen(QuitScreen([Path(c.run_dir).name for c in own],
                                    live=lambda: sum(c.popen.poll() is None for c in own)), chosen)

    def on_unmount(self) -> None:
        self.follower.close()


def run_app(data: str | None = None, checkpoints: str | Path = "checkpoints") -> int:
    """Run the TUI; the exit status: 0 after a normal quit, non-zero when the app ended by an exception."""
    app = NameStudioApp(data=data, checkpoints=checkpoints)
    app.run()
    return 1 if app.return_code is None else app.return_code
