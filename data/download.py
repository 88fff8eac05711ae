"""Where downloaded data lives, and the download-verify-extract of the PyTorch names.

The archive is the data.zip of the PyTorch char-RNN tutorials. It is fetched
with urllib into a temporary file beside the destination, checked against a
pinned sha256, and only its data/names/*.txt members are extracted, into a
temporary folder that is then renamed into place. A failure at any step
(an exception, Ctrl+C, a limit, the checksum) leaves nothing behind — no
temporary file and no dataset folder this call created — and raises
DataError with a one-line message.

A hostile or broken server cannot exhaust the machine: the download is
capped at MAX_DOWNLOAD_BYTES (4x the pinned archive), must finish within a
total deadline (a watchdog shuts the socket, so a server that trickles its
headers or body one byte at a time is cut off too) and each read within a
per-read timeout. The host's name lookup, which no socket timeout covers
and the watchdog cannot shut, runs in a thread given up at the same bounds;
so do the lookups that decide whether the host of a file://HOST/path
address is this machine (urllib's own make them unbounded).
Extraction caps every member and the total, both by the sizes the archive
declares and by the bytes actually written. A process killed mid-download
leaves a `.download-*` file; the next download sweeps such files once they
are older than its deadline.

The archive itself is not kept. What it extracts to is pinned too
(NAMES_SHA256, a digest of the 18 files: see names_digest), so
pytorch_names_state tells, offline, whether the folder on disk already holds
exactly the pinned archive's names: `namestudio data download` then has
nothing to do.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import socket
import stat
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Callable

import platformdirs

from .errors import DataError
from .fsmode import set_dir_mode

URL = "https://download.pytorch.org/tutorial/data.zip"
SHA256 = "fb317e80248faeb62dc25ef3390ae24ca34b94e276bbc5141fd8862c2200bff5"
NAMES_SHA256 = "52a211d0a2dca365612f9613d14e45c6674f77576fcd920475c00e87733f680e"   # names_digest of what it extracts to
ARCHIVE_BYTES = 2_882_130                    # size of the pinned archive
MAX_DOWNLOAD_BYTES = 4 * ARCHIVE_BYTES       # a generous margin; anything bigger is not our archive
DEADLINE_S = 120.0                           # the whole download, headers included
READ_TIMEOUT_S = 30.0                        # connect, and each read
NAMES_MEMBER_DIR = PurePosixPath("data/names")
MAX_MEMBER_BYTES = 16 * 1024 * 1024          # one extracted file (the largest real one is ~120 KB)
MAX_TOTAL_BYTES = 64 * 1024 * 1024           # all extracted files together (the real ones: ~0.8 MB)
CHUNK = 64 * 1024
TMP_PREFIXES = (".download-", ".names-")     # our temporary files and folders beside the destination
OFFLINE_HINT = ("offline? with a copy of the archive run "
                "`namestudio data download --url file:///path/to/names-data.zip`")

Progress = Callable[[int, "int | None"], None]


def user_data_dir() -> Path:
    """Per-user data folder; NAMESTUDIO_DATA_DIR overrides it."""
    override = os.environ.get("NAMESTUDIO_DATA_DIR")
    if override:
        return Path(override).expanduser()
    return platformdirs.user_data_path("namestudio")


def pytorch_names_dir() -> Path:
    return user_data_dir() / "pytorch-names" / "names"


def pytorch_names_available() -> bool:
    folder = pytorch_names_dir()
    return folder.is_dir() and any(folder.glob("*.txt"))


def default_source() -> str:
    return "pytorch-names" if pytorch_names_available() else "builtin"


def names_digest(folder: str | os.PathLike) -> str | None:
    """A sha256 over the folder's <Label>.txt files (any case of .txt, hidden files aside, by name): each file's
    name, size and bytes. None when the folder cannot be read or holds no such file."""
    folder = Path(folder)
    h = hashlib.sha256()
    try:
        files = sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.suffix.lower() == ".txt")
        if not files:
            return None
        for f in files:
            if not f.is_file():                     # a folder, a device or a pipe named <Label>.txt: not our files
                return None
            data = f.read_bytes()
            h.update(f"{f.name}\0{len(data)}\0".encode())
            h.update(data)
    except OSError:
        return None
    return h.hexdigest()


def pytorch_names_state(dest: str | os.PathLike | None = None) -> str:
    """"absent" (no <Label>.txt there), "intact" (exactly the names the pinned archive extracts to) or "changed"
    (a file edited, added or missing) for the pytorch-names folder (dest: another one). Reads no network."""
    folder = Path(dest) if dest is not None else pytorch_names_dir()
    try:
        if not (folder.is_dir() and any(p.suffix.lower() == ".txt" for p in folder.iterdir())):
            return "absent"
    except OSError:                                 # there, but unreadable: not the pinned names
        return "changed"
    return "intact" if names_digest(folder) == NAMES_SHA256 else "changed"


def download_pytorch_names(
    url: str = URL,
    sha256: str = SHA256,
    dest: str | os.PathLike | None = None,
    progress: Progress | None = None,
    *,
    max_bytes: int | None = None,
    deadline_s: float | None = None,
    read_timeout_s: float | None = None,
) -> Path:
    """Download, verify and extract the names; return the folder of *.txt.

    max_bytes, deadline_s and read_timeout_s default to MAX_DOWNLOAD_BYTES,
    DEADLINE_S and READ_TIMEOUT_S (read when called). url may also be a
    plain path to a local copy of the archive.
    """
    max_bytes = MAX_DOWNLOAD_BYTES if max_bytes is None else max_bytes
    deadline_s = DEADLINE_S if deadline_s is None else deadline_s
    read_timeout_s = READ_TIMEOUT_S if read_timeout_s is None else read_timeout_s
    if _is_path(url):                   # a plain path to a local copy: read as its file:// address, whose checks
        url = Path(url).expanduser().absolute().as_uri()     # name a missing file or a folder in the same words
    _check_local(url)
    dest = Path(dest) if dest is not None else pytorch_names_dir()
    dest = dest.expanduser().absolute()
    created = _first_missing(dest.parent)
    ok = False
    tmp_zip: Path | None = None
    tmp_dir: Path | None = None
    try:
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            _sweep_stale(dest.parent, older_than_s=deadline_s + read_timeout_s)
            fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=".download-", suffix=".zip")
            tmp_zip = Path(tmp_name)
            with os.fdopen(fd, "wb") as out:
                digest, size = _fetch(url, out, tmp_zip, progress, max_bytes, deadline_s, read_timeout_s)
        except OSError as exc:  # the local side: our folder or temporary file
            raise DataError(f"cannot write the download into {dest.parent}: {exc.strerror or exc}") from None
        if digest != sha256.lower():
            raise DataError(_mismatch(url, sha256.lower(), digest, size))
        try:
            tmp_dir = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".names-"))
            set_dir_mode(tmp_dir)           # it becomes the dataset folder: mkdtemp's 0700 would hide it from others
            _extract_names(tmp_zip, tmp_dir, url)
            _replace_dir(tmp_dir, dest)
        except OSError as exc:
            raise DataError(f"cannot extract the names into {dest}: {exc.strerror or exc}") from None
        tmp_dir = None
        ok = True
        return dest
    finally:
        if tmp_zip is not None:
            tmp_zip.unlink(missing_ok=True)
        if tmp_dir is not None:
            shutil.rmtree(tmp_dir, ignore_errors=True)
        if not ok and created is not None:
            _remove_empty_dirs(dest.parent, created)


def _is_path(url: str) -> bool:
    """url is a path (absolute, relative or ~), not an address: no "scheme://" and no "scheme:" before it (a
    file that exists is a path whatever its name holds). A path only to a copy that exists was once taken as
    one: a missing file or a folder was "not a download address (unknown url type)"."""
    from urllib.parse import urlsplit
    if "://" in url:
        return False
    try:
        scheme = urlsplit(url).scheme
    except ValueError:
        scheme = ""
    return not scheme or os.path.lexists(Path(url).expanduser())


def _mismatch(url: str, expected: str, got: str, size: int) -> str:
    """The checksum error: what was read, expected against got, and what to do next (one line)."""
    said = f"checksum mismatch for {url} (expected {expected}, got {got}; {size:,} bytes read, nothing kept)"
    if expected != SHA256:                          # a caller's own checksum (the Python API)
        return f"{said}; check the address, and the checksum given for it"
    if size != ARCHIVE_BYTES:
        what = f"not the names archive (the PyTorch tutorial's data.zip, {ARCHIVE_BYTES:,} bytes)"
        if url == URL:
            return (f"{said}: the server sent a file that is {what}; try again later, or give a copy: "
                    f"`namestudio data download --url file:///path/to/names-data.zip`")
        return (f"{said}: this address serves a file that is {what}; check --url, or leave it out to fetch {URL}")
    return (f"{said}: the size of the names archive but other bytes, so damaged or altered; run the download "
            f"again, or give --url another copy of {URL}")


def _first_missing(folder: Path) -> Path | None:
    """The outermost ancestor of folder (or folder) that does not exist yet."""
    missing = None
    for p in (folder, *folder.parents):
        if p.exists():
            break
        missing = p
    return missing


def _remove_empty_dirs(folder: Path, top: Path) -> None:
    """Remove folder and its parents up to top, as long as they are empty."""
    for p in (folder, *folder.parents):
        try:
            p.rmdir()
        except OSError:
            return
        if p == top:
            return


def _sweep_stale(folder: Path, older_than_s: float) -> None:
    """Remove our temporary files and folders left by a killed download."""
    cutoff = time.time() - older_than_s
    for p in folder.iterdir():
        if not p.name.startswith(TMP_PREFIXES):
            continue
        try:
            if p.lstat().st_mtime >= cutoff:
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
        except OSError:
            pass


class _Watchdog:
    """Shuts every watched socket down when the deadline passes."""

    def __init__(self, seconds: float):
        self.expired = False
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock) -> None:
        with self._lock:
            if any(s is sock for s in self._socks):
                return
            self._socks.append(sock)
            if self.expired:
                _shutdown(sock)

    def _fire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._socks:
                _shutdown(sock)

    def cancel(self) -> None:
        self._timer.cancel()


def _shutdown(sock) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _LookupTimeout(OSError):
    """A host's name lookup gave no answer in time."""


