"""The `namestudio` command. With no arguments it opens the TUI; subcommands do the same jobs headless.

Heavy modules (torch, textual) are imported inside the commands so that `--help` is instant.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import signal
import sys
from contextlib import contextmanager
from pathlib import Path

DEFAULT_CHECKPOINTS = os.environ.get("NAMESTUDIO_CHECKPOINTS", "checkpoints")
RUN_HELP = "a run folder, a run id under --checkpoints, any unique part of one, or EXPERIMENT/RUN"
RUN_EPILOG = f"RUN is {RUN_HELP}."           # for the commands that take no data source
EPILOG = "SRC is a folder of <Label>.txt, a name,label CSV, a one-class .txt, 'pytorch-names', 'builtin' or " \
         "'names-dataset' (the extra 'large'). " + RUN_EPILOG
HANGUP_KEEPS_ON = "NAMESTUDIO_HANGUP_KEEPS_ON"   # set by `train --nproc` for its ranks: a hangup does not stop them


def _is_entry() -> bool:
    """Whether this module is the command being run (`python -m namestudio.tui.cli`, `python -m namestudio`:
    how torchrun starts a rank), not a module imported by another."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return __name__ == "__main__" or getattr(spec, "name", None) == "namestudio.__main__"


def _say_interrupted() -> None:
    """ "namestudio: interrupted", said once: a rank of `train --nproc` leaves it to its launcher, and under
    torchrun only rank 0 says it."""
    if "TORCHELASTIC_RUN_ID" in os.environ and (os.environ.get(HANGUP_KEEPS_ON) == "1"
                                                or os.environ.get("RANK", "0") != "0"):
        return
    print("namestudio: interrupted", file=sys.stderr)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP ended a command that has no policy of its own for them (``ends_as_ctrl_c``). A kind of
    KeyboardInterrupt, so that it unwinds exactly as a Ctrl-C does: every ``finally`` and ``with`` on the way
    runs (tmux servers killed, training children ended, temporary folders removed). The default action killed
    the process on the spot and left all of those behind (`namestudio bench` under `timeout`)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum    # as the shell reports a process the signal killed: 143 SIGTERM, 129 SIGHUP

    def say(self) -> None:
        try:
            print(f"namestudio: terminated ({signal.Signals(self.signum).name})", file=sys.stderr)
        except OSError:             # the terminal is gone (a hangup)
            pass


STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextmanager
def ends_as_ctrl_c():
    """Inside: SIGTERM and SIGHUP raise Terminated in the main thread. A second one while the command cleans up
    is ignored (`timeout`, a supervisor may send it again: it must not cut the cleanup short); a third raises
    again (a cleanup that hangs, or a stop some code swallowed). After a hangup, what was written to the gone
    terminal goes to /dev/null (a write to it fails, EIO, and would end the cleanup too). Restored on the way
    out. A signal ignored when the command started (nohup) stays ignored."""
    if not threading_main():
        yield
        return
    ttys = [fd for fd in (1, 2) if _isatty(fd)]     # asked now: a hung-up terminal no longer answers
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    heard: list[int] = []

    def on_stop(signum, frame):
        heard.append(signum)
        if len(heard) == 2:
            return
        if signum != signal.SIGTERM and ttys:
            devnull = os.open(os.devnull, os.O_WRONLY)
            for fd in ttys:
                os.dup2(devnull, fd)
            os.close(devnull)
        raise Terminated(signum)

    for s in STOP_SIGNALS:
        if previous[s] != signal.SIG_IGN:
            signal.signal(s, on_stop)
    try:
        yield
    finally:
        for s in STOP_SIGNALS:
            signal.signal(s, previous[s])


def _isatty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


# A torchrun rank hears a stop (Ctrl-C, SIGTERM) from here on, before torch and the data are imported: it is
# held (a KeyboardInterrupt printed a traceback from the middle of an import) and `train` takes it over with
# its own handlers (cmd_train, _train_rank): the ranks then stop together (engine/distributed.py init).
HELD_STOPS: list[int] = []


def _hold_stop(signum, frame) -> None:
    HELD_STOPS.append(signum)


def _release_held_stops() -> None:
    """Any command but `train` under torchrun: Ctrl-C and SIGTERM as usual again, and one held now counts."""
    if signal.getsignal(signal.SIGINT) is _hold_stop:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if HELD_STOPS:
            raise KeyboardInterrupt


if _is_entry() and "TORCHELASTIC_RUN_ID" in os.environ:
    for _stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(_stop, _hold_stop)

try:
    from namestudio.data.errors import NamestudioError
except KeyboardInterrupt:          # Ctrl-C while the command still starts: one line, not an import's traceback
    if not _is_entry():
        raise
    _say_interrupted()
    sys.exit(130)


class CliError(NamestudioError):
    """A bad command line: printed as one line, exit code 1."""

    exit_code = 1


class UsageError(CliError):
    """An option's value refused before the command starts (an empty value, a file where a folder is asked for):
    one line, exit code 2, as argparse's own usage errors."""

    exit_code = 2


def _version() -> str:
    """The installed distribution's version (package metadata), so it is written in one place: pyproject.toml."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("namestudio")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _add_checkpoints(p):
    p.add_argument("--checkpoints", metavar="DIR", default=DEFAULT_CHECKPOINTS,
                   help=f"folder of run folders (default: {DEFAULT_CHECKPOINTS}, from the current folder; "
                        "env NAMESTUDIO_CHECKPOINTS)")


def _add_json(p):
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")


class Parser(argparse.ArgumentParser):
    """argparse with its errors on one line, as every other error of the command (was: the whole usage block,
    then the error): what is wrong, and where the help is. Exit code 2, as argparse's."""

    argv: list[str] = []      # what main parses: an unknown option of a command is found by the top parser

    def error(self, message: str):
        where = self.prog
        if self._subparsers is not None and message.startswith("unrecognized arguments"):
            commands = self._subparsers._group_actions[0].choices or {}
            command = next((a for a in self.argv if not a.startswith("-")), None)
            if command in commands:
                where = f"{self.prog} {command}"
        self.exit(2, f"{where}: error: {message} (see: {where} --help)\n")


