"""Modal dialogs of the live runs: the quit question."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from . import keys


class QuitScreen(ModalScreen[str]):
    """Quit with a run in progress that this TUI started: stop it, leave it running, or cancel.
    Dismisses with "stop", "leave" or "cancel"; or "quit" once every run has ended while it was open."""

    BINDINGS = keys.QUIT
    DEFAULT_CSS = """
    QuitScreen { align: center middle; }
    QuitScreen > Vertical { width: 64; height: auto; border: thick $warning; background: $surface; padding: 1 2; }
    QuitScreen Horizontal { height: auto; margin-top: 1; }
    QuitScreen Button { margin-right: 1; }
    """

    def __init__(self, runs: list[str], live=None) -> None:
        super().__init__()
        self.runs = runs
        self.live = live           # () -> how many of them still train; None: not watched
        self.ended = False         # every one has ended while the dialog was open

    def on_mount(self) -> None:
        if self.live is not None:
            self.set_interval(0.5, self._check)

    def _check(self) -> None:
        """A run that ends while the question is open: the dialog said "still training" and offered to stop it."""
        if self.ended or self.live():
            return
        self.ended = True
        what = self.runs[0] if len(self.runs) == 1 else f"the {len(self.runs)} runs"
        self.query_one("#quit-text", Static).update(Text.assemble(
            (what, "bold"), f" {'has' if len(self.runs) == 1 else 'have'} ended meanwhile: nothing to stop.\n\n"
            "q  Quit\nEsc  Cancel"))
        self.query_one("#quit-stop", Button).display = False
        self.query_one("#quit-leave", Button).label = "Quit"      # (its id: leave, which quits as quit does)
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "choose" and parameters and parameters[0] != "cancel":   # s and l while a run trains; q after
            return self.ended == (parameters[0] == "quit")
        return True

    def compose(self) -> ComposeResult:
        what = self.runs[0] if len(self.runs) == 1 else f"{len(self.runs)} runs"
        with Vertical():
            yield Static(Text.assemble((what, "bold"), " started here is still training.\n\n"   # a run's name
                                       "s  Stop the run (best weights kept, tested)\n"
                                       "l  Leave it running (it is its own process; reopen namestudio to watch it)\n"
                                       "Esc  Cancel"), id="quit-text")
            with Horizontal():
                yield Button("Stop the run", id="quit-stop", variant="error", compact=True)
                yield Button("Leave it running", id="quit-leave", variant="primary", compact=True)
                yield Button("Cancel", id="quit-cancel", compact=True)

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss((event.button.id or "quit-cancel").split("-", 1)[1])
