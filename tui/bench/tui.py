"""The TUI while a real `namestudio train` child trains, against that same run alone and against a minimal Textual
app (the floor). Every run here is a separate process: the trainer (child.py), the TUI (tui_probe.py inside its own
process, or `namestudio` itself in tmux), the floor app (floor_app.py).

- Throughput: the child's names/s from its steps.jsonl while the TUI follows it and keys are pressed, against the
  same run with no TUI (``cli``). Each measurement takes turns with the others.
- Key latency of pane switches (3 Evaluate, 2 Train), at rest and while the run trains: inside the app's process
  (``tui_*``, Pilot and a recording driver) and from outside in a real terminal (``tui_tmux_*``, tmux send-keys
  and capture-pane), and the floor app measured the same way in tmux.
- Step to screen (tmux): from the moment a step's line is written to steps.jsonl (the file's mtime) to the output
  after which the Train pane shows that step.
- Quit: from ctrl+q to the end of the TUI's process, at rest and with the run in progress.
"""
from __future__ import annotations

import json
import random
import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from . import attach, driver, floor_app, tmux
from .child import TrainingChild
from .common import SKIP_KEYS, Context, child_env, median, namestudio_command, percentile, probe_command, ratio

TMUX_SIZE = (100, 30)
FOLLOW_TIMEOUT_S = 45.0   # a TUI that follows runs shows a step of the running one well within this


class NotFollowing(RuntimeError):
    """The TUI showed no step of the run that trains beside it."""


def _latency_keys(prefix: str, values: list[float]) -> dict:
    return {f"{prefix}_p95": percentile(values, 95), f"{prefix}_median": median(values),
            f"{prefix}_max": max(values) if values else None}


# ---- inside the app's process (tui_probe.py) ----------------------------------------------------------
def pilot_run(ctx: Context, checkpoints: Path, presses: int, run: TrainingChild | None, watch_s: float = 0) -> dict:
    """One tui_probe.py process: latencies, the run's names/s during the presses, step-to-screen delays and the
    quit time."""
    argv = probe_command("tui_probe") + [ctx.data_src, str(checkpoints), str(presses)]
    if run is not None:
        argv += [str(watch_s), str(FOLLOW_TIMEOUT_S)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=child_env(TEXTUAL_DRIVER=driver.SPEC))
    got: dict = {"latencies_ms": []}
    marks, marks_at, quit_at = {}, {}, None
    try:
        for line in proc.stdout:
            word, _, rest = line.strip().partition(" ")
            if word in ("watch", "grace", "keys", "done"):
                marks[word] = run.count() if run is not None else 0
                marks_at[word] = rest
            elif word == "nofollow":
                raise NotFollowing(f"the TUI showed no step of the run within {FOLLOW_TIMEOUT_S:g} s")
            elif word == "quit":
                quit_at = float(rest)
            elif word.startswith("{"):
                got.update(json.loads(line))
        proc.wait(timeout=60)
        ended = time.perf_counter()   # perf_counter is the system's monotonic clock, shared with the probe
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0 or len(got["latencies_ms"]) < presses:
        raise RuntimeError(f"tui_probe failed: {proc.stderr.read().strip()[-400:]}")
    got["quit_s"] = ended - quit_at if quit_at is not None else None
    if run is not None:
        got["names_per_s"] = _window_rate(run, marks["keys"], marks["done"])
        got["step_to_screen_s"] = step_delays(run.records[marks["watch"]:marks["grace"]], got["shown"],
                                              watched_until=time.time() - (ended - float(marks_at["keys"])))
    return got


def step_delays(records: list, shown: list, watched_until: float) -> list:
    """For each step record (time written, record): seconds until the first frame that showed it or a later step.
    A step never shown counts until the watch ended (a lower bound), so that a miss is not lost."""
    delays = []
    for written, rec in records:
        at = next((t for t, step in shown if step >= rec["step"]), watched_until)
        delays.append(max(0.0, at - written))
    return delays


def _window_rate(run: TrainingChild, first: int, last: int):
    """names/s of the records written between two marks; if none was, of the next one (tiny budgets)."""
    if last <= first:
        run.wait_records(first + 1, 120)
        last = first + 1
    return run.names_per_s(first, last)


# ---- from outside, in tmux -------------------------------------------------------------------------
def tmux_presses(n: int, shows: dict) -> list:
    keys = list(shows)
    return [(keys[k % len(keys)], shows[keys[k % len(keys)]]) for k in range(n)]


def floor_tmux(presses: int) -> dict:
    with tmux.Tmux(probe_command("floor_app"), width=TMUX_SIZE[0], height=TMUX_SIZE[1], env=child_env()) as t:
        if t.wait_for(lambda s: floor_app.MARKERS["two"] in s, 60) is None:
            raise RuntimeError("the floor app did not show in tmux")
        # it opens on tab two: 3 first
        shows = {k: (lambda s, m=floor_app.MARKERS[floor_app.KEYS[k]]: m in s) for k in ("3", "2")}
        return {"latencies_ms": tmux.time_key_presses(t, tmux_presses(presses, shows))}


