"""What the bench needs to know about the namestudio TUI, in one place: when it is ready, when it follows a run,
how each pane and a step show on the screen, and how to quit. The probes read the app's public state; the tmux
measurement reads only the screen text."""
from __future__ import annotations

import re

from namestudio.tui import keys

# Pane switches timed by the bench: key -> pane id (the Evaluate pane and back to Train).
SWITCH_KEYS = {"3": "evaluate", "2": "train"}


def footer_words(pid: str, other: str) -> list[str]:
    """The descriptions of the pane's shown keys that the other pane's key bar does not have."""
    mine = [b.description for b in keys.BY_PANE.get(pid, []) if b.show]
    theirs = {b.description for b in keys.BY_PANE.get(other, [])}
    return [d for d in mine if d not in theirs][:1]


def pane_shows(pid: str):
    """A test of the screen text: the key bar (the last non-blank line) is the pane's."""
    other = next(p for p in SWITCH_KEYS.values() if p != pid)
    words = footer_words(pid, other)
    if not words:
        raise RuntimeError(f"no key of the {pid} pane tells its key bar from the {other} pane's")

    def shows(screen: str) -> bool:
        lines = [line for line in screen.splitlines() if line.strip()]
        return bool(lines) and all(w in lines[-1] for w in words)
    return shows


STEP = re.compile(r"step\s+([\d,]+)")
ESCAPE = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")


def step_shown(text: str) -> int | None:
    """The highest step that the text (a screen, or a frame's bytes) shows in the Train pane's progress line."""
    steps = [int(m.group(1).replace(",", "")) for m in STEP.finditer(ESCAPE.sub("", text))]
    return max(steps) if steps else None


def shows_step(step: int):
    """A test of the screen text: the Train pane's progress shows this step (or a later one)."""
    def shows(screen: str) -> bool:
        shown = step_shown(screen)
        return shown is not None and shown >= step
    return shows


def screen_ready(screen: str) -> bool:
    """A test of the screen text: the app says nothing is loading any more."""
    return "loading" not in screen.lower()


# ---- in the app's process (probes) -------------------------------------------------------------------
def ready(app) -> bool:
    """The app has loaded its data and its start-up work is over."""
    if getattr(app, "dataset", True) is None:
        return False
    return not [w for w in app.workers if w.group == "startup" and not w.is_finished]


async def quit(app, pilot) -> None:
    """Quit as a user does (ctrl+q), leaving a run that the app did not start running."""
    await pilot.press("ctrl+q")