def _start_prefix(text: str) -> str:
    """sample --start: a prefix of at least one letter ('' used to be read as no prefix, without a word)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("give at least one letter (it was empty; leave --start out for no prefix)")
    return text


def build_parser() -> argparse.ArgumentParser:
    ap = Parser(prog="namestudio", description="Character-level RNN studio for names. "
                                 "Run with no command to open the terminal UI.", epilog=EPILOG)
    ap.add_argument("--version", action="version", version=f"namestudio {_version()}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("tui", help="open the terminal UI (the default)", epilog=EPILOG)
    p.add_argument("--data", metavar="SRC", help="data source to start on (default: pytorch-names if on disk, else builtin)")
    _add_checkpoints(p)
    p.set_defaults(func=cmd_tui)

    p = sub.add_parser("data", help="summarise a dataset, or `data download` the PyTorch names archive", epilog=EPILOG)
    p.add_argument("action", nargs="?", choices=["summary", "download"], default="summary",
                   help="summary (default) or download")
    p.add_argument("--data", metavar="SRC", help="data source (default: pytorch-names if on disk, else builtin)")
    p.add_argument("--ascii", action="store_true", help="fold names to ASCII letters")
    p.add_argument("--seed", type=int, help="split seed for the split counts (default 0)")
    p.add_argument("--url", help="with download: the address (default: the PyTorch tutorial archive; a path or "
                                 "file:///… for a local copy); the names go to pytorch-names/names in the user "
                                 "data folder (NAMESTUDIO_DATA_DIR moves it)")
    p.add_argument("--force", action="store_true",
                   help="with download: download again even when the names on disk are the pinned archive's "
                        "(without it, a second download checks them offline and stops there)")
    _add_json(p)
    p.set_defaults(func=cmd_data)

    from namestudio.engine.config import add_train_arguments
    p = sub.add_parser("train", help="train a classifier or a generator", epilog=EPILOG)
    add_train_arguments(p)   # every option comes from the one definition in engine/config.py
    p.add_argument("--resume", metavar="RUN", help="continue a saved run with its own settings (--epochs and "
                   "--max-steps may change where it ends, to a step past its progress; --device, --threads, --patience, "
                   "--amp and --log-every may change; any other setting is refused)")
    p.add_argument("--run-dir", metavar="DIR", help="train into this folder: a new or empty one (created if absent), or one "
                        "the TUI or compare prepared for this run (its train.log, status.json); "
                        "never one holding other files (a data folder, ~) or a run "
                        "(train --resume continues that)")
    p.add_argument("--nice", type=int, metavar="N", help="lower this process's CPU priority by N (os.nice)")
    _add_checkpoints(p)
    _add_json(p)
    _add_ranks(p)
    p.set_defaults(func=cmd_train)

    for name, func, what in (("stop", cmd_stop, "stop a run (or EXP: every run of an experiment): "
                                                + STOP_KEEPS_EACH),
                             ("pause", cmd_pause, "pause a run"), ("resume", cmd_resume, "resume a paused run")):
        p = sub.add_parser(name, help=f"{what} (any live local run, whoever started it)", epilog=RUN_EPILOG)
        p.add_argument("run", metavar="RUN" if name != "stop" else "RUN|EXP",
                       help=RUN_HELP + (", or an experiment (its id or a unique part)" if name == "stop" else ""))
        _add_checkpoints(p)
        p.set_defaults(func=func)

    p = sub.add_parser("eval", help="test metrics, calibration and the confusion matrix of a run", epilog=EPILOG,
                       description="Test metrics, calibration and the confusion matrix of a run. Balanced accuracy "
                       "averages recall over the labels with names in the data; macro-F1 averages F1 over those "
                       "and the labels predicted for names of others (F1 0). The per-class table lists exactly "
                       "those labels; --json's per_class has every label of the run (support 0 where it has no "
                       "names).")
    p.add_argument("run", metavar="RUN", help=RUN_HELP)
    p.add_argument("--split", choices=["test", "val"], help="recorded split to evaluate (default: test; not with --data)")
    p.add_argument("--data", metavar="SRC", help="evaluate on this labelled source instead of a recorded split "
                   "(labels the run does not know are reported and skipped)")
    p.add_argument("--exclude-train", action="store_true", help="with --data: skip names in the run's training split")
    p.add_argument("--counts", action="store_true", help="confusion matrix in counts instead of row percentages")
    _add_checkpoints(p)
    _add_json(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("classify", help="top-k languages for each name", epilog=RUN_EPILOG,
                       description="Top-k languages for each name. Names are read as the run's training data was "
                       "(folded to ASCII when it was trained with --ascii); a note names the characters the run "
                       "never saw and says when a name was cut to the 64 characters the model reads. A bad name "
                       "(empty, or no letter the run knows) gets its own error line and the other names are "
                       "answered. Exit status: 0 when at least one name was answered, 1 when every name failed.")
    p.add_argument("run", metavar="RUN", help=RUN_HELP + "; a classifier")
    p.add_argument("names", metavar="NAME", nargs="+", help="one or more names to classify")
    p.add_argument("--top", type=int, default=3, metavar="K", help="how many languages to show (default 3)")
    _add_checkpoints(p)
    _add_json(p)
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("sample", help="generate names with a generator run", epilog=RUN_EPILOG,
                       description="Generate names with a generator run. A sample is 'new' when it is not in the "
                       "run's training data, not a repeat of an earlier sample, and more than the prefix. "
                       "--table prints, per temperature, the share of new names, of distinct names and, with "
                       "--classifier, of names the classifier assigns to the sampled language. Drawing 500 names "
                       "or more shows a progress bar with an ETA on stderr when it is a terminal (not with --json).")
    p.add_argument("run", metavar="RUN", help=RUN_HELP + "; a generator")
    p.add_argument("--lang", metavar="L", help="language to generate (default: a random one per sample)")
    start = p.add_mutually_exclusive_group()
    start.add_argument("--start", type=_start_prefix, metavar="PREFIX",
                       help="every name begins with PREFIX (at least one letter; leave --start out for no prefix); "
                            "a note says how characters the run never saw were read")
    start.add_argument("--start-letters", metavar="ABC",
                       help="one name per letter, each beginning with that letter (-n names per letter)")
    p.add_argument("-n", type=int, help="how many names (default 10; 1 per letter with --start-letters; "
                   "200 per temperature with --table)")
    p.add_argument("--temperature", type=float, metavar="T",
                   help="default 0.8; 0 = greedy (always the likeliest letter); --table takes --temperatures")
    p.add_argument("--top-k", type=int, default=0, metavar="K", help="sample among the K likeliest letters (default: all)")
    p.add_argument("--max-len", type=int, default=24, help="maximum name length, 1 to 64 (default 24)")
    p.add_argument("--seed", type=int, help="sampling seed")
    p.add_argument("--classifier", metavar="RUN2", help="a classifier run: report the share of samples it assigns to L")
    p.add_argument("--out", metavar="FILE", help="also write the names to FILE, one per line (replaced atomically)")
    p.add_argument("--table", action="store_true",
                   help="a table of novelty, uniqueness (and classifier agreement) across temperatures")
    p.add_argument("--temperatures", metavar="T1,T2,...",
                   help="temperatures for --table (default 0.5,0.8,1.0,1.2)")
    _add_checkpoints(p)
    _add_json(p)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("runs", help="list saved runs", epilog=RUN_EPILOG,
                       description="List the runs with their state, for live runs progress, and the data each "
                       "was trained on (its source as recorded: builtin, pytorch-names or a path). In a terminal: a "
                       "table that fits its width (run ids are never cut; other columns go first). Piped: "
                       "tab-separated lines, a header first, every column. --json: every field.")
    _add_checkpoints(p)
    _add_json(p)
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("bench", help="measure speed: namestudio vs the tutorial recipe (one name per step, SGD, as "
                       "in the PyTorch tutorial), mylstm vs nn.LSTM, start-up, the TUI while a run trains; and "
                       "quality: the default classifier and generator on the test split",
                       epilog=EPILOG)
    p.add_argument("--quick", action="store_true", help="shorter budgets, no quality runs (about 2 minutes on 2 cores)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="cpu", help="default: cpu")
    p.add_argument("--data", metavar="SRC", help="data source (default: pytorch-names if on disk, else builtin)")
    p.add_argument("--skip", default="", help="comma-separated sections to skip: tutorial,mylstm,startup,tui,scale,quality,gpu")
    _add_json(p)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("compare", help="train a set of models (or a grid of settings) on one data source, split "
                       "and seed, as an experiment folder", epilog=EPILOG,
                       description="Train each model as its own `namestudio train` process, N at a time, all on "
                       "one data source, one split and one seed with the same settings (every `train` option "
                       "below applies to every run). The experiment is a folder under --checkpoints "
                       "(exp-<time>-<task>/) holding experiment.json and one run folder per run. Ctrl-C stops "
                       "the runs in training cleanly (each keeps and tests what it has: its best checkpoint, or "
                       "its current weights before its first evaluation) and starts no more; it says which "
                       "at that moment. --resume EXP continues: runs "
                       "that are done are kept, the others resumed or restarted.")
    add_train_arguments(p)
    for action in p._actions:      # compare takes --models; its --model is there only to say so (cmd_compare)
        if action.dest == "model":
            action.help = argparse.SUPPRESS
    p.add_argument("--models", metavar="M1,M2", help="the models to compare (default: rnn,lstm,mylstm,gru)")
    p.add_argument("--set", dest="grid", action="append", metavar="KEY=V1,V2",
                   help="also vary a setting over these values (repeatable: the grid of every combination), "
                        "e.g. --set hidden=64,128 --set lr=0.002,0.005")
    p.add_argument("--parallel", type=int, metavar="N",
                   help="runs at once (default: the CPU cores divided by each run's torch threads; one per GPU)")
    p.add_argument("--resume", metavar="EXP", help="continue an experiment (a folder or an id under --checkpoints) with "
                   "its own settings: each run as it was planned; only --parallel, --nice, --report and --names may be "
                   "given beside it")
    p.add_argument("--nice", type=int, default=10, metavar="N", help="each run's CPU priority is lowered by N (default 10)")
    p.add_argument("--report", metavar="DIR", help="write a report folder at the end (see `namestudio report`)")
    p.add_argument("--names", metavar="N1,N2", help="the report's top-3 names (default Dovesky,Jackson,Hou)")
    _add_checkpoints(p)
    _add_json(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("report", help="a lab-report folder (report.md, figures, curves.csv) of an experiment or runs",
                       epilog=RUN_EPILOG,
                       description="Write DIR/report.md (results table, settings, machine, top-3 table of chosen "
                       "names, generators' samples per language), figures linked from it (curves, a confusion "
                       "matrix per classifier; needs matplotlib: pip install 'namestudio[report]') and "
                       "DIR/curves.csv with every logged point. Runs trained separately work too. DIR is written "
                       "whole or not at all; an existing DIR must be empty or an earlier report.")
    p.add_argument("items", metavar="EXPERIMENT|RUN", nargs="+",
                   help=f"experiments (a folder or an id) and runs ({RUN_HELP})")
    p.add_argument("--out", metavar="DIR", required=True, help="the report folder")
    p.add_argument("--names", metavar="N1,N2", help="top-3 names (default Dovesky,Jackson,Hou)")
    p.add_argument("--start-letters", default="ABC", metavar="ABC", help="generators: start letters (default ABC)")
    p.add_argument("--temperature", type=float, default=0.8, metavar="T", help="generators: temperature (default 0.8)")
    _add_checkpoints(p)
    _add_json(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("export", help="export runs' curves as TensorBoard event files", epilog=RUN_EPILOG)
    p.add_argument("items", metavar="RUN|EXPERIMENT", nargs="+",
                   help=f"runs ({RUN_HELP}) and experiments (a folder or an id)")
    p.add_argument("--tensorboard", metavar="DIR", required=True,
                   help="write DIR/<run-id>/events.out.tfevents.* (an experiment's run: DIR/<exp-id>/<run>/; two "
                        "runs of one name: DIR/<its folder>/<run-id>/); then: tensorboard --logdir DIR")
    _add_checkpoints(p)
    _add_json(p)
    p.set_defaults(func=cmd_export)
    for action in sub._choices_actions:   # each command's --help opens with what it does (its line in the list)
        command = sub.choices[action.dest]
        if not command.description and action.help:
            command.description = action.help[0].upper() + action.help[1:] + "."
    return ap


# ---- helpers ------------------------------------------------------------------------
def _console(json_mode: bool = False, keep_going: bool = False):
    """The command's Rich console. A reader that closes the pipe (`| head -1`) ends a command quietly with exit
    PIPE_CLOSED; with ``keep_going`` (train, compare: work that must not be cut short) it only silences it."""
    from rich.console import Console
    con = Console(stderr=json_mode, highlight=False)
    con.soft_wrap = not con.is_terminal  # piped: whole lines, no wrapping at 80 columns
    con.on_broken_pipe = (lambda: _silence(con)) if keep_going else _reader_went_away
    return con


def _silence(con) -> None:
    """The console's reader is gone: the rest of its output goes nowhere, and the work goes on."""
    con.quiet = True
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), con.file.fileno())
    except (OSError, ValueError, AttributeError):
        pass


PIPE_CLOSED = 141   # 128 + SIGPIPE: what a shell reports for a command whose reader closed the pipe (`| head`)


def _reader_went_away():
    """The reader of stdout closed the pipe (`namestudio runs | head -1`): say nothing more, exit PIPE_CLOSED."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # the exit's flush must not fail again
    except (OSError, ValueError):
        pass
    raise SystemExit(PIPE_CLOSED)


def _emit_json(obj) -> None:
    """One JSON line, strict: a float that is not finite (a NaN loss, an infinite NLL) is null, since json.dumps
    writes NaN and Infinity, which no strict JSON reader (jq, JSON.parse) takes."""
    sys.stdout.write(json.dumps(_finite(json.loads(json.dumps(obj, default=_json_default)))) + "\n")
    sys.stdout.flush()


def _finite(o):
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, list):
        return [_finite(v) for v in o]
    return o


def _json_default(o):
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)


def _progress(con, *columns, transient: bool = False):
    """The CLI's progress display for long work (train, sample): what is under way, a bar, the given columns, the
    time spent and the ETA."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), *columns, TimeElapsedColumn(),
                    TextColumn("ETA"), TimeRemainingColumn(), console=con, transient=transient)


SAMPLE_PROGRESS_FROM = 500   # names drawn (all temperatures together): a smaller sampling shows no bar


