"""The `namestudio` command. With no arguments it opens the TUI; subcommands do the same jobs headless.

Heavy modules (torch, textual) are imported inside the commands so that `--help` is instant.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys

DEFAULT_CHECKPOINTS = os.environ.get("NAMESTUDIO_CHECKPOINTS", "checkpoints")
EPILOG = "SRC is a folder of <Label>.txt, a name,label CSV, a one-class .txt, 'pytorch-names' or 'builtin'. " \
         "RUN is a run folder or a run id under the checkpoints folder."


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 1."""


def _add_checkpoints(p):
    p.add_argument("--checkpoints", metavar="DIR", default=DEFAULT_CHECKPOINTS,
                   help=f"folder of run folders (default: {DEFAULT_CHECKPOINTS}; env NAMESTUDIO_CHECKPOINTS)")


def _add_json(p):
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="namestudio", description="Character-level RNN studio for names. "
                                 "Run with no command to open the terminal UI.", epilog=EPILOG)
    ap.add_argument("--version", action="version", version="namestudio 0.1.0")
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
    p.add_argument("--seed", type=int, default=0, help="split seed for the split counts (default 0)")
    p.add_argument("--url", help="download address (default: the PyTorch tutorial archive)")
    _add_json(p)
    p.set_defaults(func=cmd_data)

    from namestudio.engine.config import TrainConfig
    d = TrainConfig()
    p = sub.add_parser("train", help="train a classifier or a generator", epilog=EPILOG)
    p.add_argument("--task", choices=["classify", "generate"], default="classify", help="default: classify")
    p.add_argument("--model", choices=["rnn", "lstm", "gru", "mylstm"], default="lstm", help="default: lstm")
    p.add_argument("--data", metavar="SRC", help="data source (default: pytorch-names if on disk, else builtin)")
    p.add_argument("--epochs", type=int, help="default: 14 classify, 15 generate")
    p.add_argument("--batch-size", type=int, help=f"default: {d.batch_size}")
    p.add_argument("--lr", type=float, help=f"AdamW learning rate (default: {d.lr})")
    p.add_argument("--hidden", type=int, help="hidden size (default: 128 classify, 256 generate)")
    p.add_argument("--layers", type=int, help=f"RNN layers (default: {d.layers})")
    p.add_argument("--embed", type=int, help=f"character embedding size; 0 = one-hot (default: {d.embed})")
    p.add_argument("--dropout", type=float, help="default: 0.1 classify, 0.2 generate")
    p.add_argument("--unidirectional", action="store_true", help="classifiers: read names one way only")
    p.add_argument("--schedule", choices=["none", "cosine", "step"], help=f"learning-rate schedule (default: {d.schedule})")
    p.add_argument("--clip", type=float, help=f"gradient-norm clipping, 0 = off (default: {d.clip})")
    p.add_argument("--eval-every", type=int, help="evaluate every N steps (default: once per epoch)")
    p.add_argument("--patience", type=int, help=f"early-stop patience in evaluations, 0 = off (default: {d.patience})")
    p.add_argument("--max-steps", type=int, help="stop after N steps (default: no limit)")
    p.add_argument("--ascii", action="store_true", help="fold names to ASCII letters")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto", help="default: auto")
    p.add_argument("--no-amp", action="store_true", help="no mixed precision on CUDA")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: 1 on 2 cores or fewer, else cores-1 up to 4)")
    p.add_argument("--seed", type=int, help="training seed (default: 0)")
    p.add_argument("--split-seed", type=int, help="data split seed (default: 0)")
    p.add_argument("--resume", metavar="RUN", help="continue a saved run (its config is used; --epochs may raise the total)")
    _add_checkpoints(p)
    _add_json(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="test metrics and the confusion matrix of a run", epilog=EPILOG)
    p.add_argument("run", metavar="RUN")
    p.add_argument("--split", choices=["test", "val"], default="test", help="recorded split to evaluate (default: test)")
    p.add_argument("--counts", action="store_true", help="confusion matrix in counts instead of row percentages")
    _add_checkpoints(p)
    _add_json(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("classify", help="top-k languages for each name", epilog=EPILOG)
    p.add_argument("run", metavar="RUN")
    p.add_argument("names", metavar="NAME", nargs="+")
    p.add_argument("--top", type=int, default=3, metavar="K", help="how many languages to show (default 3)")
    _add_checkpoints(p)
    _add_json(p)
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("sample", help="generate names with a generator run", epilog=EPILOG)
    p.add_argument("run", metavar="RUN")
    p.add_argument("--lang", metavar="L", help="language to generate (default: a random one per sample)")
    p.add_argument("--start", default="", metavar="ABC", help="start letters")
    p.add_argument("-n", type=int, default=10, help="how many names (default 10)")
    p.add_argument("--temperature", type=float, default=0.8, metavar="T", help="default 0.8")
    p.add_argument("--top-k", type=int, default=0, metavar="K", help="sample among the K likeliest letters (default: all)")
    p.add_argument("--max-len", type=int, default=24, help="maximum name length (default 24)")
    p.add_argument("--seed", type=int, help="sampling seed")
    p.add_argument("--classifier", metavar="RUN2", help="a classifier run: report the share of samples it assigns to L")
    _add_checkpoints(p)
    _add_json(p)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("runs", help="list saved runs", epilog=EPILOG)
    _add_checkpoints(p)
    _add_json(p)
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("bench", help="measure speed: namestudio vs the seeds' recipe, mylstm vs nn.LSTM, start-up",
                       epilog=EPILOG)
    p.add_argument("--quick", action="store_true", help="shorter budgets (under 2 minutes on 2 cores)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="cpu", help="default: cpu")
    p.add_argument("--data", metavar="SRC", help="data source (default: pytorch-names if on disk, else builtin)")
    p.add_argument("--skip", default="", help="comma-separated sections to skip: seed,mylstm,startup,tui,gpu")
    _add_json(p)
    p.set_defaults(func=cmd_bench)
    return ap


# ---- helpers ------------------------------------------------------------------------
def _console(json_mode: bool = False):
    from rich.console import Console
    con = Console(stderr=json_mode, highlight=False)
    con.soft_wrap = not con.is_terminal  # piped: whole lines, no wrapping at 80 columns
    return con


def _emit_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, default=_json_default) + "\n")
    sys.stdout.flush()


