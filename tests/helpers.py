"""Small deterministic fixtures shared by the engine and CLI tests."""
from __future__ import annotations

import random
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