def _lookup(host: str, port, limit: float, within: str) -> list:
    """socket.getaddrinfo for a TCP connection to host, given up after limit seconds (within: that bound, in words).

    A lookup ignores socket timeouts and has no socket the watchdog could shut, so it runs in a daemon thread
    that is left to end on its own when it hangs (a dead DNS server, a resolver that never answers).
    """
    answer: list = []

    def ask():
        try:
            answer.append(socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM))
        except Exception as exc:         # gaierror, or a host name that cannot be encoded
            answer.append(exc)

    thread = threading.Thread(target=ask, name=f"lookup {host}", daemon=True)
    thread.start()
    thread.join(limit)
    if not answer:
        raise _LookupTimeout(f"the name lookup of {host} gave no answer {within}")
    if isinstance(answer[0], Exception):
        raise answer[0]
    return answer[0]


def _bounds(timeout, watchdog: _Watchdog):
    """(limit, within): limit() is the time left for one step (a lookup, a connect) under timeout and the
    watchdog's deadline; within says the tighter bound in words."""
    limit = lambda: max(0.0, min(watchdog.end - time.monotonic(), timeout if timeout is not None else float("inf")))
    if timeout is not None and timeout < watchdog.end - time.monotonic():
        within = f"within {timeout:g} s"
    else:
        within = f"before the download's {watchdog.seconds:g} s deadline"
    return limit, within


