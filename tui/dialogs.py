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
    Dismisses with "stop", "leave" or "cancel"."""

    BINDINGS = keys.QUIT
    DEFAULT_CSS = """
    QuitScreen { align: center middle; }
    QuitScreen > Vertical { width: 64; height: auto; border: thick $warning; background: $surface; padding: 1 2; }
    QuitScreen Horizontal { height: auto; margin-top: 1; }
    QuitScreen Button { margin-right: 1; }
    """

    def __init__(self, runs: list[str]) -> None:
        super().__init__()
        self.runs = runs

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
