"""The floor: the smallest Textual app with two tabs, switched with the keys 2 and 3 as the studio's panes are.

Key latency of namestudio is compared with this app, measured the same way (see tmux.py). Run it with
``python -m namestudio.tui.bench.floor_app``; ctrl+q quits.
"""
from __future__ import annotations

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Static, TabbedContent, TabPane

# What each tab shows: the outside measurement polls the screen for these words.
MARKERS = {"two": "floor pane two is showing", "three": "floor pane three is showing"}
KEYS = {"2": "two", "3": "three"}


class FloorApp(App):
    BINDINGS = [Binding(key, f"show('{tab}')", f"Tab {tab}") for key, tab in KEYS.items()]

    def compose(self) -> ComposeResult:
        with TabbedContent(initial="two", id="tabs"):
            for tab, marker in MARKERS.items():
                with TabPane(f"{tab}", id=tab):
                    yield Static(marker)
        yield Footer()

    def action_show(self, tab: str) -> None:
        self.query_one("#tabs", TabbedContent).active = tab


def main() -> None:
    FloorApp().run()


if __name__ == "__main__":
    main()
