"""Many training processes with torch.distributed: the ranks, their launcher, and what they say to each other.

`namestudio train --nproc N` starts N ranks through torchrun's elastic agent (torch.distributed.run, in this
process: the same as `torchrun --nproc-per-node N -m namestudio train ...`). Every rank runs the same
Trainer; DistributedDataParallel averages the gradients (gloo on CPU, NCCL on CUDA). What the ranks agree on:

- the plan: rank 0 alone reads the data (or the run it resumes) and sends the split, vocabulary, labels,
  config and resume point to every other rank, so no other rank needs the data or the run folder
  (nodes without a shared disk work);
- one control flag per step (go / pause / stop / early stop), all-reduced with MAX: rank 0 reads
  control.json, any rank's SIGTERM or Ctrl-C counts, and rank 0 alone evaluates and decides on early stops;
  beside it, rank 0's mark that a timed resume point is due, so every rank takes part in its save;
- the logged loss, summed over the ranks at logging points only;
- each rank's own part of a resume point (its random generators, its open loss windows), gathered to rank 0
  when one is saved: at each evaluation, at a timed save and at the end, steps every rank reaches together.

Each global batch (the same seeded, length-bucketed epoch order as one process) is split between the ranks,
each rank's loss weighted by its share of the batch, so a step is the same step as in one process: the
metrics match one process, and a run saved with N ranks resumes with any other N. Resumed with the same N, each
rank takes back its own generators and loss windows: the run goes on exactly as if never stopped. With another
N, every rank takes rank 0's generators (a rank's dropout masks then differ from the run not stopped).
"""
from __future__ import annotations

import datetime
import os
import signal
from dataclasses import dataclass

import torch
import torch.distributed as dist

from namestudio.data.errors import NamestudioError

# the control flag of one step; the largest wins across ranks
GO, PAUSE, EARLY_STOP, STOP = 0, 1, 2, 3

CLI_MODULE = "namestudio.tui.cli"
# torchrun's rendezvous options that `namestudio train` passes through (dest -> flag)
RDZV_FLAGS = {"nnodes": "--nnodes", "node_rank": "--node-rank", "master_addr": "--master-addr",
              "master_port": "--master-port", "rdzv_backend": "--rdzv-backend", "rdzv_endpoint": "--rdzv-endpoint",
              "rdzv_id": "--rdzv-id", "rdzv_conf": "--rdzv-conf"}
SHUTDOWN_TIMEOUT_S = 300   # after a stop signal, how long the agent lets the ranks finish (test the best weights)


class DistributedError(NamestudioError):
    """A bad --nproc or rendezvous option, or a failed rank; one line."""


@dataclass
class Ranks:
    """Where this process stands among the ranks (torchrun's environment; one process: rank 0 of 1)."""
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, env=None) -> "Ranks":
        env = os.environ if env is None else env
        try:
            world = int(env.get("WORLD_SIZE", "1"))
            return cls(rank=int(env.get("RANK", "0")), world=world, local_rank=int(env.get("LOCAL_RANK", "0")),
                       local_world=int(env.get("LOCAL_WORLD_SIZE", str(world))))
        except ValueError:
            raise DistributedError("RANK, WORLD_SIZE or LOCAL_RANK in the environment is not a number") from None


def in_torchrun(env=None) -> bool:
    env = os.environ if env is None else env
    return "TORCHELASTIC_RUN_ID" in env or ("RANK" in env and "WORLD_SIZE" in env and "MASTER_ADDR" in env)


AGENT_PID = "NAMESTUDIO_AGENT_PID"   # set by `train --nproc` for its ranks: the pid of the process that runs the agent


def die_with_agent() -> None:
    """A rank started by an elastic agent (torchrun, `train --nproc`) gets SIGTERM (a clean stop: the best
    weights kept and tested) when the agent's process ends, even by kill -9. torch starts each rank in a
    session of its own, so neither the terminal nor a kill of the agent reached them: they trained on as
    orphans. Linux only (prctl); elsewhere, and outside an agent, nothing changes. Call it once the SIGTERM
    handler is in place."""
    import sys
    if "TORCHELASTIC_RUN_ID" not in os.environ or not sys.platform.startswith("linux"):
        return
    agent = os.environ.get(AGENT_PID, "")
    try:
        import ctypes
        parent = int(agent) if agent.isdigit() else os.getppid()   # `train --nproc` says which process it is
        if ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0) != 0:   # 1: PR_SET_PDEATHSIG
            return
    except (OSError, AttributeError, ValueError):
        return
    if os.getppid() != parent:      # the agent was gone before the line above (pid 1 is no sign: in a container
        os.kill(os.getpid(), signal.SIGTERM)   # the agent itself may be pid 1)
    import threading
    threading.Thread(target=_outlive_agent, args=(parent,), name="namestudio-agent-watch", daemon=True).start()


