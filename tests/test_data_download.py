"""Download, verify and extract against a real HTTP server on 127.0.0.1."""
import hashlib
import http.server
import io
import socket
import threading
import zipfile
from pathlib import Path

import pytest

from namestudio.data import (
    SHA256, DataError, download_pytorch_names, load_dataset, pytorch_names_available,
    pytorch_names_dir,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
ZIP_PATH = SHARED / "data" / "names-data.zip"
NAMES = SHARED / "data" / "names"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Server:
    """Serves bytes by path; a route may lie about its Content-Length."""

    def __init__(self):
        self.routes: dict[str, tuple[bytes, int | None]] = {}
        routes = self.routes

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path not in routes:
                    self.send_error(404)
                    return
                body, claimed = routes[self.path]
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(claimed or len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def add(self, path: str, body: bytes, claimed_length: int | None = None) -> str:
        self.routes[path] = (body, claimed_length)
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    srv = Server()
    yield srv
    srv.close()


@pytest.fixture
def archive() -> bytes:
    if not ZIP_PATH.is_file():
        pytest.skip("shared names-data.zip not present")
    return ZIP_PATH.read_bytes()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_verifies_and_extracts_only_names(server, archive, tmp_path):
    url = server.add("/data.zip", archive)
    dest = tmp_path / "pytorch-names" / "names"
    calls = []
    out = download_pytorch_names(url, SHA256, dest, progress=lambda d, t: calls.append((d, t)))
    assert out == dest
    files = sorted(p.name for p in dest.iterdir())
    assert len(files) == 18 and all(f.endswith(".txt") for f in files)
    assert "Russian.txt" in files
    assert not list(tmp_path.rglob("eng-fra.txt"))
    assert leftovers(dest.parent) == ["names"]  # no temp files or folders left
    if NAMES.is_dir():
        assert (dest / "Czech.txt").read_bytes() == (NAMES / "Czech.txt").read_bytes()
    assert calls[-1] == (len(archive), len(archive))
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert len(load_dataset(str(dest)).labels) == 18


def test_download_to_default_dir_makes_pytorch_names_available(server, archive, tmp_path, monkeypatch):
    monkeypatch.setenv("NAMESTUDIO_DATA_DIR", str(tmp_path))
    assert not pytorch_names_available()
    out = download_pytorch_names(server.add("/data.zip", archive))
    assert out == pytorch_names_dir()
    assert pytorch_names_available()
    assert load_dataset("pytorch-names").source == "pytorch-names"


def test_download_replaces_an_existing_folder(server, archive, tmp_path):
    dest = tmp_path / "names"
    dest.mkdir()
    (dest / "Stale.txt").write_text("Old\n")
    download_pytorch_names(server.add("/data.zip", archive), SHA256, dest)
    names = leftovers(dest)
    assert "Stale.txt" not in names and len(names) == 18
    assert leftovers(tmp_path) == ["names"]


def test_corrupted_download_fails_checksum_and_leaves_nothing(server, archive, tmp_path):
    corrupted = bytearray(archive)
    for i in (100, 5000, len(corrupted) // 2):
        corrupted[i] ^= 0xFF
    dest = tmp_path / "pytorch-names" / "names"
    with pytest.raises(DataError, match="checksum mismatch") as exc:
        download_pytorch_names(server.add("/data.zip", bytes(corrupted)), SHA256, dest)
    message = str(exc.value)
    assert SHA256 in message and sha(bytes(corrupted)) in message and "\n" not in message
    assert not dest.exists()
    assert leftovers(dest.parent) == []


def test_failed_download_keeps_the_existing_folder(server, archive, tmp_path):
    dest = tmp_path / "names"
    dest.mkdir()
    (dest / "Mine.txt").write_text("Kept\n")
    with pytest.raises(DataError):
        download_pytorch_names(server.add("/data.zip", archive[:1000]), SHA256, dest)
    assert leftovers(dest) == ["Mine.txt"]
    assert leftovers(tmp_path) == ["names"]


def test_wrong_expected_checksum(server, archive, tmp_path):
    wrong = "0" * 64
    with pytest.raises(DataError, match=f"expected {wrong}, got {SHA256}"):
        download_pytorch_names(server.add("/data.zip", archive), wrong, tmp_path / "names")
    assert leftovers(tmp_path) == []


def test_truncated_file_fails_checksum(server, archive, tmp_path):
    url = server.add("/data.zip", archive[: len(archive) // 2])
    with pytest.raises(DataError, match="checksum mismatch"):
        download_pytorch_names(url, SHA256, tmp_path / "names")
    assert leftovers(tmp_path) == []


def test_truncated_file_with_its_own_checksum_is_a_corrupt_zip(server, archive, tmp_path):
    truncated = archive[: len(archive) // 2]
    with pytest.raises(DataError, match="corrupt zip"):
        download_pytorch_names(server.add("/data.zip", truncated), sha(truncated), tmp_path / "names")
    assert leftovers(tmp_path) == []


def test_connection_closed_before_content_length(server, archive, tmp_path):
    url = server.add("/data.zip", archive[:4096], claimed_length=len(archive))
    with pytest.raises(DataError, match="truncated"):
        download_pytorch_names(url, SHA256, tmp_path / "names")
    assert leftovers(tmp_path) == []


def test_http_error(server, tmp_path):
    url = server.add("/data.zip", b"").replace("/data.zip", "/missing.zip")
    with pytest.raises(DataError, match="404") as exc:
        download_pytorch_names(url, SHA256, tmp_path / "names")
    assert "missing.zip" in str(exc.value)
    assert leftovers(tmp_path) == []


def test_connection_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataError, match="download failed"):
        download_pytorch_names(f"http://127.0.0.1:{port}/data.zip", SHA256, tmp_path / "names")
    assert leftovers(tmp_path) == []


def test_bad_url(tmp_path):
    with pytest.raises(DataError, match="download failed"):
        download_pytorch_names("notaurl", SHA256, tmp_path / "names")


def make_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return buf.getvalue()


@pytest.mark.parametrize("evil", ["data/names/../../evil.txt", "/tmp/namestudio-evil.txt"])
def test_zip_slip_is_refused(server, tmp_path, evil):
    data = make_zip({"data/names/English.txt": b"Smith\n", evil: b"pwned\n"})
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert evil in zf.namelist()  # the hostile name really is in the archive
    dest = tmp_path / "deep" / "pytorch-names" / "names"
    with pytest.raises(DataError, match="unsafe path") as exc:
        download_pytorch_names(server.add("/evil.zip", data), sha(data), dest)
    assert evil in str(exc.value)
    assert not list(tmp_path.rglob("evil.txt"))
    assert not Path("/tmp/namestudio-evil.txt").exists()
    assert not dest.exists() and leftovers(dest.parent) == []


def test_archive_without_names_is_refused(server, tmp_path):
    data = make_zip({"data/eng-fra.txt": b"hello\tbonjour\n", "data/names/README": b"x"})
    with pytest.raises(DataError, match="no data/names"):
        download_pytorch_names(server.add("/other.zip", data), sha(data), tmp_path / "names")
    assert leftovers(tmp_path) == []


def test_progress_callback_can_cancel_cleanly(server, archive, tmp_path):
    class Cancelled(Exception):
        pass

    def progress(done, total):
        if done > 100_000:
            raise Cancelled

    with pytest.raises(Cancelled):
        download_pytorch_names(server.add("/data.zip", archive), SHA256, tmp_path / "names", progress)
    assert leftovers(tmp_path) == []