def _connect(address, timeout, source_address, watchdog: _Watchdog) -> socket.socket:
    """socket.create_connection, with the lookup and each connect bounded by timeout and the watchdog's deadline."""
    host, port = address[:2]
    timeout = timeout if isinstance(timeout, (int, float)) else None     # None: the default socket timeout
    limit, within = _bounds(timeout, watchdog)
    errors: list[OSError] = []
    for family, kind, proto, _, where in _lookup(host, port, limit(), within):
        sock = None
        try:
            sock = socket.socket(family, kind, proto)
            sock.settimeout(limit())
            if source_address:
                sock.bind(source_address)
            sock.connect(where)
            sock.settimeout(timeout if timeout is not None else socket.getdefaulttimeout())
            return sock
        except OSError as exc:
            errors.append(exc)
            if sock is not None:
                sock.close()
    raise errors[0] if errors else OSError(f"no address found for {host}")


def _watched(conn_class, watchdog: _Watchdog):
    """A subclass of an http.client connection class whose sockets the watchdog sees."""

    class Watched(conn_class):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)

            def create_and_watch(address, timeout=None, source_address=None, *a, **k):
                sock = _connect(address, timeout, source_address, watchdog)
                watchdog.watch(sock)       # before any TLS handshake or header read
                return sock

            self._create_connection = create_and_watch

        def connect(self):
            super().connect()
            watchdog.watch(self.sock)

    return Watched


class _NotThisMachine(OSError):
    """The host of a file://HOST/path address is not this machine (or has no address)."""