ORPHAN_GRACE_S = SHUTDOWN_TIMEOUT_S   # how long a rank whose agent ended may take to stop cleanly before it leaves


def _outlive_agent(parent: int, poll_s: float = 1.0) -> None:
    """The last resort of die_with_agent, in a thread: once the agent's process is gone, SIGTERM again (a stop
    asked twice is one stop), and a rank still alive ORPHAN_GRACE_S later (stuck, say, in a collective with
    a rank that is gone) leaves at once, as the agent would have ended it after its own shutdown timeout."""
    import sys
    import time
    while os.getppid() == parent:
        time.sleep(poll_s)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(ORPHAN_GRACE_S)
    try:
        sys.stderr.write(f"namestudio: rank {os.environ.get('RANK', '?')}: its launcher ended "
                         f"{ORPHAN_GRACE_S} s ago and it had not stopped; it leaves now\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(STOPPED_EXIT)


# ---- the process group --------------------------------------------------------------------------
class StoppedBeforeStart(KeyboardInterrupt):
    """A stop (Ctrl-C, SIGTERM) asked of a rank before every rank had joined the process group: the ranks
    leave together, before anything began (no run folder is touched); the command says "interrupted"."""


JOIN = "namestudio/join/"      # the ranks' keys in torchrun's store, before the process group (see _join)
JOIN_POLL_S = 0.05


def init(ranks: Ranks, stop=None) -> None:
    """Join the process group: gloo for CPU tensors, and NCCL for CUDA tensors where CUDA is present (one
    group serves both, so the plan and the control flag travel over gloo whatever device trains).

    With ``stop`` (a callable: whether this rank was asked to stop) and torchrun's store, the ranks first meet
    in ``_join``, where a stop is heard: StoppedBeforeStart then, on every rank. Joining the group itself
    blocks in C++ (no signal handler runs there) until every rank comes, so a rank waiting in it for a rank
    that died as it started (a Ctrl-C while its interpreter started) waited until torchrun killed it."""
    if not ranks.distributed or dist.is_initialized():
        return
    backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(ranks.local_rank % max(1, torch.cuda.device_count()))
    # a long timeout: rank 0 alone evaluates (100k names) while the others wait at the next step
    timeout = datetime.timedelta(minutes=60)
    if stop is not None and os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True":   # the agent's store is up
        store = _join(ranks, stop, timeout)
        dist.init_process_group(backend=backend, timeout=timeout, store=dist.PrefixStore("default_pg", store),
                                rank=ranks.rank, world_size=ranks.world)
    else:
        dist.init_process_group(backend=backend, timeout=timeout)


def join_keys(env=None) -> tuple[str, str]:
    """The store's keys of _join for this launch (torchrun's run id and restart): how many ranks came, and
    what they decided."""
    env = os.environ if env is None else env
    run = f"{JOIN}{env.get('TORCHELASTIC_RUN_ID', '')}/{env.get('TORCHELASTIC_RESTART_COUNT', '0')}/"
    return run + "came", run + "decided"


def _join(ranks: Ranks, stop, timeout: datetime.timedelta):
    """Wait for every rank in torchrun's store, in Python (a signal handler runs between polls), and agree
    with the others, once, whether the ranks go on ("go": every rank came) or stop ("stop": some rank was
    asked to stop first). A compare-and-set decides, so no rank goes on while another leaves. Returns the
    store for the process group; raises StoppedBeforeStart on a stop."""
    import time
    from torch.distributed.rendezvous import rendezvous
    store, _, _ = next(rendezvous("env://", ranks.rank, ranks.world, timeout=timeout))
    store.set_timeout(timeout)
    came, decided = join_keys()
    store.add(came, 1)
    while True:
        if stop():
            verdict = store.compare_set(decided, "", "stop")
        elif store.add(came, 0) >= ranks.world:
            verdict = store.compare_set(decided, "", "go")
        elif store.check([decided]):            # another rank decided (a stop: the ranks never all come)
            verdict = store.get(decided)
        else:
            time.sleep(JOIN_POLL_S)
            continue
        if verdict == b"go":
            return store
        raise StoppedBeforeStart()


def shutdown(wait_for_all: bool = True) -> None:
    """Leave the process group. After a run that ended well here, first wait for every rank: rank 0 still
    scores the test and writes the run's end when the others are done, and a rank that tore its connections
    down while rank 0 still held them open was seen to abort at exit (SIGABRT, "terminate called without an
    active exception", about 1 two-rank run in 10 on CPU/gloo). After a failure, leave at once: the barrier
    could wait for a rank that never comes, and the launcher stops the others when this one exits."""
    if dist.is_initialized():
        if wait_for_all:
            try:
                dist.barrier()
            except RuntimeError:     # a rank that failed has left already (gloo: connection closed)
                pass
        dist.destroy_process_group()


def exit_rank(code: int):
    """End a rank's process with ``code`` once its work is done and its process group left (``shutdown``):
    stdout and stderr flushed, then ``os._exit``, skipping the interpreter's finalisation. In it, torch's C++
    objects of the process group (gloo's threads, still held by the DistributedDataParallel wrapper) were
    destroyed in no set order, and about 1 two-rank run in 20 on CPU aborted there after a run that ended
    well (SIGABRT, "terminate called without an active exception"): the agent then called the run's rank
    dead and `train --nproc` exited 1. Every file of the run is written and closed before this point."""
    import sys
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os._exit(0 if code is None else code if isinstance(code, int) and 0 <= code < 256 else 1)


def share(obj, ranks: Ranks):
    """Rank 0's object on every rank (pickled over gloo)."""
    if not ranks.distributed:
        return obj
    box = [obj if ranks.main else None]
    dist.broadcast_object_list(box, src=0, device=torch.device("cpu"))
    return box[0]


def agree(flag: int, ranks: Ranks, save: bool = False) -> tuple[int, bool]:
    """The largest control flag of all ranks, and whether any rank asks for a resume point at this step (rank 0's
    timer: the save gathers from every rank, so all must know). One tiny all-reduce per step."""
    if not ranks.distributed:
        return flag, save
    t = torch.tensor([flag, int(save)], dtype=torch.int32)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t[0]), bool(t[1])