def _json_default(o):
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)


def _load(run, checkpoints):
    from namestudio.engine.infer import load_run
    return load_run(run, checkpoints)


# ---- commands -----------------------------------------------------------------------
def cmd_tui(args) -> int:
    from namestudio.tui.app import run_app
    return run_app(data=getattr(args, "data", None), checkpoints=getattr(args, "checkpoints", DEFAULT_CHECKPOINTS))


def cmd_data(args) -> int:
    from namestudio import data
    con = _console(args.json)
    if args.action == "download":
        return _download(args, con)
    ds = data.load_dataset(args.data, ascii_fold=args.ascii)
    split = data.split_by_name(ds.pairs, seed=args.seed) if len(ds.pairs) >= 3 else None
    summary = data.summarise(ds, split)
    if args.json:
        _emit_json(summary)
        return 0
    from namestudio.tui.render import summary_tables
    for t in summary_tables(summary):
        con.print(t)
        con.print()
    return 0


def _download(args, con) -> int:
    from namestudio import data
    url = args.url or data.URL
    if con.is_terminal:
        from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn
        with Progress("[bold]download", BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
                      console=con, transient=True) as prog:
            task = prog.add_task("download", total=None)
            path = data.download_pytorch_names(url=url, progress=lambda done, total: prog.update(task, completed=done, total=total))
    else:
        path = data.download_pytorch_names(url=url)
    con.print(f"pytorch-names ready in {path}")
    if args.json:
        _emit_json({"path": str(path), "source": "pytorch-names"})
    return 0