def _is_this_machine(host: str, timeout, watchdog: _Watchdog) -> bool:
    """Whether host names this machine: "localhost" or this machine's own name, else an address of host is one of
    localhost's or of this machine's name. Every lookup is bounded as _connect's is; urllib's FileHandler makes
    the same lookups (gethostbyname) with no bound at all, and its answers are not cached here."""
    if host.lower() in ("localhost", socket.gethostname().lower()):
        return True
    limit, within = _bounds(timeout, watchdog)
    try:
        theirs = {info[4][0] for info in _lookup(host, None, limit(), within)}
    except _LookupTimeout:
        raise
    except (OSError, UnicodeError) as exc:          # no such host: it is not this machine
        raise _NotThisMachine(f"{host} has no address ({getattr(exc, 'strerror', None) or exc})") from None
    ours: set = set()
    for name in ("localhost", socket.gethostname()):
        try:
            ours |= {info[4][0] for info in _lookup(name, None, limit(), within)}
        except _LookupTimeout:
            raise
        except (OSError, UnicodeError):
            pass
    return bool(theirs & ours)


def _opener(watchdog: _Watchdog, timeout: float | None = None) -> urllib.request.OpenerDirector:
    class HTTP(urllib.request.HTTPHandler):
        def do_open(self, http_class, req, **kwargs):
            return super().do_open(_watched(http_class, watchdog), req, **kwargs)

    class File(urllib.request.FileHandler):
        """file:// with the host check's lookups bounded (see _is_this_machine)."""

        def file_open(self, req):
            host, port = req.host, None
            if host and host.rpartition(":")[2].isdigit():
                host, port = host.rpartition(":")[0], host.rpartition(":")[2]
            if host:
                if port is not None or not _is_this_machine(host, timeout, watchdog):
                    raise urllib.error.URLError(_NotThisMachine(f"{req.host} is not this machine"))
                req.host = ""                     # checked: urllib's open_local_file would look it up again
            return self.open_local_file(req)

    handlers: list = [HTTP, File]
    if hasattr(urllib.request, "HTTPSHandler"):
        class HTTPS(urllib.request.HTTPSHandler):
            def do_open(self, http_class, req, **kwargs):
                return super().do_open(_watched(http_class, watchdog), req, **kwargs)

        handlers.append(HTTPS)
    return urllib.request.build_opener(*handlers)


def _check_local(url: str) -> None:
    """A file: address must name a regular file: a FIFO blocked the download for ever (the deadline's watchdog
    closes sockets, and a local file has none) and a device never ends."""
    if not url.lower().startswith("file:"):
        return
    from urllib.parse import urlsplit
    from urllib.request import url2pathname
    path = Path(url2pathname(urlsplit(url).path))
    try:
        mode = path.stat().st_mode
    except OSError:
        return                                  # missing: the opener says so, as it always has
    if not stat.S_ISREG(mode):
        what = "a folder" if stat.S_ISDIR(mode) else "a device, a pipe or a socket"
        raise DataError(f"{url}: not a regular file ({what}); give the names archive (names-data.zip)")