@contextmanager
def _sampling_progress(names: int, json_mode: bool):
    """``update(done, total)`` for the engine's sampling (LoadedRun.sample's ``progress``): a bar with an ETA on
    stderr while it runs, gone at the end. None (nothing shown) with --json, when stderr is not a terminal, or
    for fewer than SAMPLE_PROGRESS_FROM names."""
    from rich.console import Console
    con = Console(stderr=True, highlight=False)
    if json_mode or names < SAMPLE_PROGRESS_FROM or not con.is_terminal:
        yield None
        return
    from rich.progress import TaskProgressColumn
    with _progress(con, TaskProgressColumn(), transient=True) as bar:
        task = bar.add_task(f"sampling {names:,} names", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _load(run, checkpoints):
    from namestudio.engine.infer import load_run
    return load_run(run, checkpoints)


def _live_note(con, run) -> bool:
    """A run a trainer is at work on answers with its best weights so far: say so (classify, sample, eval).
    True when it is being trained."""
    from rich.markup import escape

    from namestudio.engine import runfolder as rf
    try:
        st = rf.read_status(run.path)
    except rf.RunFolderError:
        return False
    if st.live:
        con.print(f"[yellow]note:[/] run {escape(run.path.name)} is being trained (step {st.step:,} of "
                  f"{st.total_steps:,}): these are its best weights so far")
    return bool(st.live)


# ---- commands -----------------------------------------------------------------------
def cmd_tui(args) -> int:
    if not (sys.stdin.isatty() and sys.stdout.isatty()) and not os.environ.get("TEXTUAL_DRIVER"):
        # piped or redirected (`namestudio < /dev/null | cat`) a full-screen UI would run unseen until killed
        raise CliError("the terminal UI needs a terminal for its input and output; in scripts and pipes use the "
                       "commands (namestudio --help)")
    from namestudio.tui.app import run_app
    return run_app(data=getattr(args, "data", None), checkpoints=getattr(args, "checkpoints", DEFAULT_CHECKPOINTS))


def cmd_data(args) -> int:
    from namestudio import data
    con = _console(args.json)
    if args.action == "download":
        given = [o for o, v in (("--data", args.data), ("--ascii", args.ascii), ("--seed", args.seed))
                 if v is not None and v is not False]
        if given:        # the summary's options: refused, never silently ignored
            raise CliError(f"{' and '.join(given)} {'is' if len(given) == 1 else 'are'} for the summary "
                           "(`namestudio data`), not for `namestudio data download`")
        return _download(args, con)
    for option, value in (("--url", args.url), ("--force", args.force)):
        if value is not None and value is not False:
            raise CliError(f"{option} is for downloading: `namestudio data download {option}"
                           f"{' ' + shlex.quote(value) if isinstance(value, str) else ''}`")
    args.seed = 0 if args.seed is None else args.seed
    if not 0 <= args.seed < 2**63:         # the split seed train takes (--split-seed), checked the same way
        raise CliError(f"--seed must be {'≥ 0' if args.seed < 0 else f'≤ {2**63 - 1:,}'} (got {args.seed})")
    ds = data.load_dataset(args.data, ascii_fold=args.ascii)
    split = data.split_by_name(ds.pairs, seed=args.seed) if len(ds.pairs) >= 3 else None
    summary = data.summarise(ds, split)
    # a split train refuses: said here, not there first (and in --json too: it dropped the note)
    notes = ["too few names to split into train and validation: `namestudio train` refuses this source"] \
        if split is None or not split.train or not split.val else []
    if args.json:
        _emit_json({**summary, "notes": notes})
        return 0
    from namestudio.tui.render import summary_tables
    for t in summary_tables(summary):
        con.print(t)
        con.print()
    for note in notes:
        con.print(f"[yellow]note:[/] {note}")   # our own words: no markup in them
    return 0


def _download(args, con) -> int:
    from namestudio import data
    url = args.url or data.URL
    dest = data.pytorch_names_dir()
    state = data.pytorch_names_state(dest)
    if state == "intact" and not args.force:      # nothing to fetch: no network needed, whatever --url says
        con.print(f"pytorch-names already in {dest}: its files are the pinned archive's (sha256 {data.SHA256[:12]}…); "
                  "nothing downloaded (--force downloads it again)", markup=False)
        if args.json:
            _emit_json({"path": str(dest), "source": "pytorch-names", "downloaded": False})
        return 0
    if state == "changed":
        con.print(f"pytorch-names in {dest} differs from the pinned archive's names (a file edited, added or "
                  "missing): downloading it again to replace it", markup=False)
    if con.is_terminal:
        from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn
        with Progress("[bold]download", BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
                      console=con, transient=True) as prog:
            task = prog.add_task("download", total=None)
            path = data.download_pytorch_names(url=url, progress=lambda done, total: prog.update(task, completed=done, total=total))
    else:
        path = data.download_pytorch_names(url=url)
    con.print(f"pytorch-names ready in {path}", markup=False)
    if args.json:
        _emit_json({"path": str(path), "source": "pytorch-names", "downloaded": True})
    return 0


RANKS_HELP = """Train with N processes (ranks) through torchrun, torch's elastic launcher: `namestudio train
--nproc N ...` is the same as `torchrun --nproc-per-node N -m namestudio train ...` (which also works).
DistributedDataParallel: gloo on CPU, NCCL on CUDA (one GPU per rank). Each batch is split between the ranks,
so a step, its loss and the metrics are those of one process; rank 0 alone writes the run folder, and a run
resumes with any number of ranks (with as many as it was saved with, exactly as if never stopped). Several
machines: run the same command on each with --nnodes M, its own --node-rank and the first machine's
--master-addr/--master-port (or --rdzv-backend c10d --rdzv-endpoint HOST:PORT --rdzv-id ID); only rank 0's
machine needs the data and the run folder."""


def _add_ranks(p):
    g = p.add_argument_group("many processes (torch.distributed)", RANKS_HELP)
    g.add_argument("--nproc", type=int, metavar="N", help="ranks on this machine (default 1: no torchrun); at most "
                   "the CPU cores, or the GPUs when training on CUDA")
    g.add_argument("--nnodes", metavar="M", help="machines taking part, or MIN:MAX (torchrun --nnodes)")
    g.add_argument("--node-rank", type=int, metavar="I", help="this machine's index, 0 to M-1 (static rendezvous)")
    g.add_argument("--master-addr", metavar="HOST", help="address of node 0 (static rendezvous)")
    g.add_argument("--master-port", type=int, metavar="PORT", help="free port on node 0 (static rendezvous)")
    g.add_argument("--rdzv-backend", metavar="NAME", help="rendezvous backend, e.g. c10d (torchrun --rdzv-backend)")
    g.add_argument("--rdzv-endpoint", metavar="HOST:PORT", help="rendezvous address (torchrun --rdzv-endpoint)")
    g.add_argument("--rdzv-id", metavar="ID", help="a job id shared by all machines (torchrun --rdzv-id)")
    g.add_argument("--rdzv-conf", metavar="K=V,...", help="extra rendezvous settings (torchrun --rdzv-conf)")


RESUME_CHANGES = ("epochs", "device", "threads", "max_steps", "patience", "amp", "log_every")   # train --resume


def cmd_train(args) -> int:
    from rich.markup import escape

    from namestudio.engine import runfolder as rf
    from namestudio.engine.config import TrainConfig, given_options, model_label
    from namestudio.engine.events import Done, Eval, Failed, Started, Status, Step
    from namestudio.engine.train import Trainer
    from namestudio.tui.render import data_label, headline

    from namestudio.engine import distributed as ddp

    rdzv = {k: getattr(args, k, None) for k in ddp.RDZV_FLAGS}
    launcher = (args.nproc is not None and args.nproc != 1) or any(v is not None for v in rdzv.values())
    if launcher and ddp.in_torchrun():
        raise CliError("--nproc and the rendezvous options start torchrun; under torchrun, leave them out")
    if args.nproc is not None and args.nproc < 1:
        raise CliError(f"--nproc must be at least 1 (got {args.nproc})")
    ranks = ddp.Ranks.from_env()
    check_nice(args.nice)
    if args.nice:
        os.nice(args.nice)
    overrides = given_options(args)
    resume = None
    if args.resume and args.run_dir:
        raise CliError("--resume and --run-dir do not go together: a resumed run trains in its own folder")
    if args.resume and not ranks.main:
        cfg = TrainConfig(**overrides)   # a stand-in: rank 0 reads the run and sends its config
        resume = args.resume
    elif args.resume:
        resume = rf.resolve_run(args.resume, args.checkpoints)
        _check_began(resume)
        saved = TrainConfig.from_dict(rf.read_config(resume)["train"])
        try:   # a damaged saved setting names config.json, not an option the user never gave
            saved.validate()
        except NamestudioError as e:
            raise rf.RunFolderError(f"{resume / rf.CONFIG}: {e}") from None
        fixed = sorted(k for k in overrides if k not in RESUME_CHANGES and overrides[k] != getattr(saved, k, None))
        if fixed:
            raise CliError(f"--resume continues run {resume.name} with its own settings; --{fixed[0].replace('_', '-')} "
                           f"cannot change (these can: {', '.join('--' + k.replace('_', '-') for k in RESUME_CHANGES)})")
        for k in RESUME_CHANGES:
            if k in overrides:
                setattr(saved, k, overrides[k])
        cfg = saved
        if rf.resume_dir(resume) is None:
            raise CliError(f"run {resume.name} has no resume point yet (it was stopped before its first save)")
        if rf.nothing_left(resume) and not {"epochs", "max_steps"} & set(overrides):
            status = rf.read_status(resume)   # nothing to do: the run, its weights and its test figures stay as they are
            return _nothing_to_resume(args, resume, f"run {_run_name(resume)} is done ({status.reason or 'finished'}, "
                                                    f"step {status.step:,} of {status.total_steps:,}): nothing to "
                                                    f"resume; --epochs N (more than its {saved.epochs}) trains it further")
    else:
        cfg = TrainConfig(**overrides)
    cfg.validate()
    if launcher:
        return _launch_ranks(args, cfg, overrides, rdzv)
    if not ranks.main:
        return _train_rank(args, cfg, resume, ranks)

    hang = _hangup(args)
    con = hang.watch(_console(args.json, keep_going=True))
    cores = os.cpu_count() or 1
    if cfg.threads and cfg.threads > cores:
        con.print(f"[yellow]--threads {cfg.threads} is more than this machine's {cores} core{'s' * (cores != 1)}: "
                  f"the threads will wait on each other (the default, --threads 0, picks for you)[/]")
    progress = None
    if con.is_terminal:
        from rich.progress import MofNCompleteColumn, TextColumn
        progress = _progress(con, MofNCompleteColumn(), TextColumn("{task.fields[rate]:>7.0f} names/s"),
                             TextColumn("loss {task.fields[loss]:.3f}"))
    state = {"task": None}

    def printer(e):  # the CLI's event sink; the run folder has its own (RunWriter)
        if isinstance(e, Started):
            hang.to(Path(e.run_dir) / rf.LOG)        # after a hangup, the output goes on there
            con.print(f"[bold]run[/] {escape(str(e.run_dir))} · {cfg.task} · "
                      f"{escape(model_label(cfg.model, cfg.members))} · "
                      f"data {escape(data_label(e.data_source or cfg.data, cfg.ascii_fold))} · "
                      f"{e.n_train:,} training rows (name, label) · "
                      f"device {escape(str(e.device))} · pid {os.getpid()}"
                      + (f" ({escape(e.note)})" if e.note else ""))
            if resume is not None:     # where it goes on from: its resume point (`runs` shows the same step)
                con.print(f"resumes from step {e.start_step:,} of {e.total_steps:,} "
                          f"(epoch {e.start_step / max(1, e.steps_per_epoch):.2f})", markup=False)
            if progress:
                progress.start()
                state["task"] = progress.add_task("train", total=e.total_steps, completed=e.start_step, rate=0.0, loss=0.0)
        elif isinstance(e, Step) and progress:
            progress.update(state["task"], completed=e.step, rate=e.names_per_s, loss=e.loss,
                            description=f"epoch {e.epoch:.1f}")
        elif isinstance(e, Eval):
            mark = " *best*" if e.best else ""
            con.print(f"epoch {e.epoch:5.2f} step {e.step:6d} · train loss {e.train_loss:.3f} · val "
                      f"{headline(e.metrics, cfg.task)}{mark}")
        elif isinstance(e, Status):
            kept = "the best" if trainer.run_dir and (Path(trainer.run_dir) / rf.WEIGHTS).is_file() else "the current"
            con.print({"paused": "paused", "running": "resumed",
                       "stopping": f"stopping: testing {kept} weights"}.get(e.state, e.state), markup=False)
        elif isinstance(e, (Done, Failed)):
            if progress:
                progress.stop()
            blend = e.test_metrics.get("lm_blend") if isinstance(e, Done) else None
            if isinstance(blend, dict) and not state.get("blend_said"):   # on this console's stream, with the
                state["blend_said"] = True                                  # other lines (it explains the test's)
                from namestudio.engine.blend import describe
                con.print(f"{describe(blend)} ({blend.get('seconds', 0):.1f} s)", markup=False)

    trainer = Trainer(cfg, args.checkpoints, [printer], resume_from=resume, run_dir=args.run_dir)
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.getsignal(s) for s in handled}

    under_torchrun = ddp.in_torchrun()

    asked = []

    def on_signal(signum, frame):  # first Ctrl-C / SIGTERM: stop cleanly (best kept and tested); a second: at once
        asked.append(signum)
        if len(asked) > 1 and not under_torchrun:  # torchrun forwards the terminal's Ctrl-C again: a stop each time
            for s in handled:                      # a third: as if there were no handler
                signal.signal(s, previous[s])
            trainer.abort()        # KeyboardInterrupt (after the resume point being written, if one is): run() writes
            return                 # the end, stopped with what was saved and untested, and raises it again (below)
        trainer.cancel()           # first: a print may fail here (below)
        if len(asked) > 1 or os.environ.get("RANK", "0") != "0":   # said once, by one rank (torchrun passes a
            return                                                 # Ctrl-C on to every rank, and again)
        try:                       # the signal may land inside a print of the main thread: a second write to the
            keeps = rf.stop_keeps(trainer.run_dir, trainer.at_step)     # same stream raises "reentrant call"
            again = "" if under_torchrun else " (Ctrl-C again: at once" + (", untested)" if trainer.at_step else ")")
            con.print(f"stopping: {keeps}{again}", style="yellow", markup=False)
        except (RuntimeError, OSError):
            pass

    if threading_main():
        for s in handled:
            signal.signal(s, on_signal)
        if hasattr(signal, "SIGXFSZ"):  # past a file-size limit: a write error naming the file, not a silent death
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        if under_torchrun:
            ddp.die_with_agent()         # a rank stops when its agent's process ends (kill -9 of `train --nproc`)
        if HELD_STOPS:                   # asked before this handler: the ranks stop together, nothing said yet
            trainer.cancel()
    # a hangup: the run goes on (under torchrun, unless `train --nproc` launched it, the agent stops the ranks)
    if under_torchrun and os.environ.get(HANGUP_KEEPS_ON) != "1":
        hang.then = trainer.cancel
    hang.to(trainer.run_dir and Path(trainer.run_dir) / rf.LOG)
    try:
        result = trainer.run()
    except KeyboardInterrupt as e:       # asked to stop twice: the run ended at once (Trainer._interrupted)
        if (isinstance(e, ddp.StoppedBeforeStart) or trainer.run_dir is None
                or not (Path(trainer.run_dir) / rf.CONFIG).is_file()):
            raise                        # nothing began there: main says "interrupted"
        return _stopped_at_once(con, args, Path(trainer.run_dir))
    finally:
        if threading_main():
            for s in handled:
                signal.signal(s, previous[s])
    if isinstance(result, Failed) and result.nothing_to_do:   # a done run with no step left: nothing changed
        return _nothing_to_resume(args, Path(result.run_dir), result.message)
    if isinstance(result, Failed):
        began = bool(result.run_dir) and (Path(result.run_dir) / rf.CONFIG).is_file()   # else nothing there to see
        raise CliError(result.message + (f" (run folder: {result.run_dir})" if began else ""))
    t = result.test_metrics
    if result.untested:        # stopped before any training: no test figures (an untrained network's mean nothing)
        con.print(f"{result.untested} · {result.train_seconds:.1f} s", markup=False)   # it says "stopped" itself
    else:
        con.print(f"[bold]test[/] {headline(t, cfg.task)} · {result.train_seconds:.1f} s · "
                  f"{escape(rf.reason_words(result.reason))}")
    con.print(f"run folder: {result.run_dir}", markup=False)
    if args.json:
        out = {"run_dir": result.run_dir, "run_id": os.path.basename(result.run_dir), "task": cfg.task,
               "model": cfg.model, "train_seconds": round(result.train_seconds, 3), "reason": result.reason}
        keys = ({"test_accuracy": "accuracy", "test_macro_f1": "macro_f1", "test_balanced_accuracy": "balanced_accuracy",
                 "test_loss": "loss"} if cfg.task == "classify" else {"test_nll": "nll", "test_perplexity": "perplexity"})
        out.update({k: t.get(v) for k, v in keys.items()})      # None when not tested
        if result.untested:
            out["untested"] = result.untested
        _emit_json(out)
    if result.reason == rf.STOPPED and not under_torchrun:   # stopped before its end: `train … && next` stops too
        if rf.resume_dir(Path(result.run_dir)) is not None:
            con.print(f"stopped: `namestudio train --resume {_where(result.run_dir)}` continues it", markup=False)
        return 130
    return 0