def namestudio_tmux(ctx: Context, checkpoints: Path, presses: int, run: TrainingChild | None,
                    steps_to_watch: int) -> dict:
    argv = namestudio_command() + ["--data", ctx.data_src, "--checkpoints", str(checkpoints)]
    shows = {k: attach.pane_shows(pid) for k, pid in attach.SWITCH_KEYS.items()}
    got: dict = {"step_to_screen_s": []}
    with tmux.Tmux(argv, width=TMUX_SIZE[0], height=TMUX_SIZE[1], env=child_env()) as t:
        # the Train pane, once the app has started (keys before that would be lost)
        deadline = time.perf_counter() + 120
        while True:
            t.send("2")
            if t.wait_for(shows["2"], 2) is not None:
                break
            if time.perf_counter() > deadline:
                raise RuntimeError("namestudio did not show its Train pane in tmux")
        if t.wait_for(attach.screen_ready, 120) is None:
            raise RuntimeError("namestudio in tmux did not finish starting")
        if run is not None:
            if t.wait_for(attach.shows_step(1), FOLLOW_TIMEOUT_S) is None:
                raise NotFollowing(f"namestudio in tmux showed no step of the run within {FOLLOW_TIMEOUT_S:g} s")
            n = run.count()   # the steps written from now on
            # step to screen: each new line of the step log, until the screen shows that step
            for i in range(steps_to_watch):
                run.wait_records(n + i + 1, 120)
                written, rec = run.records[n + i]
                on_screen = t.wait_for(attach.shows_step(int(rec["step"])), 10)   # None: counted as 10 s and more
                at = time.time() if on_screen is None else on_screen[1]
                got["step_to_screen_s"].append(max(0.0, at - written))
            first = run.count()
        else:
            time.sleep(1.0)   # at rest: what start-up left to draw is drawn
        got["latencies_ms"] = tmux.time_key_presses(t, tmux_presses(presses, shows), rng=random.Random(1))
        if run is not None:
            got["names_per_s"] = _window_rate(run, first, run.count())
        sent = t.send("C-q")
        ended = t.wait_exit(30)
        got["quit_s"] = None if ended is None else ended - sent
    return got


