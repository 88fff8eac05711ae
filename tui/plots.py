"""Drawing choices shared by the live plots (Train pane) and the comparison curves (Compare pane).

The x-axis (epoch, step or training time), the smoothing (engine/smoothing.py: TensorBoard's debiased
EMA, the raw line drawn faint behind the smoothed one), log10 of y, and a palette of run colours. Pure
Python: the computation of the smoothed values is the engine's; this only picks and draws.
"""
from __future__ import annotations

import math

from namestudio.engine.smoothing import RunningEma

X_AXES = ("epoch", "step", "elapsed")              # the order the x-axis key cycles through
X_LABELS = {"epoch": "epoch", "step": "step", "elapsed": "time (s)"}
SMOOTHING = (0.0, 0.6, 0.8, 0.9, 0.95)             # the weights the smoothing key cycles through
# run colours (RGB, so that a faint copy can be mixed with the plot's background)
PALETTE = [(0, 190, 210), (255, 150, 40), (90, 200, 90), (220, 90, 220), (235, 70, 70), (90, 130, 255),
           (220, 200, 60), (170, 170, 170)]
FAINT = 0.35                                       # share of the colour in a raw line behind a smoothed one


def flat_limits(values) -> tuple[float, float] | None:
    """y limits around a flat line (one evaluation, or every value the same), else None. plotext gives such a
    line a range of about 1e-16 and labels its ticks with 17 digits that squeeze the plot."""
    finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not finite or max(finite) - min(finite) > 1e-9 * max(1.0, abs(max(finite))):
        return None
    v = finite[0]
    pad = max(abs(v) * 0.05, 0.01)
    return v - pad, v + pad


def next_in(values: tuple, current) -> object:
    """The value after ``current`` in ``values`` (cycling); the first when ``current`` is not one of them."""
    return values[(values.index(current) + 1) % len(values)] if current in values else values[0]


def colour(i: int) -> tuple[int, int, int]:
    return PALETTE[i % len(PALETTE)]


def faint(rgb: tuple[int, int, int], background: tuple[int, int, int]) -> tuple[int, int, int]:
    """``rgb`` mixed into the background: the raw line behind a smoothed one."""
    return tuple(int(round(b + (c - b) * FAINT)) for c, b in zip(rgb, background))   # type: ignore[return-value]


def background(widget) -> tuple[int, int, int]:
    """The plot's background (textual-plotext draws on the theme's surface colour)."""
    from textual.color import Color

    try:
        return Color.parse(widget.app.theme_variables.get("surface", "#1e1e1e")).rgb
    except Exception:
        return (30, 30, 30)


def log10_or_nan(v: float) -> float:
    return math.log10(v) if v > 0 else float("nan")


class Smoother:
    """The engine's debiased EMA (engine/smoothing.py) of series that only grow (the Train pane's history
    lists; the values themselves for a weight of 0): each call smooths only the points appended since the last
    call for the same key. A new list (another run), a shorter one or another weight starts again. The list
    returned is kept and grown here: callers must not change it."""

    def __init__(self) -> None:
        self._kept: dict[str, tuple[list[float], RunningEma]] = {}

    def __call__(self, key: str, ys: list[float], weight: float) -> list[float]:
        if not weight:
            return list(ys)
        kept = self._kept.get(key)
        if kept is None or kept[0] is not ys or kept[1].weight != weight or len(kept[1].values) > len(ys):
            kept = self._kept[key] = (ys, RunningEma(weight))
        running = kept[1]
        return running.extend(ys[len(running.values):])


def bucket_means(xs: list[float], ys: list[float], most: int) -> tuple[list[float], list[float]]:
    """Average consecutive points so that at most ``most`` remain (the last bucket may be smaller)."""
    n = len(xs)
    if n <= most:
        return xs, ys
    size = math.ceil(n / most)
    bx = [sum(xs[i:i + size]) / len(xs[i:i + size]) for i in range(0, n, size)]
    by = [sum(ys[i:i + size]) / len(ys[i:i + size]) for i in range(0, n, size)]
    return bx, by


def describe(x: str, weight: float, log: bool) -> str:
    """One line saying what the plots show, with the keys that change it."""
    smooth = f"smoothing {weight:g}" if weight else "no smoothing"
    return f"x {X_LABELS[x]} (t) · {smooth} (m) · y {'log10' if log else 'linear'} (l)"