def _stopped_at_once(con, args, run_dir: Path) -> int:
    """`train` asked to stop twice: the run's end as its folder records it (stopped, untested), and what to do."""
    from namestudio.engine import runfolder as rf
    try:
        st, folder = rf.read_status(run_dir), rf.resume_dir(run_dir)
    except rf.RunFolderError as e:
        raise CliError(str(e)) from None
    kept = (f"its resume point at step {st.step:,} is kept: `namestudio train --resume {_where(run_dir)}` "
            f"continues it" if folder is not None else "nothing was saved yet to resume from")
    untested = rf.read_test(run_dir).get("untested") if st.state == rf.STOPPED else None
    if untested == rf.NOT_TESTED:
        con.print(f"{rf.STOPPED} at once, not tested: {kept}", markup=False)
    elif untested == rf.UNTRAINED:
        con.print(f"{rf.STOPPED} before any training: {kept}", markup=False)
    else:                           # a resume interrupted before it trained on: the run is as it was
        con.print(f"interrupted before it trained on: run {run_dir.name} is {'stale' if st.stale else st.state} "
                  "as it was", markup=False)
    con.print(f"run folder: {run_dir}", markup=False)
    if args.json:
        _emit_json({"run_dir": str(run_dir), "run_id": run_dir.name, "reason": st.reason, "steps": st.step,
                    "untested": rf.read_test(run_dir).get("untested"), "resumable": folder is not None})
    return 130


def _given(argv, option: str) -> bool:
    """Whether ``option`` is on the command line, as "--opt VALUE" or "--opt=VALUE"."""
    return any(a == option or str(a).startswith(option + "=") for a in argv or [])


def _where(run_dir) -> str:
    from namestudio.engine.runfolder import as_arg
    return as_arg(run_dir)


def _check_began(run_dir: Path) -> None:
    """A run stopped before it saved its settings (Ctrl-C on `compare` as the run started: a stopped status and
    nothing else) has nothing to resume: say so and what starts it again, not "config.json: missing"."""
    from namestudio.engine import runfolder as rf
    if (run_dir / rf.CONFIG).is_file() or not (run_dir / rf.STATUS).is_file():
        return
    try:
        st = rf.read_status(run_dir)
    except rf.RunFolderError:
        return
    if st.state == rf.STOPPED:
        from namestudio.engine.experiment import EXPERIMENT
        again = (f"`namestudio compare --resume {_where(run_dir.parent)}` starts it again"
                 if (run_dir.parent / EXPERIMENT).is_file() else "train it afresh")
        raise CliError(f"run {_run_name(run_dir)} was stopped before it saved its settings: nothing to resume; "
                       f"{again}")


def _nothing_to_resume(args, run_dir: Path, message: str) -> int:
    """`train --resume` of a done run with no step left: say so (with --json, as the JSON line a script reads) and
    exit 0, the run untouched."""
    _console(args.json).print(message, markup=False)
    if args.json:
        _emit_json({"run_dir": str(run_dir), "run_id": run_dir.name, "nothing_to_do": True, "message": message})
    return 0