# ---- the section ------------------------------------------------------------------------------------
def tui_section(ctx: Context) -> dict:
    b = ctx.budgets
    cfg = replace(ctx.config(), threads=1)   # the child as the TUI starts one: 1 torch thread, nice 10
    no_tmux = tmux.unavailable()
    watch_steps = max(2, min(10, b.tui_presses // 3))   # step-to-screen: steps watched in tmux
    watch_s = max(1.0, b.tui_train_s / 2)                # and seconds watched inside the app
    modes = ["cli", "pilot"] + ([] if no_tmux else ["tmux"])
    rest = ["pilot_rest"] + ([] if no_tmux else ["tmux_rest", "floor"])
    sec = ctx.rep.section("TUI with a training child", len(modes) * b.tui_rounds + len(rest) + 1)
    rates = {"cli": [], "tui": []}
    lat = {m: [] for m in ("pilot", "tmux", "pilot_rest", "tmux_rest", "floor", "pilot_two")}
    quits = {m: [] for m in ("pilot", "tmux", "pilot_rest", "tmux_rest")}
    steps: dict[str, list] = {"pilot": [], "tmux": []}
    with tempfile.TemporaryDirectory(prefix="namestudio-bench-") as tmp:
        def folder(name: str) -> Path:
            path = Path(tmp) / name
            path.mkdir()
            return path

        for mode in rest:   # at rest first: nothing else of the bench's runs
            if mode == "floor":
                got = floor_tmux(b.tui_presses)
            elif mode == "pilot_rest":
                got = pilot_run(ctx, folder(mode), b.tui_presses, None)
            else:
                got = namestudio_tmux(ctx, folder(mode), b.tui_presses, None, 0)
            lat[mode] += got["latencies_ms"]
            if mode in quits:
                quits[mode].append(got.get("quit_s"))
            sec.step(f"{mode}: p95 {percentile(got['latencies_ms'], 95) or 0:.0f} ms")
        not_following = None
        for r in range(b.tui_rounds):
            for mode in modes[r % len(modes):] + modes[:r % len(modes)]:   # everyone goes first in turn
                if mode != "cli" and not_following:
                    continue
                ckpts = folder(f"{mode}{r}")
                with TrainingChild(cfg, ckpts) as run:
                    run.wait_records(2, 300)   # past start-up and the first step's one-off costs
                    if mode == "cli":
                        first = run.count()
                        time.sleep(b.tui_train_s)
                        rate = _window_rate(run, first, run.count())
                        rates["cli"].append(rate)
                        sec.step(f"cli alone: {rate or 0:,.0f} names/s")
                        continue
                    try:
                        if mode == "pilot":
                            got = pilot_run(ctx, ckpts, b.tui_presses, run, watch_s)
                        else:
                            got = namestudio_tmux(ctx, ckpts, b.tui_presses, run, watch_steps)
                    except NotFollowing as e:   # its figures would be those of a TUI at rest beside a run
                        not_following = str(e)
                        sec.step(f"{mode}: {e}")
                        continue
                    steps[mode] += got["step_to_screen_s"]
                    rates["tui"].append(got["names_per_s"])
                    lat[mode] += got["latencies_ms"]
                    quits[mode].append(got.get("quit_s"))
                    sec.step(f"{mode}: {got['names_per_s'] or 0:,.0f} names/s, "
                             f"p95 {percentile(got['latencies_ms'], 95) or 0:.0f} ms")
        if not not_following:   # issue 10: the same presses while two runs train (as `compare --parallel 2`)
            ckpts = folder("two")
            with TrainingChild(cfg, ckpts) as other, TrainingChild(cfg, ckpts) as run:
                other.wait_records(2, 300)
                run.wait_records(2, 300)
                try:
                    got = pilot_run(ctx, ckpts, b.tui_presses, run, watch_s)
                    lat["pilot_two"] += got["latencies_ms"]
                    sec.step(f"pilot, 2 runs: p95 {percentile(got['latencies_ms'], 95) or 0:.0f} ms")
                except NotFollowing as e:
                    sec.step(f"pilot, 2 runs: {e}")
    tui_rate, cli_rate = median(rates["tui"]), median(rates["cli"])
    sec.finish(f"TUI/CLI {ratio(tui_rate, cli_rate) or 0:.2f}")
    out = {"tui_over_cli_throughput": ratio(tui_rate, cli_rate), "tui_names_per_s": tui_rate,
           "cli_names_per_s": cli_rate,
           **_latency_keys("tui_key_latency_ms", lat["pilot"]),
           **_latency_keys("tui_rest_key_latency_ms", lat["pilot_rest"]),
           **_latency_keys("tui_two_runs_key_latency_ms", lat["pilot_two"]),
           "tui_quit_seconds": _max(quits["pilot"]), "tui_rest_quit_seconds": _max(quits["pilot_rest"]),
           **_step_keys("tui_step_to_screen_seconds", steps["pilot"]),
           "tui_tmux_skipped": no_tmux, "tui_follow_skipped": not_following}
    if not no_tmux:
        out |= {**_latency_keys("tui_tmux_key_latency_ms", lat["tmux"]),
                **_latency_keys("tui_tmux_rest_key_latency_ms", lat["tmux_rest"]),
                **_latency_keys("floor_tmux_key_latency_ms", lat["floor"]),
                "tui_tmux_quit_seconds": _max(quits["tmux"]), "tui_tmux_rest_quit_seconds": _max(quits["tmux_rest"]),
                **_step_keys("tui_tmux_step_to_screen_seconds", steps["tmux"])}
    if not_following:
        out |= dict.fromkeys(FOLLOW_KEYS, None)
    threads = cfg.threads
    out["notes"] = {
        "tui_over_cli_throughput": f"the child's names/s (median of its logged steps) while the TUI follows it and "
                                   f"keys are pressed, in {len(rates['tui'])} runs, against the same run with no TUI "
                                   f"over {b.tui_train_s:g} s, in {len(rates['cli'])}; every child: `namestudio "
                                   f"train`, nice 10, {threads} torch thread, log_every 5",
        "tui_key_latency_ms_p95": f"{len(lat['pilot'])} presses of 3 and 2 (switch pane) while a child trains, in the "
                                  "TUI's process: from the key (Pilot) to the first frame written, encoded as for a "
                                  "terminal, once the pane has a place on the screen",
        "tui_two_runs_key_latency_ms_p95": f"{len(lat['pilot_two'])} presses as for tui_key_latency_ms_p95, while "
                                           "two children train into the same checkpoints folder",
        "tui_tmux_key_latency_ms_p95": f"{len(lat['tmux'])} presses in tmux while a child trains: from send-keys to "
                                       "the output after which capture-pane shows the pane's key bar",
        "floor_tmux_key_latency_ms_p95": "a minimal Textual app with two tabs (floor_app.py), measured as tmux is",
        "tui_step_to_screen_seconds_max": f"{len(steps['pilot'])} step lines, from the step log's mtime to the first "
                                          "frame written that shows the step or a later one, in the TUI's process "
                                          "(a step never shown counts until the watch ended)",
        "tui_tmux_step_to_screen_seconds_max": f"{len(steps['tmux'])} step lines, from the step log's mtime to the "
                                               "output after which capture-pane shows the step or a later one "
                                               "(one never shown counts as 10 s)",
        "tui_quit_seconds": "ctrl+q to the end of the TUI's process, the slowest of the runs",
    }
    return out


FOLLOW_KEYS = SKIP_KEYS["tui_follow_skipped"]


def _step_keys(prefix: str, delays: list) -> dict:
    return {f"{prefix}_median": median(delays), f"{prefix}_max": max(delays) if delays else None}


def _max(values):
    values = [v for v in values if v is not None]
    return max(values) if values else None
