"""Small deterministic fixtures shared by the engine and CLI tests."""
from __future__ import annotations

import random
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SHARED_NAMES = SHARED / "data" / "names"

_SYLLABLES = ["ka", "lo", "mi", "ra", "te", "vi", "no", "sa", "pe", "du", "gi", "ha", "be", "zo"]


def tiny_names(n_per_label: int = 40, seed: int = 0) -> dict[str, list[str]]:
    """Three made-up 'languages' with clear letter patterns, so a model can learn them."""
    rng = random.Random(seed)
    stems = set()
    while len(stems) < 3 * n_per_label:
        stems.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 3))))
    stems = sorted(stems)
    rng.shuffle(stems)
    return {
        "Slavic": [s.capitalize() + "ov" for s in stems[:n_per_label]],
        "Nordic": [s.capitalize() + "sson" for s in stems[n_per_label:2 * n_per_label]],
        "Gaelic": ["Mc" + s.capitalize() for s in stems[2 * n_per_label:]],
    }


def write_names_folder(root: Path, n_per_label: int = 40) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for label, names in tiny_names(n_per_label).items():
        (root / f"{label}.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    return root


def use_copy(trained: Path, tmp_path: Path, monkeypatch) -> None:
    """A test's own copy of trained runs (``names/`` and ``ck/`` under ``trained``), worked in from ``tmp_path``
    with its own user data folder, so that the test may change them."""
    import shutil
    shutil.copytree(trained / "names", tmp_path / "names")
    shutil.copytree(trained / "ck", tmp_path / "ck")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NAMESTUDIO_DATA_DIR", str(tmp_path / "userdata"))


def with_umask(mask: int):
    """A context manager: the process's umask set to ``mask`` inside, restored after (POSIX)."""
    import contextlib
    import os
    import sys

    @contextlib.contextmanager
    def cm():
        old = os.umask(mask)
        fsmode = sys.modules.get("namestudio.data.fsmode")   # where the umask is read once and kept (no /proc)
        kept = getattr(fsmode, "_umask_cache", None)
        if fsmode is not None:
            fsmode._umask_cache = None
        try:
            yield mask
        finally:
            os.umask(old)
            if fsmode is not None:
                fsmode._umask_cache = kept
    return cm()


# Loaded by every Python process started with hold_at()'s environment (a sitecustomize on PYTHONPATH): the one
# chosen is held at a point of its start until the file "release" appears, with a file "held" saying it is
# there. WHAT is "startup" (inside Python's own startup, before any namestudio code) or a module (held as it is
# first imported); RANK is a torchrun rank ("0", "1") or "-" for a process outside torchrun.
_HOLD_HOOK = """
import os, sys, time
what, _, rank = os.environ.get("NS_TEST_HOLD", "").partition("@")
folder = os.environ.get("NS_TEST_DIR", "")
def hold():
    open(os.path.join(folder, "held"), "w").close()
    for _ in range(2400):
        if os.path.exists(os.path.join(folder, "release")):
            return
        time.sleep(0.05)
if what and os.environ.get("RANK", "-") == rank:
    if what == "startup":
        hold()
    else:
        class Hold:
            def find_spec(self, name, path=None, target=None):
                if name == what:
                    sys.meta_path.remove(self)
                    hold()
                return None
        sys.meta_path.insert(0, Hold())
"""


def hold_at(folder: Path, what: str, rank: str = "-", env: dict | None = None) -> dict:
    """An environment (``env`` or os.environ, with it) whose process ``rank`` stops at ``what`` (see _HOLD_HOOK)
    until ``folder``/release exists; ``folder``/held appears when it is there."""
    import os
    hook = folder / "hold-hook"
    hook.mkdir(parents=True, exist_ok=True)
    (hook / "sitecustomize.py").write_text(_HOLD_HOOK)
    env = dict(os.environ if env is None else env)
    env.update(NS_TEST_HOLD=f"{what}@{rank}", NS_TEST_DIR=str(folder),
               PYTHONPATH=os.pathsep.join(filter(None, [str(hook), env.get("PYTHONPATH")])))
    return env


def blend_file_as_before(run_dir: Path) -> None:
    """An lm.safetensors in ``run_dir`` as saved before it carried what was chosen (nor the weights' digest): a
    run that has one uses its n-gram LM, and test_metrics.json's ``lm_blend`` record describes it. For fixtures
    that write that record by hand (a blend is only ever described for a run that has the file)."""
    import torch

    from namestudio.engine import runfolder as rf
    rf.save_weights({"order": torch.tensor(3)}, Path(run_dir) / rf.LM)


def poll(what, timeout: float, every: float = 0.1):
    """``what()`` asked every ``every`` seconds until it gives something true or ``timeout`` seconds have passed:
    that value, or its last (falsy) one. The caller decides whether a timeout fails its test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = what()
        if got:
            return got
        time.sleep(every)
    return what()