class Hangup:
    """SIGHUP (the terminal closed, SSH dropped) during `train` or `compare`: the work goes on, as a run started
    from the TUI does. Installed by ``main`` before the command imports anything heavy.

    From the hangup on, what the command prints goes, as plain text, to a log in its run or experiment folder
    (``to``: train.log, compare.log) after a line saying when the terminal went; until that folder is known, to
    /dev/null, and then to it. ``then`` runs after the hangup, if set (a rank under a torchrun that `train
    --nproc` did not start stops: its agent stops the ranks anyway). Under nohup (SIGHUP ignored) nothing changes."""

    def __init__(self, listen: bool = True) -> None:
        self.at: str | None = None           # when the terminal went
        self.target: Path | None = None      # the log the output goes to after a hangup
        self.consoles: list = []
        self.then = None
        self._in_target = False              # the output goes to the target log (not /dev/null) since the hangup
        self._previous = None
        if listen and threading_main() and hasattr(signal, "SIGHUP") \
                and signal.getsignal(signal.SIGHUP) != signal.SIG_IGN:
            self._previous = signal.getsignal(signal.SIGHUP)
            signal.signal(signal.SIGHUP, self._on_hangup)

    def watch(self, con):
        """A Rich console of the command: plain text after a hangup (the log is read as text, not a terminal)."""
        self.consoles.append(con)
        if self.at:
            self._plain(con)
        return con

    def to(self, path) -> None:
        """The log for the output after a hangup (called again once its folder exists: the first call may come
        before it does)."""
        if path is None or (self.target == Path(path) and self._in_target):
            return
        self.target = Path(path)
        if self.at:
            self._redirect(f"the terminal hung up at {self.at}; pid {os.getpid()} goes on, its output here")

    def _on_hangup(self, signum, frame) -> None:
        import time
        self.at = time.strftime("%Y-%m-%d %H:%M:%S")
        self._redirect(f"the terminal hung up at {self.at}; pid {os.getpid()} {'stops' if self.then else 'goes on'}")
        for con in self.consoles:
            self._plain(con)
        if self.then is not None:
            self.then()

    def _redirect(self, line: str) -> None:
        fd = -1
        if self.target is not None:
            try:
                fd = os.open(self.target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            except OSError:    # its folder is not there yet: /dev/null until `to` is called again
                fd = -1
        self._in_target = fd >= 0
        if fd < 0:
            fd = os.open(os.devnull, os.O_WRONLY)
        os.write(fd, f"namestudio: {line}\n".encode())
        for target in (1, 2):   # a write to the gone terminal would fail (EIO) and end the work
            os.dup2(fd, target)
        os.close(fd)

    @staticmethod
    def _plain(con) -> None:
        con._color_system = None   # Rich renders styles as plain text without a colour system (a file's output)
        con.soft_wrap = True       # whole lines, as when piped: not wrapped at the gone terminal's width
        con.is_interactive = False  # a progress bar draws no frame into the log (only its last, when it stops)
        if not isinstance(con.file, _FreshLines):
            con.file = _FreshLines(con.file)

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGHUP, self._previous)
            self._previous = None


class _FreshLines:
    """A console's file after a hangup. A print that the hangup interrupted had rendered for the terminal, with
    the progress bar's frame after its line and no line break; the next print, plain now, was glued onto that
    frame in the log. Here a write that follows one left mid-line starts on a new line."""

    def __init__(self, file) -> None:
        self.file, self.mid_line = file, False

    def write(self, text: str) -> int:
        if self.mid_line and text and not text.startswith("\n"):
            text = "\n" + text
        if text:
            self.mid_line = not text.endswith("\n")
        return self.file.write(text)

    def __getattr__(self, name):
        return getattr(self.file, name)


def _hangup(args) -> Hangup:
    """The command's Hangup (``main`` installs one for train and compare); one that listens to nothing otherwise."""
    hang = getattr(args, "hangup", None)
    return hang if hang is not None else Hangup(listen=False)


def _launch_ranks(args, cfg, overrides: dict, rdzv: dict) -> int:
    """`train --nproc N`: check N, then run torchrun's agent here; it starts N ranks of this same command
    (without the launcher's options) and waits for them."""
    from rich.markup import escape

    from namestudio.engine import distributed as ddp
    from namestudio.engine import runfolder as rf
    from namestudio.engine.config import cfg_to_argv, default_threads
    nproc = args.nproc or 1
    try:
        ddp.check_rdzv(rdzv)
        ddp.check_nproc(nproc, cfg.device)
    except ddp.DistributedError as e:
        raise CliError(str(e)) from None
    # one machine: the launcher knows the run folder (it makes a new one), so that it can read how the run ended
    one_machine = rdzv.get("nnodes") is None
    made = run_dir = None
    if args.resume:   # the ranks get only what the command line said; rank 0 reads the rest from the run
        worker = ["train", "--resume", args.resume, *_given_argv(overrides)]
        run_dir = _resolved_or_none(args.resume, args.checkpoints)
    else:
        worker = ["train", *cfg_to_argv(cfg)]
        if not args.run_dir and one_machine:
            made = rf.new_run_dir(Path(args.checkpoints), cfg.task, cfg.model)
        run_dir = Path(args.run_dir) if args.run_dir else made
        if run_dir is not None:
            worker += ["--run-dir", str(run_dir)]
    worker += ["--checkpoints", args.checkpoints] + (["--json"] if args.json else [])
    torchrun = ddp.torchrun_args(nproc, rdzv, worker)
    threads = cfg.threads or max(1, default_threads() // nproc)
    con = _console(args.json)
    con.print(f"[dim]{nproc} rank{'s' * (nproc != 1)} on this machine: {escape(ddp.shown_command(torchrun))}[/]",
              soft_wrap=True)
    # a hangup reaches the launcher and every rank here: all go on (torchrun's agent would stop the ranks); the
    # signals the agent handles are ddp.AGENT_SIGNALS (this variable for a torch that reads it, and not the option)
    os.environ["TORCHELASTIC_SIGNALS_TO_HANDLE"] = ddp.AGENT_SIGNALS
    os.environ[HANGUP_KEEPS_ON] = "1"
    os.environ[ddp.AGENT_PID] = str(os.getpid())     # the ranks stop when this process ends (ddp.die_with_agent)
    _hangup(args).watch(con)
    _hangup(args).to(run_dir and run_dir / rf.LOG)
    try:
        code = ddp.launch(torchrun, threads)
    except ddp.DistributedError as e:
        raise CliError(str(e)) from None
    finally:
        if made is not None:
            _remove_if_unused(made)
    if code in (0, ddp.STOPPED_EXIT) and one_machine and run_dir is not None and _stopped(run_dir):
        con.print(f"stopped: `namestudio train --resume {_where(run_dir)}` continues it", markup=False)
        return ddp.STOPPED_EXIT   # as one process exits when stopped before its end: `train … && next` stops too
    if code == ddp.STOPPED_EXIT:  # stopped before the run began (or elsewhere, another machine's): as one
        raise KeyboardInterrupt   # process, "interrupted", exit 130 (it read 0, and `train … && next` went on)
    return code


def _remove_if_unused(run_dir: Path) -> None:
    """The launcher's new run folder, when the run never began (bad data, a rank that could not start): it holds
    only the lock and the status then. Remove it, as one process leaves no folder for a run that never began."""
    from namestudio.engine import runfolder as rf
    try:
        if {p.name for p in run_dir.iterdir()} <= {rf.LOCK, rf.STATUS}:
            shutil.rmtree(run_dir)
    except OSError:
        pass


def _resolved_or_none(run: str, checkpoints: str) -> Path | None:
    from namestudio.engine import runfolder as rf
    try:
        return rf.resolve_run(run, checkpoints)
    except rf.RunFolderError:
        return None          # rank 0 says why, in one line


def _stopped(run_dir: Path) -> bool:
    """Whether the run in ``run_dir`` was stopped before its end (and can be resumed)."""
    from namestudio.engine import runfolder as rf
    try:
        return rf.read_status(run_dir).state == rf.STOPPED and rf.resume_dir(run_dir) is not None
    except rf.RunFolderError:
        return False


def _given_argv(given: dict) -> list[str]:
    """The command-line options of only the config fields in ``given`` (as cfg_to_argv writes them)."""
    from namestudio.engine.config import fields, flag_of
    argv: list[str] = []
    for f in fields():
        if f.name not in given:
            continue
        value, flag = given[f.name], flag_of(f)
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + flag[2:])
        else:
            argv += [flag, repr(value) if isinstance(value, float) else str(value)]
    return argv


def _train_rank(args, cfg, resume, ranks) -> int:
    """A rank other than 0 under torchrun: trains its share, says nothing; exits 1 on failure (its error on
    one line, unless rank 0 failed first: rank 0 says why)."""
    from namestudio.engine import distributed as ddp
    from namestudio.engine.events import Failed
    from namestudio.engine.train import Trainer
    trainer = Trainer(cfg, args.checkpoints, None, resume_from=resume, run_dir=args.run_dir)
    if threading_main():
        for s in (signal.SIGINT, signal.SIGTERM):   # a stop asked of any rank reaches every rank
            signal.signal(s, lambda signum, frame: trainer.cancel())
        ddp.die_with_agent()    # as rank 0 (cmd_train): it stops when its agent's process ends
        if HELD_STOPS:
            trainer.cancel()
    if os.environ.get(HANGUP_KEEPS_ON) != "1":
        _hangup(args).then = trainer.cancel
    result = trainer.run()
    if isinstance(result, Failed):
        if trainer.peer_failed:
            return 1
        raise CliError(f"rank {ranks.rank}: {result.message}")
    return 0


def _run_name(run_dir) -> str:
    from namestudio.engine.experiment import run_name
    return run_name(run_dir)


def _control(args, command: str, said: str) -> int:
    from namestudio.engine import experiment as ex
    from namestudio.engine import runfolder as rf
    run, exp = ex.run_or_experiment(args.run, args.checkpoints, prefer_run=True)
    if exp is not None:
        if command != "stop":
            raise CliError(f"{exp.name} is an experiment: {command} its runs one by one "
                           f"(namestudio {command} {exp.name}/RUN), or stop it all (namestudio stop {exp.name})") from None
        asked = ex.stop_experiment(exp)
        whom = "every run" if not asked else f"its {asked} live run{'s' * (asked != 1)} (its compare is gone)"
        print(f"{exp.name}: asked to stop {whom}; {STOP_KEEPS_EACH}; "
              f"`namestudio compare --resume {_where(exp)}` continues it")
        return 0
    name = _run_name(run)           # an experiment's run (EXP/RUN) goes on with its experiment
    hint = f"`namestudio compare --resume {_where(Path(run).parent)}`" if "/" in name else None
    state = rf.send_control(run, command, resume_hint=hint, name=name)
    already = {"pause": "paused", "resume": "running"}.get(command) == state
    if command == "stop":           # what it keeps at this moment, in train's words (runfolder.stop_keeps)
        try:
            said = f"asked to stop: {rf.stop_keeps(run, rf.read_status(run).step, reported=True)}"
        except rf.RunFolderError:
            pass
    print(f"{name}: {said}" + (f" (it was {state} already)" if already else ""))
    return 0


# what a stop keeps, said of a run whose moment is not known here (an experiment's runs, the help)
STOP_KEEPS_EACH = ("each keeps and tests what it trained: its best checkpoint, or its weights before the first "
                   "evaluation; a run not trained yet keeps nothing")


def cmd_stop(args) -> int:
    return _control(args, "stop", "asked to stop (it keeps and tests what it trained)")


def cmd_pause(args) -> int:
    return _control(args, "pause", "asked to pause (`namestudio resume` continues it)")


def cmd_resume(args) -> int:
    return _control(args, "resume", "asked to resume")


def threading_main() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