def _fetch(url: str, out, where: Path, progress: Progress | None, max_bytes: int,
           deadline_s: float, read_timeout_s: float) -> tuple[str, int]:
    """Stream url into out (the file where); return the sha256 hex digest of what was read, and its size."""
    sha = hashlib.sha256()
    done = 0
    total = None
    end = time.monotonic() + deadline_s
    watchdog = _Watchdog(deadline_s)

    def too_slow() -> DataError:
        return DataError(f"{url} did not finish within {deadline_s:g} s ({done} bytes received); {OFFLINE_HINT}")

    try:
        try:
            response = _opener(watchdog, min(read_timeout_s, deadline_s)).open(
                url, timeout=min(read_timeout_s, deadline_s))
        except ValueError as exc:
            raise DataError(f"not a download address: {url!r} ({exc}); use http(s):// or file://") from None
        with response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            if total is not None and total > max_bytes:
                raise DataError(
                    f"{url} announces {total} bytes, more than the {max_bytes} allowed "
                    f"(the names archive is {ARCHIVE_BYTES} bytes); refused"
                )
            if progress:
                progress(0, total)
            read = getattr(response, "read1", response.read)   # read1: whatever has arrived, no waiting for a full chunk
            while chunk := read(CHUNK):
                done += len(chunk)
                if done > max_bytes:
                    raise DataError(
                        f"{url} sent more than {max_bytes} bytes (the names archive is {ARCHIVE_BYTES} bytes); refused"
                    )
                if time.monotonic() > end:
                    raise too_slow()
                try:
                    out.write(chunk)
                except OSError as exc:
                    raise DataError(f"cannot write {where}: {exc.strerror or exc}") from None
                sha.update(chunk)
                if progress:
                    progress(done, total)
    except DataError:
        raise
    except urllib.error.HTTPError as exc:
        raise DataError(f"HTTP {exc.code} {exc.reason} from {url}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, str) and reason.startswith("unknown url type"):   # "gopher:x": no network was asked
            raise DataError(f"not a download address: {url!r} ({reason}); use http(s):// or file://") from None
        if url.lower().startswith("file:") and isinstance(reason, (_LookupTimeout, _NotThisMachine)):
            raise DataError(f"cannot open {url} ({reason}); a file:// address reads a file on this machine: "
                            f"write it with no host, {_hostless(url)}") from None
        if isinstance(reason, _LookupTimeout):    # checked first: the deadline may be why
            raise DataError(f"cannot reach {url} ({reason}); {OFFLINE_HINT}") from None
        if watchdog.expired:
            raise too_slow() from None
        if url.lower().startswith("file:"):
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise DataError(f"cannot open {url} ({reason})") from None
        if isinstance(exc, urllib.error.URLError) and not isinstance(exc.reason, TimeoutError):
            raise DataError(f"cannot reach {url} ({exc.reason}); {OFFLINE_HINT}") from None
        if isinstance(exc, TimeoutError) or isinstance(getattr(exc, "reason", None), TimeoutError):
            raise DataError(
                f"{url} sent nothing for {min(read_timeout_s, deadline_s):g} s ({done} bytes received); {OFFLINE_HINT}"
            ) from None
        raise DataError(f"reading {url} failed ({type(exc).__name__}: {exc}); {OFFLINE_HINT}") from None
    finally:
        watchdog.cancel()
    if watchdog.expired or time.monotonic() > end:
        raise too_slow()
    if total is not None and done != total:
        raise DataError(
            f"truncated: the connection closed after {done} of {total} bytes from {url}; {OFFLINE_HINT}"
        )
    return sha.hexdigest(), done


def _hostless(url: str) -> str:
    """A file://HOST/path address as file:///path."""
    from urllib.parse import urlsplit
    return "file://" + (urlsplit(url).path or "/")


def _is_unsafe(member: str, target: Path) -> bool:
    path = PurePosixPath(member.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or ":" in member:
        return True
    resolved = (target / path).resolve()
    return not resolved.is_relative_to(target.resolve())


def _extract_names(archive: Path, target: Path, url: str) -> None:
    """Write data/names/*.txt from archive into target (flat), within the size caps."""
    max_member, max_total = MAX_MEMBER_BYTES, MAX_TOTAL_BYTES
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for info in members:
                if _is_unsafe(info.filename, target):
                    raise DataError(f"refusing unsafe path {info.filename!r} in archive from {url}")
            wanted = [
                info for info in members
                if not info.is_dir()
                and PurePosixPath(info.filename).parent == NAMES_MEMBER_DIR
                and info.filename.endswith(".txt")
            ]
            if not wanted:
                raise DataError(f"archive from {url} holds no data/names/*.txt files")
            for info in wanted:        # what the archive declares, before writing anything
                if info.file_size > max_member:
                    raise DataError(
                        f"archive member {info.filename} from {url} is too large "
                        f"({info.file_size} bytes, at most {max_member})"
                    )
            declared = sum(info.file_size for info in wanted)
            if declared > max_total:
                raise DataError(
                    f"archive from {url} would extract to {declared} bytes, more than the {max_total} allowed"
                )
            written = 0
            for info in wanted:        # and what it really holds, counted while writing
                member_bytes = 0
                with zf.open(info) as src, open(target / PurePosixPath(info.filename).name, "wb") as dst:
                    while chunk := src.read(CHUNK):
                        member_bytes += len(chunk)
                        written += len(chunk)
                        if member_bytes > max_member or written > max_total:
                            raise DataError(
                                f"archive from {url} holds more than it declares ({info.filename}); refused"
                            )
                        dst.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise DataError(f"corrupt zip archive from {url}: {exc}") from None


def _replace_dir(new: Path, dest: Path) -> None:
    """Rename new to dest; an existing dest is moved aside first, then removed."""
    old = None
    if dest.exists():
        old = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".names-old-"))
        os.replace(dest, old / "names")
    try:
        os.replace(new, dest)
    except OSError:
        if old is not None:
            os.replace(old / "names", dest)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