def cmd_train(args) -> int:
    from namestudio.engine import checkpoint as ck
    from namestudio.engine.config import TrainConfig
    from namestudio.engine.events import Done, Eval, Failed, Started, Step
    from namestudio.engine.train import Trainer
    from namestudio.tui.render import headline

    overrides = {k: v for k, v in {
        "task": args.task, "model": args.model, "data": args.data, "epochs": args.epochs, "batch_size": args.batch_size,
        "lr": args.lr, "hidden": args.hidden, "layers": args.layers, "embed": args.embed, "dropout": args.dropout,
        "schedule": args.schedule, "clip": args.clip, "eval_every": args.eval_every, "patience": args.patience,
        "max_steps": args.max_steps, "device": args.device, "threads": args.threads, "seed": args.seed,
        "split_seed": args.split_seed}.items() if v is not None}
    if args.ascii:
        overrides["ascii_fold"] = True
    if args.no_amp:
        overrides["amp"] = False
    if args.unidirectional:
        overrides["bidirectional"] = False
    resume = None
    if args.resume:
        resume = ck.resolve_run(args.resume, args.checkpoints)
        saved = TrainConfig.from_dict(ck.read_json(resume / ck.CONFIG)["train"])
        for k in ("epochs", "device", "threads", "max_steps", "patience"):
            if k in overrides:
                setattr(saved, k, overrides[k])
        if args.no_amp:
            saved.amp = False
        cfg = saved
        if not (resume / ck.STATE).is_file():
            raise CliError(f"run {resume.name} has no saved state to resume from (it never reached an evaluation)")
    else:
        cfg = TrainConfig(**overrides)
    cfg.validate()

    con = _console(args.json)
    progress = None
    if con.is_terminal:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]:>7.0f} names/s"), TextColumn("loss {task.fields[loss]:.3f}"),
                            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=con)
    state = {"task": None}

    def on_event(e):
        if isinstance(e, Started):
            con.print(f"[bold]run[/] {e.run_dir} · {cfg.task} · {cfg.model} · {e.n_train} training names · "
                      f"device {e.device}" + (f" ({e.note})" if e.note else ""))
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
        elif isinstance(e, (Done, Failed)) and progress:
            progress.stop()

    trainer = Trainer(cfg, args.checkpoints, on_event, resume_from=resume)
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum, frame):  # first Ctrl-C: stop cleanly (keeps the best checkpoint); second: abort
        con.print("[yellow]stopping: keeping the best checkpoint (Ctrl-C again to abort)[/]")
        trainer.cancel()
        signal.signal(signal.SIGINT, previous)

    if threading_main():
        signal.signal(signal.SIGINT, on_sigint)
    try:
        result = trainer.run()
    finally:
        if threading_main():
            signal.signal(signal.SIGINT, previous)
    if isinstance(result, Failed):
        raise CliError(result.message + (f" (run folder: {result.run_dir})" if result.run_dir else ""))
    t = result.test_metrics
    con.print(f"[bold]test[/] {headline(t, cfg.task)} · {result.train_seconds:.1f} s · {result.reason}")
    con.print(f"run folder: {result.run_dir}")
    if args.json:
        out = {"run_dir": result.run_dir, "run_id": os.path.basename(result.run_dir), "task": cfg.task,
               "model": cfg.model, "train_seconds": round(result.train_seconds, 3), "reason": result.reason}
        if cfg.task == "classify":
            out.update(test_accuracy=t["accuracy"], test_macro_f1=t["macro_f1"],
                       test_balanced_accuracy=t["balanced_accuracy"], test_loss=t["loss"])
        else:
            out.update(test_nll=t["nll"], test_perplexity=t["perplexity"])
        _emit_json(out)
    return 0


def threading_main() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


def cmd_eval(args) -> int:
    from namestudio.tui.render import confusion_table, headline, per_class_table
    run = _load(args.run, args.checkpoints)
    m = run.evaluate(args.split)
    con = _console(args.json)
    con.print(f"[bold]{run.path.name}[/] · {run.task} · {run.config.model} · {args.split}: {headline(m, run.task)}")
    if run.task == "classify":
        con.print(confusion_table(m["confusion"], run.labels, percent=not args.counts))
        con.print(per_class_table(m))
    if args.json:
        _emit_json({"run": run.path.name, "task": run.task, "split": args.split, **m})
    return 0