def cmd_eval(args) -> int:
    from rich.markup import escape

    from namestudio.engine import calibration as cal
    from namestudio.engine.config import model_label
    from namestudio.tui.render import confusion_tables, counted, data_label, headline, per_class_table
    run = _load(args.run, args.checkpoints)
    if args.counts and run.task != "classify":   # nothing to count: the option did nothing, unsaid
        raise CliError(f"--counts is for a classifier's confusion matrix; run {_run_name(run.path)} is a generator")
    if args.exclude_train and not args.data:
        raise CliError("--exclude-train needs --data SRC (the recorded splits never overlap the training split)")
    if args.split and args.data:    # one or the other was meant: the source would be tested, the split ignored
        raise CliError(f"--split {args.split} and --data do not go together: --data tests the run on that source, "
                       "--split on one of its recorded splits")
    args.split = args.split or "test"
    cleaning = None
    if args.data:
        ds = cal.load_source(run, args.data)
        pairs, where, cleaning = list(ds.pairs), ds.source, dict(ds.report)
    else:
        pairs, where = [tuple(p) for p in run.split[args.split]], args.split
    fitted_now = None
    if run.task == "classify":
        calibration = cal.run_calibration(run)  # calibration.json, when it was fitted to these weights
        if not calibration["saved"]:
            why = {"stale": "it was fitted to earlier weights", "none": "the run had none"}.get(
                calibration.get("why"), calibration.get("why") or "the run had none")
            kept = cal.save_calibration(run, calibration)
            fitted_now = (f"calibration fitted now on the validation split ({why}): "
                          + ("saved in calibration.json" if kept is None else f"not saved ({kept})"))
        run.temperature = calibration["temperature"]
    try:
        m = cal.evaluate_pairs(run, pairs, exclude_train=args.exclude_train)
    except cal.EvalDataError as e:
        raise CliError(f"{where}: {e}") from None
    con = _console(args.json)
    live = _live_note(con, run)     # its figures move as it trains (its best weights so far)
    what = model_label(run.config.model, run.config.members)
    trained_on = data_label(run.data_source, run.config.ascii_fold)
    con.print(f"[bold]{escape(_run_name(run.path))}[/] · {run.task} · {escape(what)} · trained on "
              f"{escape(trained_on)} · {escape(str(where))}: {headline(m, run.task)}")
    if m["skipped_unknown"]:
        con.print(f"skipped {counted(m['skipped_unknown'], 'row')} with labels the run does not know: "
                  f"{', '.join(map(str, m['unknown_labels']))}", markup=False)
    if cleaning and cleaning.get("kept", 0) < cleaning.get("lines_read", 0):   # (was: n 4 of 6 lines, unsaid)
        dropped = sum(cleaning.get(k, 0) for k in ("dropped_empty", "dropped_junk", "dropped_malformed"))
        dups = cleaning.get("duplicates_removed", 0)
        con.print(f"the source's {counted(cleaning['lines_read'], 'line')}: "
                  + " and ".join(p for p in (f"{dropped:,} dropped in cleaning (no letter left, junk or malformed)"
                                             if dropped else "", f"{dups:,} duplicate{'s' * (dups != 1)} counted once"
                                             if dups else "") if p)
                  + f"; `namestudio data --data {shlex.quote(args.data)}` lists what cleaning did", markup=False)
    if m.get("unreadable"):          # as the Evaluate pane says it (was: only in --json)
        shown = ", ".join(repr(n) for n in m.get("unreadable_names", []))
        con.print(f"skipped {counted(m['unreadable'], 'row')} whose name has no letter the run knows"
                  + (f" (e.g. {shown})" if shown else ""), markup=False)
    if args.data:
        verb = "excluded" if args.exclude_train else "included (use --exclude-train to skip them)"
        have = "has" if m["in_train"] == 1 else "have"
        if m["in_train"]:
            con.print(f"{_rows(m['in_train'])} {have} a name in the run's training split (under any label): {verb}")
        else:               # (was: "0 rows (name, label) have a name …: included (use --exclude-train to skip them)")
            con.print("no row has a name in the run's training split (under any label)")
        if m.get("in_val"):
            chosen = "checkpoint, n-gram blend and temperature were" if run.task == "classify" else \
                "checkpoint and n-gram mix were"        # a generator has no temperature fitted
            con.print(f"{_rows(m['in_val'])} evaluated {_are(m['in_val'])} in the run's validation split, on "
                      f"which its {chosen} chosen: their figures flatter it")
    blend = m.get("lm_blend")        # as chosen, or left out: chosen for earlier weights (engine/blend.load_blend)
    if blend:
        from namestudio.engine.blend import describe
        con.print(describe(blend), markup=False)
    if fitted_now:
        con.print(fitted_now, markup=False)
    if run.task == "classify":
        con.print(f"calibration: temperature {m['temperature']:.3f} · ECE (15 bins) {m['ece_before']:.4f} before, "
                  f"{m['ece_after']:.4f} after · NLL {m['loss']:.4f} before, {m['nll_after']:.4f} after")
        for table in confusion_tables(m["confusion"], run.labels, con.width if con.is_terminal else None,
                                      percent=not args.counts, only_seen=True):   # in parts where it is too wide
            con.print(table)
        con.print(per_class_table(m))
    if args.json:
        _emit_json({"run": _run_name(run.path), "task": run.task, "trained_on": run.data_source,
                    "split": None if args.data else args.split, "data": where if args.data else None,
                    "being_trained": live, **m, **({"cleaning": cleaning} if cleaning else {})})
    return 0


def _rows(n: int) -> str:
    """"14,400 rows (name, label)": what eval --data counts (a name under two labels is two rows)."""
    from namestudio.tui.render import counted
    return f"{counted(n, 'row')} (name, label)"


def _are(n: int) -> str:
    return "is" if n == 1 else "are"


def cmd_classify(args) -> int:
    from rich.markup import escape

    from namestudio.tui.render import probability_table
    run = _load(args.run, args.checkpoints)
    if args.top < 1:
        raise CliError("--top must be at least 1")
    results = run.classify_each(args.names, args.top)
    failed = [r for r in results if r.error]
    con = _console(args.json)
    _live_note(con, run)
    if len(results) > 1 or not failed:
        for r in results:
            # a name with a newline, tab or other control character is shown quoted: printed raw, 'Bob\nSmith' read
            # as two lines, "Bob" a name with no answer
            plain = r.name.strip() and r.name.isprintable()
            shown = escape(r.name if len(r.name) <= 64 else r.name[:64] + "…") if plain else escape(repr(r.name))
            if r.error:
                con.print(f"[bold]{shown}[/] [red]✗ {escape(r.error)}[/]")
                continue
            read_as = f"  [dim](read as {escape(r.reading.text)})[/]" if r.reading.text != r.reading.name[:64] \
                or not plain else ""
            con.print(f"[bold]{shown}[/]{read_as}")
            for note in r.notes():
                con.print(f"  [yellow]note:[/] {escape(note)}")
            con.print(probability_table(r.top))
    if args.json:
        _emit_json({"run": _run_name(run.path), "results": [r.as_dict() for r in results],
                    "failed": len(failed)})
    if len(failed) == len(results):
        raise CliError(failed[0].error if len(failed) == 1 else f"none of the {len(failed)} names could be classified")
    return 0


def cmd_sample(args) -> int:
    from rich.markup import escape

    from namestudio.engine.config import TABLE_TEMPERATURES
    from namestudio.engine.infer import (agreement_cell, agreement_words, check_sampling, classifier_agreement,
                                         judged, kind_of, novelty, sample_quality, write_lines)
    from namestudio.tui.render import counted
    if args.seed is not None and not 0 <= args.seed <= 2 ** 63 - 1:   # as train's --seed
        raise CliError(f"--seed must be {'≥ 0' if args.seed < 0 else f'≤ {2**63 - 1:,}'} (got {args.seed})")  # as train's
    if args.table and args.temperature is not None:   # said, not silently ignored
        raise CliError("--table samples at --temperatures T1,T2,... (default "
                       f"{','.join(map(str, TABLE_TEMPERATURES))}), not --temperature")
    if not args.table and args.temperatures is not None:
        raise CliError("--temperatures goes with --table; one sampling takes --temperature T")
    if args.table and args.temperatures is None:
        args.temperatures = ",".join(map(str, TABLE_TEMPERATURES))
    if args.temperature is None:
        args.temperature = 0.8
    run = _load(args.run, args.checkpoints)
    clf = _load(args.classifier, args.checkpoints) if args.classifier else None
    if clf is not None and clf.task != "classify":
        raise CliError(f"--classifier {args.classifier}: that is a {clf.task} run, not a classifier")
    if args.lang is not None:
        run.label_id(args.lang)  # unknown language: one-line error before any work
    con = _console(args.json)
    _live_note(con, run)
    starts = ([("--start-letters", c) for c in args.start_letters if not c.isspace()] if args.start_letters
              else [("--start", args.start)] if args.start else [])
    if starts and run.task != "generate":   # that error first, not notes on its letters
        raise CliError(f"run {run.path.name} is a {run.task} run; sample needs a generate run")
    from namestudio.engine.batches import MAX_LEN
    if starts and 1 <= args.max_len <= MAX_LEN:    # a start that sampling refuses: that error, not notes on it first
        run.check_start(args.start or "", args.start_letters, args.max_len)
    for flag, text in starts:     # how each prefix was read: characters the run never saw, as what
        for note in run.read_start(text, f"start {kind_of(text)}" if flag == "--start-letters" else "start")[1]:
            con.print(f"[yellow]note:[/] {flag} {escape(repr(text))}: {escape(note)}")
    if args.table:
        if args.out:
            raise CliError("--out writes samples; it does not go with --table")
        try:
            temps = [float(t) for t in args.temperatures.split(",") if t.strip()]
        except ValueError:
            raise CliError(f"--temperatures {args.temperatures!r}: give numbers separated by commas, "
                           "e.g. 0.5,0.8,1.0") from None
        if not temps:
            raise CliError("--temperatures: give at least one temperature")
        if len(set(temps)) != len(temps):     # the same row sampled twice (refused as --set refuses it)
            raise CliError(f"--temperatures {args.temperatures!r}: a temperature is listed twice")
        n = args.n if args.n is not None else 200
        for t in temps:
            check_sampling(t, args.top_k, n, args.max_len)
        with _sampling_progress(n * len(temps) * max(1, len(starts)), args.json) as progress:
            rows = sample_quality(run, temps, n=n, classifier=clf, seed=args.seed if args.seed is not None else 0,
                                  lang=args.lang, start=args.start or "", start_letters=args.start_letters,
                                  top_k=args.top_k, max_len=args.max_len, progress=progress)
        from rich.table import Table
        count = rows[0]["n"] if rows else n          # with --start-letters, n for each letter
        per = (f" ({n} for each start {kind_of(''.join(args.start_letters.split()))})"
               if args.start_letters and count != n else "")
        t = Table(title=f"{escape(_run_name(run.path))}: {counted(count, 'sample')} per temperature{per}",
                  header_style="bold", title_justify="left")
        for c in ("temperature", "new", "unique") + (("classifier agrees",) if clf is not None else ()):
            t.add_column(c, justify="right")
        pct = lambda v: "–" if v is None else f"{100 * v:.0f}%"
        for r in rows:
            t.add_row(f"{r['temperature']:g}", pct(r["novelty"]), pct(r["uniqueness"]),
                      *((agreement_cell(r["agreement"], r["judged"], r["n"]),) if clf is not None else ()))
        con.print(t)
        con.print("new: not in the training data, not a repeat, more than the prefix · unique: distinct names"
                  + (" · classifier agrees: assigns the sampled language" if clf is not None else ""))
        if args.json:
            _emit_json({"run": _run_name(run.path), "classifier": _run_name(clf.path) if clf is not None else None,
                        "table": rows})
        return 0
    n = args.n if args.n is not None else (1 if args.start_letters else 10)
    with _sampling_progress(n * max(1, len(starts)), args.json) as progress:
        samples = run.sample(lang=args.lang, start=args.start or "", n=n, temperature=args.temperature,
                             top_k=args.top_k, max_len=args.max_len, seed=args.seed, start_letters=args.start_letters,
                             progress=progress)
    agree = classifier_agreement(samples, clf) if clf is not None else None
    out = write_lines(args.out, [s["name"] for s in samples]) if args.out else None
    width = max([len(s["name"]) for s in samples] + [8])
    for s in samples:
        if s["new"]:
            tag = "[green]new[/]"
        elif s["in_training"]:
            tag = "[dim]in training set[/]"
        elif s["repeat"]:
            tag = "[dim]repeat[/]"
        else:
            tag = "[dim]only the prefix[/]"
        extra = ""
        if s.get("agrees") is not None or "classifier" in s:
            mark = {True: "✓", False: "✗", None: "?"}[s.get("agrees")]
            extra = f"  classifier: {escape(s.get('classifier') or '–')} {mark}"
        con.print(f"{escape(s['name'] or '∅'):<{width}} {escape(s['lang']):<12} {tag}{extra}")
    nov = novelty(samples)
    con.print(f"{100 * nov['new_fraction']:.0f}% new · {100 * nov['unique_fraction']:.0f}% unique "
              f"({len({s['name'] for s in samples})} distinct of {len(samples)})"
              + (f" · {agreement_words(agree, judged(samples), len(samples))}" if clf is not None else ""))
    cut = sum(1 for s in samples if s.get("cut"))
    if cut:
        from namestudio.engine.batches import MAX_LEN
        them = "it" if cut == 1 else "them"
        higher = f"a higher --max-len lets {them} end" if args.max_len < MAX_LEN else \
            f"{MAX_LEN} is the highest --max-len"
        con.print(f"[yellow]note:[/] {cut} of {counted(len(samples), 'name')} reached --max-len {args.max_len} before "
                  f"the model ended {them}: cut there ({higher})")
    if out is not None:
        con.print(f"wrote {counted(len(samples), 'name')} to {out}", markup=False)
    if args.json:
        _emit_json({"run": _run_name(run.path), "samples": samples, "new_fraction": nov["new_fraction"],
                    "unique_fraction": nov["unique_fraction"], "classifier_agreement": agree,
                    "classifier_judged": judged(samples) if clf is not None else None, "out": str(out) if out is not None else None})
    return 0


