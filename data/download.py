"""Where downloaded data lives, and the download-verify-extract of the PyTorch names.

The archive is the data.zip of the PyTorch char-RNN tutorials. It is fetched
with urllib into a temporary file beside the destination, checked against a
pinned sha256, and only its data/names/*.txt members are extracted, into a
temporary folder that is then renamed into place. A failure at any step
leaves nothing behind and raises DataError with a one-line message.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Callable

import platformdirs

from .errors import DataError

URL = "https://download.pytorch.org/tutorial/data.zip"
SHA256 = "fb317e80248faeb62dc25ef3390ae24ca34b94e276bbc5141fd8862c2200bff5"
NAMES_MEMBER_DIR = PurePosixPath("data/names")
MAX_MEMBER_BYTES = 64 * 1024 * 1024
CHUNK = 64 * 1024

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


def download_pytorch_names(
    url: str = URL,
    sha256: str = SHA256,
    dest: str | os.PathLike | None = None,
    progress: Progress | None = None,
) -> Path:
    """Download, verify and extract the names; return the folder of *.txt."""
    dest = Path(dest) if dest is not None else pytorch_names_dir()
    dest = dest.expanduser().absolute()
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=".download-", suffix=".zip")
    tmp_zip = Path(tmp_name)
    tmp_dir: Path | None = None
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _fetch(url, out, progress)
        if digest != sha256.lower():
            raise DataError(
                f"checksum mismatch for {url} (expected {sha256.lower()}, got {digest})"
            )
        tmp_dir = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".names-"))
        _extract_names(tmp_zip, tmp_dir, url)
        _replace_dir(tmp_dir, dest)
        tmp_dir = None
        return dest
    finally:
        tmp_zip.unlink(missing_ok=True)
        if tmp_dir is not None:
            shutil.rmtree(tmp_dir, ignore_errors=True)


def _fetch(url: str, out, progress: Progress | None) -> str:
    """Stream url into out; return the sha256 hex digest of what was read."""
    sha = hashlib.sha256()
    done = 0
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            if progress:
                progress(0, total)
            while chunk := response.read(CHUNK):
                out.write(chunk)
                sha.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
    except urllib.error.HTTPError as exc:
        raise DataError(f"download failed: HTTP {exc.code} {exc.reason} from {url}") from None
    except urllib.error.URLError as exc:
        raise DataError(f"download failed: {exc.reason} ({url})") from None
    except (http.client.HTTPException, OSError, ValueError) as exc:
        raise DataError(f"download failed: {type(exc).__name__}: {exc} ({url})") from None
    if total is not None and done != total:
        raise DataError(f"download truncated: got {done} of {total} bytes from {url}")
    return sha.hexdigest()


def _is_unsafe(member: str, target: Path) -> bool:
    path = PurePosixPath(member.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or ":" in member:
        return True
    resolved = (target / path).resolve()
    return not resolved.is_relative_to(target.resolve())


def _extract_names(archive: Path, target: Path, url: str) -> None:
    """Write data/names/*.txt from archive into target (flat)."""
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
            for info in wanted:
                if info.file_size > MAX_MEMBER_BYTES:
                    raise DataError(f"archive member {info.filename} from {url} is too large")
                (target / PurePosixPath(info.filename).name).write_bytes(zf.read(info))
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
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
