"""The permissions of what namestudio writes through a temporary file (the one place that knows the umask).

``tempfile.mkstemp`` makes a file 0600 and ``mkdtemp`` a folder 0700, whatever the umask: renamed into place,
such a file or folder could not be read by anyone else (a run watched over a shared folder, a dataset, a
``sample --out`` file). Everything written that way goes through here instead, and gets the mode a plain
``open()`` / ``mkdir()`` would give: 0666 & ~umask for a file, 0777 & ~umask for a folder; a file that
replaces an existing one of the user's may keep that one's mode (``file_mode(keep=path)``).

The umask can only be read by setting it (``os.umask``), which is process-wide and would race with any thread
creating a file meanwhile. So it is read from ``/proc/self/status`` where there is one (Linux 4.7+: no race, and
always current), and otherwise read once, at the first use, and kept.
"""
from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

__all__ = ["umask", "file_mode", "dir_mode", "set_file_mode", "set_dir_mode"]

_lock = threading.Lock()
_umask_cache: int | None = None     # the fallback's reading, when /proc/self/status says nothing


def _proc_umask() -> int | None:
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


def umask() -> int:
    """The process's umask, read without changing it where the system allows (see the module's note)."""
    global _umask_cache
    mask = _proc_umask()
    if mask is not None:
        return mask
    with _lock:
        if _umask_cache is None:        # set for an instant to 022, not 0: a file another thread makes meanwhile
            _umask_cache = os.umask(0o022)  # is not world-writable
            os.umask(_umask_cache)
        return _umask_cache


def file_mode(keep: str | Path | None = None) -> int:
    """The mode for a file written through a temporary one: that of the existing regular file ``keep`` when
    there is one (its permission bits), else what ``open()`` would give a new file (0666 & ~umask)."""
    if keep is not None:
        try:
            st = os.stat(keep)
        except OSError:
            st = None
        if st is not None and stat.S_ISREG(st.st_mode):
            return stat.S_IMODE(st.st_mode) & 0o777
    return 0o666 & ~umask()


def dir_mode() -> int:
    """What ``mkdir()`` would give a new folder: 0777 & ~umask."""
    return 0o777 & ~umask()


def set_file_mode(fd: int, keep: str | Path | None = None) -> None:
    """Give the open temporary file ``fd`` (from ``mkstemp``) the mode of ``file_mode(keep)``."""
    mode = file_mode(keep)
    if hasattr(os, "fchmod"):
        os.fchmod(fd, mode)


def set_dir_mode(path: str | Path) -> None:
    """Give a temporary folder (from ``mkdtemp``) the mode ``mkdir()`` would have given it."""
    os.chmod(path, dir_mode())