def cmd_runs(args) -> int:
    from namestudio.engine.experiment import list_all_runs
    from namestudio.tui.render import runs_table, runs_tsv
    root = Path(args.checkpoints)
    if root.exists() and not root.is_dir():
        raise UsageError(f"--checkpoints {args.checkpoints}: is a file, not a folder of runs")
    rows = list_all_runs(root)              # experiments' runs too, as EXP/RUN
    if args.json:
        _emit_json({"checkpoints": args.checkpoints, "runs": rows})
        return 0
    con = _console()
    if not rows:
        from namestudio.engine import runfolder as rf
        from namestudio.engine.experiment import is_experiment
        what = "a run folder" if rf._is_run(root) else "an experiment's folder" if is_experiment(root) else None
        why = ("" if root.is_dir() else " (no such folder yet)") if what is None else \
            f": it is {what} itself; `namestudio runs --checkpoints {_where(root.absolute().parent)}` lists it"
        con.print(f"no runs under {args.checkpoints}{why}", markup=False)
        return 0
    if not con.is_terminal:          # piped: whole tab-separated lines for cut, awk, grep
        sys.stdout.write("".join(line + "\n" for line in runs_tsv(rows)))
        return 0
    from rich.markup import escape
    con.print(runs_table(rows, con.width, title=f"Runs in {escape(args.checkpoints)}"))
    return 0


def cmd_bench(args) -> int:
    from namestudio.tui.bench import run_bench
    return run_bench(args)


def _names(text: str | None) -> list[str]:
    from namestudio.engine.experiment import DEFAULT_NAMES
    if text is None:
        return list(DEFAULT_NAMES)
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:                        # ",,," was the default names, silently
        raise CliError(f"--names {text!r}: give names separated by commas, e.g. Dovesky,Jackson")
    return names


def check_nice(nice) -> None:
    """--nice lowers the priority: 0 to 19 (a negative value would raise it, as root)."""
    if nice is not None and not 0 <= nice <= 19:
        raise CliError(f"--nice must be between 0 and 19 (how much lower the priority is), not {nice}")


def cmd_compare(args) -> int:
    import time

    from rich.markup import escape

    from namestudio.engine import experiment as ex
    from namestudio.engine import runfolder as rf
    from namestudio.engine.config import TrainConfig, given_options
    from namestudio.tui.render import counted

    options = given_options(args)
    if args.parallel is not None and args.parallel < 1:
        raise CliError("--parallel must be at least 1")
    check_nice(args.nice)
    _names(args.names)        # a bad --names is said now, not once every run has trained
    if args.report:       # a report folder that cannot be written is said now, not after every run has trained
        from namestudio.engine.report import check_out
        check_out(args.report, keep=[Path(args.checkpoints)])   # the experiment's folder will be made in there
    if args.resume:
        asked = sorted(k for k in options if k != "recipe") + (["models"] if args.models else []) + \
            (["set"] if args.grid else [])
        if asked:
            raise CliError(f"--resume continues an experiment with its own settings; drop --{asked[0].replace('_', '-')} "
                           "(only --parallel, --nice, --report and --names may be given beside it)")
        exp = ex.resolve_experiment(args.resume, args.checkpoints)
    else:
        if "model" in options:
            raise CliError("compare takes --models M1,M2 (a list), not --model")
        models = ex.parse_models(args.models)
        grid = ex.parse_grid(args.grid)
        both = [k for k in grid if k in options]
        if both:               # one would be dropped without a word (--set hidden=64 --hidden 128 trained 64)
            key = both[0].replace("_", "-")
            raise CliError(f"--{key} and --set {key}=… are both given; list every value in --set ({key}=V1,V2) "
                           f"or give --{key} alone")
        runs = ex.plan_runs(options, models, grid)
        first = TrainConfig.from_dict(runs[0]["config"])
        # the data read and split now, as train would (and cached for the runs): a bad source, or one too small
        # to split, is one line, not an experiment folder full of failed runs
        source = ex.check_data(runs)      # recorded resolved: every run, and every resume, reads the same data
        parallel = args.parallel or ex.default_parallel(first, len(runs))
        exp = ex.new_experiment(args.checkpoints, options, models, grid, parallel, source=source)
    doc = ex.read_experiment(exp)
    parallel = args.parallel or doc.get("parallel") or 1
    con = _hangup(args).watch(_console(args.json, keep_going=True))
    con.print(f"[bold]experiment[/] {escape(str(exp))} · {doc['task']} · {counted(len(doc['runs']), 'run')} · "
              f"{parallel} at a time")

    progress, tasks, said = None, {}, {}
    if con.is_terminal:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        progress = Progress(TextColumn("{task.description:<24}", style="bold", markup=False), BarColumn(),
                            MofNCompleteColumn(), TextColumn("{task.fields[state]:<9}", markup=False),
                            TextColumn("{task.fields[metric]}", markup=False),
                            TimeElapsedColumn(), console=con)
    metric_name = "val acc" if doc["task"] == "classify" else "val nll"

    def on_update(views):
        for v in views:
            metric = f"{metric_name} {v.metric:.3f}" if v.metric is not None else ""
            if progress is not None:
                if v.label not in tasks:
                    tasks[v.label] = progress.add_task(v.label, total=v.total_steps or None, state=v.state, metric=metric)
                progress.update(tasks[v.label], completed=v.step, total=v.total_steps or None, state=v.state,
                                metric=metric)
            if said.get(v.label) != v.state and v.state != "pending":
                said[v.label] = v.state
                line = f"{v.label}: {v.state}" + (f" · {metric}" if metric and v.state != "running" else "") + \
                    (f" · {v.error}" if v.error else "")
                (progress.console if progress is not None else con).print(line, markup=False)

    ctl = ex.Controller(exp, parallel=parallel, nice=args.nice, on_update=on_update)
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.getsignal(s) for s in handled}

    def on_signal(signum, frame):  # first: every run stops cleanly; second: at once, untested; third: killed
        if not ctl.stopping:
            try:       # the signal may land inside a print of the main thread ("reentrant call"), as train's may
                con.print(f"stopping: {ctl.stop_keeps()}", style="yellow", markup=False)
            except (RuntimeError, OSError):
                pass
        ctl.stop()

    if threading_main():
        for s in handled:
            signal.signal(s, on_signal)
    _hangup(args).to(exp / ex.COMPARE_LOG)            # a hangup: the experiment goes on, its output there
    t0 = time.perf_counter()
    try:
        if progress is not None:
            progress.start()
        doc = ctl.run()
    finally:
        if progress is not None:
            progress.stop()
        if threading_main():
            for s in handled:
                signal.signal(s, previous[s])
    wall = time.perf_counter() - t0

    rows = ex.results_rows([(r["dir"], exp / r["dir"]) for r in doc["runs"]])
    from rich.table import Table
    from rich.text import Text
    from rich import box
    t = Table(title=f"{escape(exp.name)} · {wall:.1f} s wall", header_style="bold", title_justify="left",
              box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))   # as `runs` draws it
    cols = ["run", "state", "params", "train s", "names/s"] + (["test acc", "bal acc", "macro-F1"]
                                                               if doc["task"] == "classify" else ["test NLL"])
    longest = max((len(str(r["label"])) for r in rows), default=3)
    for c in cols:   # run names are never cut (rnn-hidden=32 and rnn-hidden=64 both read "rnn-hid…"), nor headers
        t.add_column(c, justify="left" if c in ("run", "state") else "right", no_wrap=c != "state",
                     min_width=longest if c == "run" else len(c))
    f = lambda v, fmt=".3f": "–" if v is None else format(v, fmt)
    states = {r["dir"]: r["state"] for r in doc["runs"]}
    for r in rows:   # a stopped run's figures are those of the weights it had: its state says so
        tail = [f(r["test_accuracy"]), f(r["test_balanced_accuracy"]), f(r["test_macro_f1"])] \
            if doc["task"] == "classify" else [f(r["test_nll"])]
        state = rf.stopped_word(states.get(r["label"], ""))
        if state == rf.STOPPED:     # "stopped, untested" / "stopped, untrained", as `runs` says it
            try:
                state = rf.state_words(state, rf.read_test(exp / r["label"]).get("untested"))
            except rf.RunFolderError:
                pass
        t.add_row(Text(str(r["label"])), Text(state), f(r["params"], ","),
                  f(r["train_seconds"], ".1f"), f(r["names_per_s"], ",.0f"), *tail)
    from rich.measure import Measurement
    need = Measurement.get(con, con.options.update_width(10_000), t).minimum
    width = con.width
    if need > width:      # a grid's long run names: Rich dropped whole columns (state, bal acc, macro-F1) to fit
        con.width = need  # the width; wider lines, every column
    try:
        con.print(t)
    finally:
        con.width = width
    report = None
    if args.report and doc["state"] in ("done", "failed") and any(r["state"] == "done" for r in doc["runs"]):
        from namestudio.engine.report import write_report
        rep = write_report([str(exp)], args.report, args.checkpoints, names=_names(args.names))
        for note in rep.notes:
            con.print(note, style="yellow", markup=False)
        con.print(f"report: {rep.path / 'report.md'}", markup=False)
        report = rep.path
    elif args.report:
        con.print(f"[yellow]no report: the experiment is {doc['state']}[/]")
    if args.json:
        _emit_json(ex.compare_json(exp, report))
    if doc["state"] == rf.STOPPED:
        con.print(f"{rf.STOPPED}: `namestudio compare --resume {_where(exp)}` continues it", markup=False)
        return 130
    failed = [r for r in doc["runs"] if r["state"] == "failed"]
    if failed:
        raise CliError(f"{len(failed)} of {len(doc['runs'])} runs failed; {failed[0]['dir']}: {failed[0]['error']}")
    return 0