def gather(obj, ranks: Ranks) -> list | None:
    """Every rank's object, in rank order, on rank 0 (None on the others; pickled over gloo). Every rank must
    call it at the same point. One process: [obj]."""
    if not ranks.distributed:
        return [obj]
    box = [None] * ranks.world if ranks.main else None
    dist.gather_object(obj, box, dst=0)
    return box


def total(values: list[float], ranks: Ranks) -> list[float]:
    """Sums over the ranks (logging points only)."""
    if not ranks.distributed:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def shard(idx: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    """This rank's part of a global batch: every world-th name, starting at its rank. A part can be empty
    (a last batch smaller than the world); the caller weights it 0."""
    return idx[ranks.rank::ranks.world] if ranks.distributed else idx


# ---- the launcher --------------------------------------------------------------------------------
def check_nproc(nproc: int, device: str, cores: int | None = None, gpus: int | None = None) -> str:
    """The device the ranks will train on ('cpu' or 'cuda'), or a one-line DistributedError for a bad --nproc:
    under 1, more ranks than GPUs on a CUDA box (one GPU per rank), or more than the CPU cores otherwise."""
    if nproc < 1:
        raise DistributedError(f"--nproc must be at least 1 (got {nproc})")
    if cores is None:
        cores = os.cpu_count() or 1
    if gpus is None:
        gpus = torch.cuda.device_count() if device in ("auto", "cuda") and torch.cuda.is_available() else 0
    if device == "mps" and nproc > 1:
        raise DistributedError("--nproc above 1 needs CPU or CUDA ranks (torch.distributed has no MPS backend); "
                               "use --device cpu")
    if device == "cuda" and gpus == 0:
        raise DistributedError("--device cuda was asked for but no CUDA device is available here")
    if device in ("auto", "cuda") and gpus:
        if nproc > gpus:
            raise DistributedError(f"--nproc {nproc}: this machine has {gpus} CUDA device{'s' * (gpus != 1)} and "
                                   f"each rank needs its own; use --nproc {gpus}, or --device cpu for CPU ranks")
        return "cuda"
    if nproc > cores:
        raise DistributedError(f"--nproc {nproc}: this machine has {cores} CPU core{'s' * (cores != 1)}; "
                               f"more CPU ranks than cores only slow each other down (use --nproc {cores} or fewer)")
    return "cpu"


def check_rdzv(rdzv: dict) -> None:
    """One-line DistributedError for rendezvous options torchrun would answer with a traceback or ignore:
    --nnodes M or MIN:MAX with 1 <= MIN <= MAX, and --node-rank I in 0..M-1, only beside --nnodes."""
    nnodes, node_rank = rdzv.get("nnodes"), rdzv.get("node_rank")
    top = None
    if nnodes is not None:
        parts = str(nnodes).split(":")
        try:
            lo, hi = int(parts[0]), int(parts[-1])
        except ValueError:
            lo = hi = None
        if len(parts) > 2 or lo is None or not 1 <= lo <= hi:
            raise DistributedError(f"--nnodes {nnodes}: give the number of machines (1 or more), or MIN:MAX")
        top = hi
    if node_rank is not None:
        if top is None:
            raise DistributedError("--node-rank goes with --nnodes: the number of machines taking part")
        if not 0 <= node_rank < top:
            raise DistributedError(f"--node-rank {node_rank}: give this machine's index, 0 to {top - 1}")


def torchrun_args(nproc: int, rdzv: dict, worker_argv: list[str]) -> list[str]:
    """torch.distributed.run's command line: N ranks of `python -m namestudio.tui.cli <worker_argv>`."""
    args = ["--nproc-per-node", str(nproc)]
    for dest, flag in RDZV_FLAGS.items():
        if rdzv.get(dest) is not None:
            args += [flag, str(rdzv[dest])]
    return args + ["--shutdown-timeout", str(SHUTDOWN_TIMEOUT_S), "-m", CLI_MODULE, *worker_argv]


def shown_command(args: list[str]) -> str:
    """The torchrun command a user could type for the same launch."""
    import shlex
    shown = list(args)
    if "-m" in shown:
        shown[shown.index("-m") + 1] = "namestudio"
    if "--shutdown-timeout" in shown:
        i = shown.index("--shutdown-timeout")
        del shown[i:i + 2]
    return "torchrun " + " ".join(shlex.quote(a) for a in shown)


STOPPED_EXIT = 130     # what `train` exits with when stopped before its end, as one process does after a Ctrl-C


def launch(args: list[str], threads: int, quiet: bool = True) -> int:
    """Run torchrun's elastic agent in this process with ``args`` (see torchrun_args) and wait for the ranks.
    Returns 0; STOPPED_EXIT when a Ctrl-C or SIGTERM stopped it (the agent passed it on to the ranks); or 1 when
    a rank failed with its own one-line error (already printed). Raises DistributedError for a rank that died
    otherwise (a signal, a crash) or a rendezvous that failed."""
    import logging

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, parse_args, run

    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, threads)))   # torchrun would set 1 and warn
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    if quiet and not os.environ.get("NAMESTUDIO_DEBUG"):
        logging.getLogger("torch.distributed").setLevel(logging.ERROR)
        for name in [n for n in logging.root.manager.loggerDict if n.startswith("torch.distributed.elastic")] \
                + ["torch.distributed.elastic"]:   # torch gives each module's logger a level of its own (WARNING:
            logging.getLogger(name).setLevel(logging.CRITICAL)   # "Received 2 death signal, shutting down workers")
    try:
        # torch before 2.9 has no --signals-to-handle (its agent then keeps its own list, and SIGINT): asked
        # anyway, every `train --nproc` failed there with "bad torchrun options"
        knows = "--signals-to-handle" in get_args_parser().format_help()
        parsed = parse_args((["--signals-to-handle", AGENT_SIGNALS] if knows else []) + list(args))
    except SystemExit:
        raise DistributedError("bad torchrun options: " + " ".join(args[:args.index("-m")])) from None
    import threading
    here = threading.current_thread() is threading.main_thread()    # signals are the main thread's
    previous = signal.getsignal(signal.SIGINT) if here else None
    if here:
        signal.signal(signal.SIGINT, _ctrl_c_to_agent)
    try:
        run(parsed)
    except SignalException:   # Ctrl-C or SIGTERM: the agent passed it on; the ranks stopped as asked
        return STOPPED_EXIT
    except ChildFailedError as e:
        codes = {rank: f.exitcode for rank, f in e.failures.items()}
        if codes and all(c == 1 for c in codes.values()):
            return 1   # the rank said why, in one line, before it exited
        rank, code = next(iter(codes.items())) if codes else (None, None)
        why = f"killed by signal {-code}" if isinstance(code, int) and code < 0 else f"exit code {code}"
        raise DistributedError(f"rank {rank} of the run died ({why}); the other ranks were stopped") from None
    except Exception as e:   # rendezvous errors and the like
        if os.environ.get("NAMESTUDIO_DEBUG"):
            raise
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise DistributedError(f"torchrun could not start the ranks: {type(e).__name__}: {first}") from None
    finally:
        if here:
            signal.signal(signal.SIGINT, previous)
    return 0


# the signals torchrun's agent handles itself, passing each on to the ranks: not SIGHUP (the ranks go on after a
# hangup, as one process does), not SIGINT (_ctrl_c_to_agent)
AGENT_SIGNALS = "SIGTERM,SIGQUIT"


def _ctrl_c_to_agent(signum, frame):
    """Ctrl-C of `train --nproc`: the agent stops the ranks with SIGTERM, not the SIGINT it would pass on. A rank
    whose interpreter is still starting (no handler of namestudio's yet) then ends quietly, where SIGINT printed
    a KeyboardInterrupt traceback from inside Python's startup or an import; a rank past that point stops
    the same way for either signal (tui/cli.py)."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    raise SignalException(f"Process {os.getpid()} got signal: {signum}", sigval=signal.SIGTERM)

