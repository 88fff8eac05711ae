"""The follower: one thread that reads the checkpoints folder and the attached run as they change.

Every ``EVERY`` seconds it reads only what may have changed:
- ``list_all_runs`` (experiments' runs too) when the checkpoints folder's mtime changes, or every
  ``LIST_EVERY`` seconds (progress, and runs inside an experiment's folder); posted only when it differs;
- ``read_status`` of every live run (a pause, a stop, a death shows within one tick);
- the new bytes of the ATTACHED run's steps.jsonl and metrics.jsonl (``runfolder.Tail``).

It posts small messages: ``RunsListed`` (rows with their states) and ``RunEvents`` (the engine's own
events, re-created from the files by ``record_to_event``). It never trains and never imports the trainer.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from namestudio.engine import runfolder as rf
from namestudio.engine.events import Done, Failed, Started, Status
from namestudio.engine.experiment import list_all_runs

from .messages import RunEvents, RunsListed

EVERY = 0.3          # seconds between two looks
LIST_EVERY = 2.0     # seconds between two listings when the folder's mtime does not change
LOG_LINES = 8        # lines of train.log shown for a failed run


def started_event(run_dir: Path, status: rf.RunStatus) -> Started | None:
    """A Started event from config.json and status.json; None while the child has not written its config."""
    try:
        cfg = rf.read_json(run_dir / rf.CONFIG, dict)
    except rf.RunFolderError:
        return None
    train = cfg.get("train") if isinstance(cfg.get("train"), dict) else {}
    labels = cfg.get("labels") if isinstance(cfg.get("labels"), list) else []
    return Started(run_dir=str(run_dir), config=train, labels=[str(x) for x in labels],
                   total_steps=status.total_steps, steps_per_epoch=0, n_train=int(cfg.get("n_train") or 0),
                   device=status.device, note=status.note)


def end_event(run_dir: Path, status: rf.RunStatus):
    """Done (from test_metrics.json) or Failed (the error and the last lines of train.log) for an ended run."""
    if status.state in ("done", rf.STOPPED):
        try:
            test = rf.read_test(run_dir)
        except rf.RunFolderError:
            test = {}
        return Done(run_dir=str(run_dir), test_metrics=test.get("test") or {},
                    train_seconds=float(test.get("train_seconds") or 0.0),
                    reason=status.reason or test.get("reason") or status.state,
                    best_step=int(test.get("best_step") or 0), steps=int(test.get("steps") or status.step),
                    device=str(test.get("device") or status.device),
                    untested=test.get("untested") if isinstance(test.get("untested"), str) else "")
    stale = status.stale and not status.error
    point = rf.resume_progress(run_dir, status) if stale else None    # where `train --resume` continues it
    why = status.error or ("its trainer is gone: no heartbeat and no process (killed?)" if status.stale
                           else f"it ended as {status.state}")
    if point is not None:
        why += f"; it resumes from step {point[0]:,}" + (f" (epoch {point[1]:.2f})" if point[1] is not None else "")
    lines = rf.last_log_lines(run_dir, LOG_LINES)
    return Failed(message=why + ("\n" + "\n".join(lines) if lines else ""), run_dir=str(run_dir), stale=stale,
                  resume_step=point[0] if point else None, resume_epoch=point[1] if point else None)


class Follower:
    """State shared between the UI thread (which asks to attach) and the follower thread (which reads)."""

    def __init__(self, checkpoints: Path, post) -> None:
        self.checkpoints = Path(checkpoints)
        self.post = post                      # thread-safe: App.post_message
        self.wake = threading.Event()
        self.stop = threading.Event()
        self.want: Path | None = None         # the run the UI asked for
        self.chosen = False                   # the user (or a start) chose it: do not switch automatically
        self.attached: Path | None = None
        self.children: list = []              # Launched of the runs this TUI started (reaped here)
        self.runs: list[dict] = []
        self._mtime = None
        self._listed = 0.0
        self._statuses: dict[str, tuple] = {}
        self._steps: rf.Tail | None = None
        self._metrics: rf.Tail | None = None
        self._att_state: str | None = None
        self._att_started = False
        self._att_ended = False
        self._att_end_started: float | None = None
        self._live_at_end: set[str] | None = None   # the runs live when a chosen run was first seen ended

    # ---- called from the UI thread -------------------------------------------------------------------
    def attach(self, run_dir: str | Path, chosen: bool = True) -> None:
        self.want, self.chosen = Path(run_dir), chosen
        self.wake.set()

    def poke(self) -> None:
        """Read the folder again now (a refresh key)."""
        self._mtime = None
        self.wake.set()

    def close(self) -> None:
        self.stop.set()
        self.wake.set()

    def live_runs(self) -> list[dict]:
        return [r for r in self.runs if r.get("state") in rf.LIVE_STATES]

    # ---- the thread ----------------------------------------------------------------------------------
    def loop(self, cancelled) -> None:
        """Run until ``cancelled()`` or ``close()``; every error in one tick is caught and reported once."""
        while not (self.stop.is_set() or cancelled()):
            try:
                self.tick()
            except Exception as e:  # a follower that dies would freeze the live view: report, go on
                self.post(RunEvents("", [Failed(f"follower: {type(e).__name__}: {e}")]))
            self.wake.wait(EVERY)
            self.wake.clear()

    def tick(self) -> None:
        for child in list(self.children):      # reap the TUI's finished children (no zombies)
            if child.popen.poll() is not None:
                self.children.remove(child)
        changed = self._list()
        changed |= self._statuses_of_live()
        if changed:
            self.post(RunsListed([dict(r) for r in self.runs]))
        self._choose()
        if self.attached is not None:
            self._follow()

    def _list(self) -> bool:
        try:
            mtime = os.stat(self.checkpoints).st_mtime_ns
        except OSError:
            mtime = None
        now = time.monotonic()
        if mtime == self._mtime and now - self._listed < LIST_EVERY:
            return False
        first = not self._listed
        self._mtime, self._listed = mtime, now
        runs = list_all_runs(self.checkpoints)
        # said only when it differs (or the first time): every 2 s the same rows were posted, each pane redrew them,
        # and rows a pane was showing (a test's own) were replaced under it
        changed = first or runs != self.runs
        self.runs = runs
        self._statuses = {r["path"]: (r.get("state"), r.get("step")) for r in self.runs}
        return changed

    def _statuses_of_live(self) -> bool:
        changed = False
        for r in self.runs:
            if r.get("state") not in rf.LIVE_STATES:
                continue
            try:
                st = rf.read_status(Path(r["path"]))
            except rf.RunFolderError:
                continue
            state = "stale" if st.stale else st.state
            step, epoch = rf.shown_progress(Path(r["path"]), st)   # stale: where it resumes, not its last heartbeat
            if (state, step) != self._statuses.get(r["path"]):
                self._statuses[r["path"]] = (state, step)
                r.update(state=state, step=step, total_steps=st.total_steps, epoch=epoch,
                         reason=st.reason, status=st.reason or state)
                changed = True
        return changed

    def _choose(self) -> None:
        """The run to follow: the one asked for; else (nothing chosen, or the automatic one ended) the newest
        live run."""
        if self.want is not None and self.want != self.attached:
            self._attach(self.want)
            return
        if self.attached is not None and not self._att_ended:
            return
        live = [r for r in self.live_runs() if Path(r["path"]) != self.attached]
        if self.chosen and self.attached is not None:   # a chosen run that ended stays shown, until a run starts
            if self._live_at_end is None:               # that was not live when it ended (new work, say a
                self._live_at_end = {r["path"] for r in live}   # `namestudio train` from another terminal)
            live = [r for r in live if r["path"] not in self._live_at_end]
        if live:
            self.want, self.chosen = Path(live[0]["path"]), False
            self._attach(self.want)

    def _attach(self, run_dir: Path) -> None:
        self.attached = run_dir
        self._steps, self._metrics = rf.Tail(run_dir / rf.STEPS), rf.Tail(run_dir / rf.METRICS)
        self._att_state, self._att_started, self._att_ended = None, False, False
        self._att_end_started = None          # status "started" of the trainer whose end was shown
        self._live_at_end: set[str] | None = None   # the runs live when a chosen run was first seen ended

    def _follow(self) -> None:
        run_dir = self.attached
        try:
            st = rf.read_status(run_dir)
        except rf.RunFolderError as e:
            if not self._att_ended:
                self._att_ended = True
                self.post(RunEvents(str(run_dir), [Failed(str(e), str(run_dir))]))
            return
        if self._att_ended and st.started != self._att_end_started and st.state != "starting":
            self._attach(run_dir)    # trained on after its end (`train --resume`: another trainer, another start),
            #                          maybe ended again already: its logs were cut back, read them afresh
        events: list = []
        if not self._att_started:
            start = started_event(run_dir, st)
            if start is None:
                if st.live:
                    if self._att_state != "starting":
                        self._att_state = "starting"
                        self.post(RunEvents(str(run_dir), [Status("starting")], attach=True))
                    return
                start = Started(str(run_dir), {}, [], st.total_steps, 0, 0, st.device)
            self._att_started = True
            events.append(start)
        steps, evals = self._steps.read_new(), self._metrics.read_new()
        if (self._steps.restarted or self._metrics.restarted) and self._att_started and events == []:
            self._attach(run_dir)    # a log was cut back under us (a resume trims it): start again from the top
            return
        for rec in steps:
            try:
                events.append(rf.record_to_event("step", rec))
            except rf.RunFolderError:
                pass
        for rec in evals:
            try:
                events.append(rf.record_to_event("eval", rec))
            except rf.RunFolderError:
                pass
        state = "stale" if st.stale else st.state
        if state != self._att_state:
            self._att_state = state
            if st.live:
                events.append(Status(state))
            elif not self._att_ended:
                self._att_ended, self._att_end_started = True, st.started
                events.append(end_event(run_dir, st))
        if events:
            self.post(RunEvents(str(run_dir), events, attach=isinstance(events[0], Started)))