def cmd_report(args) -> int:
    from namestudio.engine.report import write_report
    con = _console(args.json)
    rep = write_report(args.items, args.out, args.checkpoints, names=_names(args.names),
                       start_letters=args.start_letters, temperature=args.temperature)
    for note in rep.notes:
        con.print(note, style="yellow", markup=False)
    con.print(f"report: {rep.path / 'report.md'} ({len(rep.files)} files)", markup=False)
    if args.json:
        _emit_json({"report": str(rep.path), "files": rep.files, "notes": rep.notes})
    return 0


def cmd_export(args) -> int:
    from namestudio.engine import runfolder as rf
    from namestudio.engine.experiment import collect_runs, is_experiment, run_name
    from namestudio.engine.export import _have_tensorboard, export_tensorboard
    from namestudio.tui.render import counted
    con = _console(args.json)
    runs, _ = collect_runs(args.items, args.checkpoints)
    how = "torch.utils.tensorboard" if _have_tensorboard() else "namestudio's own writer (no tensorboard package)"
    # an experiment's run as EXP/RUN (two experiments' rnn stay apart); two runs of their own with one name, by
    # their folders' names as collect_runs labels them (a/run1, b/run1): one folder each, never one over the other
    names = [run_name(d) if is_experiment(d.parent) else label for label, d in runs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise CliError(f"two runs would be exported as {twice[0]!r} (their folders have the same name too): "
                       "export them one at a time, into different --tensorboard folders")
    def logged(d) -> bool:     # a step or an evaluation to export (a run stopped before any training has none)
        return any((d / f).is_file() and (d / f).stat().st_size for f in (rf.STEPS, rf.METRICS))

    empty = [(name, d) for name, (_, d) in zip(names, runs) if not logged(d)]
    if empty and len(empty) == len(runs):   # (was: an event file with no curve, and "1 run exported")
        raise CliError(f"nothing to export: run {empty[0][0]} has logged no step"
                       + (f" (nor have the {len(empty) - 1} others)" if len(empty) > 1 else "")
                       + (f": it was {rf.UNTRAINED}" if rf.read_test(empty[0][1]).get("untested") == rf.UNTRAINED
                          else ""))
    left_out = [{"run": name, "why": "it has logged no step"
                 + (f" (it was {rf.UNTRAINED})" if rf.read_test(d).get("untested") == rf.UNTRAINED else "")}
                for name, d in empty]
    for item in left_out:
        con.print(f"left out {item['run']}: {item['why']}", markup=False)
    files, failed = [], []
    for name, (_, d) in zip(names, runs):     # one run that cannot be written stops none of the others, and every
        if (name, d) in empty:                # file written is said (it stopped at the first, its files unsaid)
            continue
        try:
            files.append(export_tensorboard(d, args.tensorboard, name=name))
        except (NamestudioError, OSError) as e:
            failed.append({"run": name, "why": rf._first_line(e)})
    for path in files:
        con.print(f"wrote {path}", markup=False)
    for item in failed:
        print(f"namestudio: error: {item['run']}: {item['why']}", file=sys.stderr)
    con.print(f"{counted(len(files), 'run')} exported with {how}; view: tensorboard --logdir {args.tensorboard}", markup=False)
    if args.json:
        _emit_json({"tensorboard": str(args.tensorboard), "files": [str(p) for p in files],
                    "left_out": left_out + failed})
    return 1 if failed else 0


# ---- entry --------------------------------------------------------------------------
EMPTY_REFUSED = [("checkpoints", "--checkpoints (or NAMESTUDIO_CHECKPOINTS)"), ("data", "--data"), ("out", "--out"),
                 ("tensorboard", "--tensorboard"), ("report", "--report"), ("run_dir", "--run-dir"),
                 ("names", "--names"), ("resume", "--resume"), ("url", "--url")]
EMPTY_WHAT = {"checkpoints": "a folder", "data": "a data source", "out": "a path", "tensorboard": "a folder",
              "url": "an address (leave --url out for the PyTorch one)",
              "report": "a folder", "run_dir": "a folder", "names": "names separated by commas",
              "resume": "the run or experiment to continue"}   # (was: "" read as no --resume: new work began)


def _own_stop_policy() -> tuple:
    """The commands that decide for themselves what SIGTERM and SIGHUP do; every other one ends as on Ctrl-C
    (ends_as_ctrl_c). train and compare stop their runs cleanly on SIGTERM and go on after a hangup (Hangup);
    the TUI's runs outlive it by design, and Textual owns its terminal."""
    return (cmd_train, cmd_compare, cmd_tui)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv = ["tui", *argv]  # `namestudio [--data SRC] [--checkpoints DIR]` opens the TUI
    parser = build_parser()
    parser.argv = argv
    args = parser.parse_args(argv)
    args.hangup = Hangup() if args.func in (cmd_train, cmd_compare) else None   # long work outlives its terminal
    try:
        if args.func is not cmd_train:
            _release_held_stops()
        for dest, option in EMPTY_REFUSED:   # "" is never meant: it would read or write the current folder
            value = getattr(args, dest, None)
            if isinstance(value, str) and not value.strip():
                raise UsageError(f"{option}: give {EMPTY_WHAT.get(dest, 'a value')} (it was empty)")
        for dest, option in (("checkpoints", "--checkpoints"), ("run_dir", "--run-dir")):
            value = getattr(args, dest, None)     # where runs are written or listed (not where a RUN path is): the
            #                                       TUI lists and writes them too, so it is refused before it starts
            if value is None or args.func not in (cmd_train, cmd_compare, cmd_runs, cmd_tui):
                continue
            from namestudio.engine.runfolder import too_long
            if why := too_long(value):     # (was: the whole path, hundreds of characters, ": File name too long")
                raise UsageError(f"{option} {why}; give a shorter one")
            if Path(value).exists() and not Path(value).is_dir():
                raise UsageError(f"{option} {value} is a file, not a folder"
                               + (" (the default; --checkpoints DIR chooses another)"
                                  if dest == "checkpoints" and not _given(argv, option) else ""))
        for dest, option in (("data", "--data"), ("out", "--out"), ("report", "--report"),
                             ("tensorboard", "--tensorboard")):   # read or written by any command that takes it
            value = getattr(args, dest, None)
            if isinstance(value, str):
                from namestudio.engine.runfolder import too_long
                if why := too_long(value):  # (was: the whole path, then ": File name too long", exit 1)
                    raise UsageError(f"{option} {why}; give a shorter one")
        if args.func in _own_stop_policy():
            return args.func(args) or 0
        with ends_as_ctrl_c():
            return args.func(args) or 0
    except Terminated as e:
        e.say()
        return e.exit_code
    except KeyboardInterrupt:
        _say_interrupted()
        return 130
    except BrokenPipeError:
        try:
            _reader_went_away()
        except SystemExit as e:
            return e.code
    except NamestudioError as e:  # every user-facing error is one line
        if os.environ.get("NAMESTUDIO_DEBUG"):
            raise
        print(f"namestudio: error: {_one_line(e)}", file=sys.stderr)
        return getattr(e, "exit_code", 1)
    except OSError as e:  # the disk or the system said no: name the file and the reason in words
        if os.environ.get("NAMESTUDIO_DEBUG"):
            raise
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        print(f"namestudio: error: {where}{e.strerror or _one_line(e)}", file=sys.stderr)
        return 1
    except Exception as e:  # a bug: still one line, with its type; NAMESTUDIO_DEBUG=1 shows the traceback
        if os.environ.get("NAMESTUDIO_DEBUG"):
            raise
        print(f"namestudio: error: {type(e).__name__}: {_one_line(e)} (a bug: please report it; "
              f"NAMESTUDIO_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1
    finally:
        if args.hangup is not None:
            args.hangup.restore()


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def end(code: int):
    """Leave the process with main's exit code. A torchrun rank (torch imported and torchrun's environment)
    leaves without the interpreter's finalisation (engine.distributed.exit_rank); anything else, as usual."""
    if "torch" in sys.modules:      # never imports torch for the TUI or a light command
        from namestudio.engine import distributed as ddp
        if ddp.in_torchrun():
            ddp.exit_rank(code)
    sys.exit(code)


def run_command() -> None:
    """`python -m namestudio[.tui.cli] ...`: main, and a Ctrl-C that lands outside it (reading the command line)
    said in one line too."""
    try:
        code = main()
    except KeyboardInterrupt:
        _say_interrupted()
        code = 130
    end(code)


if __name__ == "__main__":
    run_command()