def cmd_classify(args) -> int:
    from namestudio.tui.render import probability_table
    run = _load(args.run, args.checkpoints)
    if args.top < 1:
        raise CliError("--top must be at least 1")
    results = run.classify(args.names, args.top)
    con = _console(args.json)
    for name, top in zip(args.names, results):
        con.print(f"[bold]{name.strip()[:64]}[/]")
        con.print(probability_table(top))
    if args.json:
        _emit_json({"run": run.path.name, "results": [
            {"name": n, "top": [{"label": lab, "prob": round(p, 6)} for lab, p in top]} for n, top in zip(args.names, results)]})
    return 0


def cmd_sample(args) -> int:
    run = _load(args.run, args.checkpoints)
    clf = _load(args.classifier, args.checkpoints) if args.classifier else None
    if clf is not None and clf.task != "classify":
        raise CliError(f"--classifier {args.classifier}: that is a {clf.task} run, not a classifier")
    if args.lang is not None:
        run.label_id(args.lang)  # unknown language: one-line error before any work
    samples = run.sample(lang=args.lang, start=args.start, n=args.n, temperature=args.temperature,
                         top_k=args.top_k, max_len=args.max_len, seed=args.seed)
    agree = None
    if clf is not None:
        preds = clf.classify([s["name"] or "?" for s in samples], 1)
        for s, p in zip(samples, preds):
            s["classifier"] = p[0][0]
            s["agrees"] = p[0][0].lower() == s["lang"].lower()
        agree = sum(s["agrees"] for s in samples) / len(samples)
    con = _console(args.json)
    for s in samples:
        tag = "[green]new[/]" if s["new"] else "[dim]in training set[/]"
        extra = ""
        if "agrees" in s:
            extra = f"  classifier: {s['classifier']}" + (" ✓" if s["agrees"] else " ✗")
        con.print(f"{s['name']:<24} {s['lang']:<12} {tag}{extra}")
    new_frac = sum(s["new"] for s in samples) / len(samples)
    con.print(f"{100 * new_frac:.0f}% new" + (f" · classifier agrees on {100 * agree:.0f}%" if agree is not None else ""))
    if args.json:
        _emit_json({"run": run.path.name, "samples": samples, "new_fraction": new_frac, "classifier_agreement": agree})
    return 0


def cmd_runs(args) -> int:
    from namestudio.engine.checkpoint import list_runs
    rows = list_runs(args.checkpoints)
    if args.json:
        _emit_json({"checkpoints": args.checkpoints, "runs": rows})
        return 0
    from rich.table import Table
    con = _console()
    if not rows:
        con.print(f"no runs under {args.checkpoints}")
        return 0
    t = Table(title=f"Runs in {args.checkpoints}", header_style="bold")
    for c in ("run", "task", "model", "params", "time", "best val", "test", "status"):
        t.add_column(c, justify="right" if c in ("params", "time") else "left")
    for r in rows:
        if "error" in r:
            t.add_row(r["run"], "", "", "", "", "", "", r["error"][:40])
            continue
        if r.get("task") == "classify":
            best = f"acc {r['best_val_accuracy']:.3f}" if "best_val_accuracy" in r else ""
            test = f"acc {r['test_accuracy']:.3f} F1 {r['test_macro_f1']:.3f}" if "test_accuracy" in r else ""
        else:
            best = f"nll {r['best_val_nll']:.3f}" if "best_val_nll" in r else ""
            test = f"nll {r['test_nll']:.3f}" if "test_nll" in r else ""
        secs = f"{r['train_seconds']:.0f}s" if r.get("train_seconds") is not None else ""
        t.add_row(r["run"], r.get("task") or "", r.get("model") or "", f"{r.get('params') or 0:,}", secs, best, test,
                  r.get("status", ""))
    con.print(t)
    return 0


def cmd_bench(args) -> int:
    from namestudio.tui.bench import run_bench
    return run_bench(args)


# ---- entry --------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv = ["tui", *argv]  # `namestudio [--data SRC] [--checkpoints DIR]` opens the TUI
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        print("namestudio: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # every known failure is one line; unknown ones too, with their type
        known = type(e).__name__ in ("CliError", "DataError", "CheckpointError", "InferenceError", "DeviceError",
                                     "ValueError", "TrainingError")
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if os.environ.get("NAMESTUDIO_DEBUG"):
            raise
        print(f"namestudio: error: {msg if known else type(e).__name__ + ': ' + msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
