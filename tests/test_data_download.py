"""Download, verify and extract against a real HTTP server on 127.0.0.1."""
import hashlib
import http.server
import io
import os
import socket
import threading
import time
import zipfile
from pathlib import Path

import pytest

from namestudio.data import (
    NAMES_SHA256, SHA256, DataError, download_pytorch_names, load_dataset, pytorch_names_available,
    pytorch_names_dir, pytorch_names_state,
)
from namestudio.data import download as dl

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
ZIP_PATH = SHARED / "data" / "names-data.zip"
NAMES = SHARED / "data" / "names"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Server:
    """Serves bytes by path; a route may lie about its Content-Length, send none
    (the body then ends when the connection closes), or be a function that
    writes the whole response itself (slow and hostile servers). Such functions
    get `stop`, an Event set at close, so no handler outlives its test."""

    def __init__(self):
        self.routes: dict[str, object] = {}
        self.stop = threading.Event()
        self.client_hung_up = threading.Event()   # a raw route's writes failed: the client closed
        routes, stop, hung_up = self.routes, self.stop, self.client_hung_up

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path not in routes:
                    self.send_error(404)
                    return
                route = routes[self.path]
                if callable(route):
                    try:
                        route(self.wfile, stop)
                    except OSError:       # the client hung up: that is the point
                        hung_up.set()
                    return
                body, claimed = route
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                if claimed != -1:
                    self.send_header("Content-Length", str(claimed or len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def add(self, path: str, body: bytes, claimed_length: int | None = None) -> str:
        """claimed_length: None = the true length, -1 = no Content-Length header."""
        self.routes[path] = (body, claimed_length)
        return self.url(path)

    def add_raw(self, path: str, writer) -> str:
        self.routes[path] = writer
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self):
        self.stop.set()
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


def test_the_pinned_names_digest_is_that_of_the_pinned_archive(archive, tmp_path):
    """NAMES_SHA256 is what lets a second `data download` see, offline, that the names are already there."""
    out = download_pytorch_names(str(ZIP_PATH), SHA256, tmp_path / "names")
    assert dl.names_digest(out) == NAMES_SHA256 and pytorch_names_state(out) == "intact"
    if NAMES.is_dir():
        assert dl.names_digest(NAMES) == NAMES_SHA256          # the shared raw folder: the same 18 files


def test_pytorch_names_state_tells_absent_intact_and_changed(archive, tmp_path, monkeypatch):
    monkeypatch.setenv("NAMESTUDIO_DATA_DIR", str(tmp_path / "home"))
    assert pytorch_names_state() == "absent"
    pytorch_names_dir().mkdir(parents=True)
    assert pytorch_names_state() == "absent"                   # an empty folder holds nothing
    out = download_pytorch_names(str(ZIP_PATH))
    assert out == pytorch_names_dir() and pytorch_names_state() == "intact"
    (out / ".notes").write_text("mine")                          # hidden files are no label: still intact
    assert pytorch_names_state() == "intact"
    for change in (lambda: (out / "Elvish.txt").write_text("Elrond\n"),           # a label added
                   lambda: (out / "Elvish.txt").unlink() or (out / "Irish.txt").unlink(),   # one missing
                   lambda: (out / "Irish.txt").write_bytes(NAMES_IRISH + b"Ryan\n")):   # one edited
        change()
        assert pytorch_names_state() == "changed"


NAMES_IRISH = (NAMES / "Irish.txt").read_bytes() if (NAMES / "Irish.txt").is_file() else b""


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


@pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")
def test_the_downloaded_folder_gets_the_mode_mkdir_gives_not_mkdtemps_0700(server, archive, tmp_path):
    """`data download` left pytorch-names/names drwx------ whatever the umask (mkdtemp's mode, kept by the
    rename), so nobody else could read a dataset in a shared data folder. Now the folder and its files read
    as mkdir() and open() make them, on a first download and on one that replaces the folder."""
    from helpers import with_umask
    url = server.add("/data.zip", archive)
    for mask in (0o022, 0o077):
        dest = tmp_path / f"{mask:03o}" / "pytorch-names" / "names"
        for _ in range(2):                              # the second replaces the first
            with with_umask(mask):
                download_pytorch_names(url, SHA256, dest)
            assert oct(dest.stat().st_mode & 0o777) == oct(0o777 & ~mask)
            assert oct(dest.parent.stat().st_mode & 0o777) == oct(0o777 & ~mask)
            assert {oct(p.stat().st_mode & 0o777) for p in dest.iterdir()} == {oct(0o666 & ~mask)}
        assert leftovers(dest.parent) == ["names"]


def test_corrupted_download_fails_checksum_and_leaves_nothing(server, archive, tmp_path):
    corrupted = bytearray(archive)
    for i in (100, 5000, len(corrupted) // 2):
        corrupted[i] ^= 0xFF
    dest = tmp_path / "pytorch-names" / "names"
    with pytest.raises(DataError, match="checksum mismatch") as exc:
        download_pytorch_names(server.add("/data.zip", bytes(corrupted)), SHA256, dest)
    message = str(exc.value)
    assert SHA256 in message and sha(bytes(corrupted)) in message and "\n" not in message
    assert leftovers(tmp_path) == []          # no pytorch-names/ left behind either


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
    with pytest.raises(DataError, match=f"expected {wrong}, got {SHA256}") as exc:
        download_pytorch_names(server.add("/data.zip", archive), wrong, tmp_path / "names")
    assert str(exc.value).endswith("; check the address, and the checksum given for it")
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("kind", ["another-file", "same-size-other-bytes", "the-default-address"])
def test_a_checksum_mismatch_says_what_was_read_and_what_to_do(server, archive, tmp_path, monkeypatch, kind):
    """The message named the address and the two digests, and stopped there: the user had no next step."""
    body = archive[:1000] if kind != "same-size-other-bytes" else archive[:-1] + bytes([archive[-1] ^ 1])
    url = server.add("/data.zip", body)
    if kind == "the-default-address":
        monkeypatch.setattr(dl, "URL", url)
    with pytest.raises(DataError) as exc:
        download_pytorch_names(url, SHA256, tmp_path / "names")
    message = str(exc.value)
    assert message.startswith(f"checksum mismatch for {url} (expected {SHA256}, got {sha(body)}; "
                              f"{len(body):,} bytes read, nothing kept)"), message
    assert "\n" not in message and leftovers(tmp_path) == []
    if kind == "another-file":
        assert "not the names archive (the PyTorch tutorial's data.zip, 2,882,130 bytes); check --url" in message
    elif kind == "same-size-other-bytes":
        assert "damaged or altered; run the download again, or give --url another copy" in message
    else:
        assert "the server sent a file" in message and "--url file:///path/to/names-data.zip" in message


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


def refused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/data.zip"


def test_connection_refused_gives_the_offline_hint(tmp_path, monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    with pytest.raises(DataError, match="cannot reach") as exc:
        download_pytorch_names(refused_url(), SHA256, tmp_path / "names")
    message = str(exc.value)
    assert "namestudio data download --url file:///" in message and "\n" not in message
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("deadline_s, read_timeout_s, bound", [
    (0.5, 30.0, "before the download's 0.5 s deadline"), (30.0, 0.5, "within 0.5 s")], ids=["deadline", "read-timeout"])
def test_a_name_lookup_that_hangs_is_given_up_at_the_deadline(tmp_path, monkeypatch, deadline_s, read_timeout_s, bound):
    """getaddrinfo obeys no socket timeout and the watchdog has no socket to shut yet: a dead resolver
    blocked the download past its deadline (here, until the fake lookup gives up after 20 s)."""
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    release, asked = threading.Event(), []

    def hang(host, *args, **kwargs):
        asked.append(host)
        release.wait(20)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", hang)
    try:
        with pytest.raises(DataError, match="cannot reach") as exc:
            download_pytorch_names("http://names.example/data.zip", SHA256, tmp_path / "names",
                                   deadline_s=deadline_s, read_timeout_s=read_timeout_s)
    finally:
        release.set()        # the abandoned lookup thread ends now
    message = str(exc.value)
    assert message.startswith("cannot reach http://names.example/data.zip "
                              f"(the name lookup of names.example gave no answer {bound}); offline?"), message
    assert asked == ["names.example"]
    assert "namestudio data download --url file:///" in message and "\n" not in message
    assert leftovers(tmp_path) == []


def test_messages_do_not_start_with_what_the_uis_add(server, archive, tmp_path, monkeypatch):
    """The TUI prints "Download failed: <message>", the CLI "namestudio: error: <message>"."""
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    urls = [refused_url(), server.add("/short.zip", archive[:4096], claimed_length=len(archive)),
            server.add("/x.zip", b"").replace("/x.zip", "/missing.zip"), "notaurl",
            server.add("/bad.zip", archive[:1000])]
    for url in urls:
        with pytest.raises(DataError) as exc:
            download_pytorch_names(url, SHA256, tmp_path / "names")
        message = str(exc.value)
        assert not message.lower().startswith(("download", "error")), message
        assert "\n" not in message


def test_bad_url(tmp_path):
    """An address in a scheme urllib does not know is no download address, and no network hint ("offline?")."""
    for url in ("notaurl:x", "mailto:someone@example.com"):
        with pytest.raises(DataError) as exc:
            download_pytorch_names(url, SHA256, tmp_path / "names")
        assert str(exc.value).startswith(f"not a download address: {url!r} (unknown url type: ")
        assert "offline?" not in str(exc.value)


@pytest.mark.parametrize("form", ["absolute", "relative", "home", "bare-word"])
def test_a_missing_path_says_no_such_file_as_its_file_url_does(tmp_path, monkeypatch, form):
    """--url PATH (as --help offers) to a missing file was "not a download address (unknown url type: PATH); use
    http(s):// or file://": a path was read as one only when it named a file that exists."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "home" / "nope.zip" if form == "home" else tmp_path / "nope.zip"
    given = {"absolute": str(missing), "relative": "./nope.zip", "home": "~/nope.zip", "bare-word": "nope.zip"}[form]
    with pytest.raises(DataError) as as_url:
        download_pytorch_names(missing.as_uri(), SHA256, tmp_path / "out" / "names")
    with pytest.raises(DataError) as as_path:
        download_pytorch_names(given, SHA256, tmp_path / "out" / "names")
    message = str(as_path.value)
    assert message == str(as_url.value)
    assert message.startswith(f"cannot open {missing.as_uri()} (") and "No such file" in message
    assert "not a download address" not in message and "offline?" not in message and "\n" not in message
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("given", ["{d}", "{d}/", "./folder", "folder/"])
def test_a_path_to_a_folder_says_it_is_a_folder_as_its_file_url_does(tmp_path, monkeypatch, given):
    folder = tmp_path / "folder"
    folder.mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as exc:
        download_pytorch_names(given.format(d=folder), SHA256, tmp_path / "out" / "names")
    assert str(exc.value) == (f"{folder.as_uri()}: not a regular file (a folder); "
                              "give the names archive (names-data.zip)")
    assert not (tmp_path / "out").exists()


def test_failure_leaves_no_dataset_folder_it_created(tmp_path, monkeypatch):
    monkeypatch.setenv("NAMESTUDIO_DATA_DIR", str(tmp_path / "home"))
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    with pytest.raises(DataError):
        download_pytorch_names(refused_url())
    assert leftovers(tmp_path) == []          # neither home/ nor home/pytorch-names/
    assert not pytorch_names_available()


def test_failure_keeps_a_parent_folder_that_was_there(tmp_path, monkeypatch):
    (tmp_path / "home" / "pytorch-names").mkdir(parents=True)
    monkeypatch.setenv("NAMESTUDIO_DATA_DIR", str(tmp_path / "home"))
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    with pytest.raises(DataError):
        download_pytorch_names(refused_url())
    assert leftovers(tmp_path / "home") == ["pytorch-names"]


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
    assert leftovers(tmp_path) == []


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


# --- resource limits: size cap, deadline, per-read timeout, cleanup -----------

def test_default_cap_is_near_the_pinned_archive(archive):
    assert dl.ARCHIVE_BYTES == len(archive)
    assert len(archive) < dl.MAX_DOWNLOAD_BYTES <= 5 * len(archive)


def test_announced_oversize_is_refused_before_reading(server, tmp_path):
    seen = []
    url = server.add("/big.zip", b"\0" * 300_000)
    with pytest.raises(DataError, match="announces 300000 bytes") as exc:
        download_pytorch_names(url, SHA256, tmp_path / "names", progress=lambda d, t: seen.append(d),
                               max_bytes=100_000)
    assert "\n" not in str(exc.value)
    assert seen == []                          # not one chunk was taken
    assert leftovers(tmp_path) == []


def test_unannounced_stream_is_cut_at_the_cap(server, tmp_path):
    url = server.add("/zeros.zip", b"\0" * 1_000_000, claimed_length=-1)   # no Content-Length
    seen = []
    with pytest.raises(DataError, match="more than 100000 bytes"):
        download_pytorch_names(url, SHA256, tmp_path / "names", progress=lambda d, t: seen.append(d),
                               max_bytes=100_000)
    assert max(seen) <= 100_000
    assert leftovers(tmp_path) == []


def trickle_body(wfile, stop):
    """Headers at once, then one byte every 20 ms: each read is quick, the whole is not."""
    wfile.write(b"HTTP/1.0 200 OK\r\nContent-Type: application/zip\r\n\r\n")
    wfile.flush()
    while not stop.wait(0.02):
        wfile.write(b"\0")
        wfile.flush()


def trickle_headers(wfile, stop):
    """A status line, then an endless header, one byte every 20 ms (bounded to 8 s)."""
    wfile.write(b"HTTP/1.0 200 OK\r\nX-Slow: ")
    wfile.flush()
    end = time.monotonic() + 8
    while not stop.wait(0.02) and time.monotonic() < end:
        wfile.write(b"a")
        wfile.flush()


def stall_after_headers(wfile, stop):
    wfile.write(b"HTTP/1.0 200 OK\r\nContent-Length: 1000\r\n\r\n")
    wfile.flush()
    stop.wait(8)


@pytest.mark.parametrize("writer", [trickle_body, trickle_headers], ids=["body", "headers"])
def test_a_trickling_server_hits_the_deadline(server, tmp_path, writer):
    url = server.add_raw("/slow.zip", writer)
    dest = tmp_path / "deep" / "names"
    with pytest.raises(DataError, match="did not finish within 1 s") as exc:
        download_pytorch_names(url, SHA256, dest, deadline_s=1.0, read_timeout_s=0.5)
    assert "--url file:///" in str(exc.value)
    assert leftovers(tmp_path) == []
    # the client cut the connection itself, long before the server's own 8 s bound
    assert server.client_hung_up.wait(5)


def test_a_stalled_server_hits_the_read_timeout(server, tmp_path):
    url = server.add_raw("/stall.zip", stall_after_headers)
    with pytest.raises(DataError, match="sent nothing for 0.3 s"):
        download_pytorch_names(url, SHA256, tmp_path / "names", deadline_s=5.0, read_timeout_s=0.3)
    assert leftovers(tmp_path) == []


def test_ctrl_c_mid_download_cleans_up(server, archive, tmp_path):
    def progress(done, total):
        if done > 100_000:
            raise KeyboardInterrupt

    dest = tmp_path / "home" / "pytorch-names" / "names"
    with pytest.raises(KeyboardInterrupt):
        download_pytorch_names(server.add("/data.zip", archive), SHA256, dest, progress)
    assert leftovers(tmp_path) == []


def test_stale_temporary_files_are_swept(server, tmp_path):
    data = make_zip({"data/names/English.txt": b"Smith\n"})
    dest = tmp_path / "names"
    old = time.time() - 3600
    stale_zip = tmp_path / ".download-killed.zip"
    stale_zip.write_bytes(b"\0" * 1000)
    stale_dir = tmp_path / ".names-killed"
    stale_dir.mkdir()
    (stale_dir / "Russian.txt").write_text("Ivanov\n")
    fresh = tmp_path / ".download-running.zip"      # another download in progress
    fresh.write_bytes(b"\0")
    mine = tmp_path / "notes.txt"                     # not ours
    mine.write_text("keep")
    for p in (stale_zip, stale_dir, mine):
        os.utime(p, (old, old))
    download_pytorch_names(server.add("/d.zip", data), sha(data), dest, deadline_s=60, read_timeout_s=10)
    assert leftovers(tmp_path) == [".download-running.zip", "names", "notes.txt"]


def test_zip_total_uncompressed_size_is_capped(server, tmp_path, monkeypatch):
    monkeypatch.setattr(dl, "MAX_TOTAL_BYTES", 100_000)
    monkeypatch.setattr(dl, "MAX_MEMBER_BYTES", 40_000)
    members = {f"data/names/L{i}.txt": b"Smith\n" * 5000 for i in range(5)}   # 30 KB each, 150 KB in all
    data = make_zip(members)
    with pytest.raises(DataError, match="would extract to 150000 bytes"):
        download_pytorch_names(server.add("/bomb.zip", data), sha(data), tmp_path / "names")
    assert leftovers(tmp_path) == []


def test_zip_member_size_is_capped(server, tmp_path, monkeypatch):
    monkeypatch.setattr(dl, "MAX_MEMBER_BYTES", 20_000)
    data = make_zip({"data/names/L.txt": b"Smith\n" * 5000})
    with pytest.raises(DataError, match="too large"):
        download_pytorch_names(server.add("/bomb.zip", data), sha(data), tmp_path / "names")
    assert leftovers(tmp_path) == []


def test_zip_bytes_are_counted_while_extracting(server, tmp_path, monkeypatch):
    """An archive whose declared sizes understate its content is stopped by the byte count."""
    monkeypatch.setattr(dl, "MAX_TOTAL_BYTES", 100_000)
    data = make_zip({f"data/names/L{i}.txt": b"Smith\n" * 5000 for i in range(5)})
    real_infolist, real_open = zipfile.ZipFile.infolist, zipfile.ZipFile.open

    def understated(self):
        infos = []
        for info in real_infolist(self):
            lie = zipfile.ZipInfo(info.filename, info.date_time)
            lie.file_size = 10
            infos.append(lie)
        return infos

    def open_real(self, name, *args, **kwargs):
        name = name.filename if isinstance(name, zipfile.ZipInfo) else name
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "infolist", understated)
    monkeypatch.setattr(zipfile.ZipFile, "open", open_real)
    with pytest.raises(DataError, match="more than it declares"):
        download_pytorch_names(server.add("/liar.zip", data), sha(data), tmp_path / "names")
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("as_uri", [True, False], ids=["file-url", "plain-path"])
def test_a_local_copy_works_offline(archive, tmp_path, as_uri):
    out = download_pytorch_names(ZIP_PATH.as_uri() if as_uri else str(ZIP_PATH), SHA256, tmp_path / "names")
    assert len(leftovers(out)) == 18


def test_a_missing_local_copy_is_named(tmp_path):
    missing = (tmp_path / "nope.zip").as_uri()
    with pytest.raises(DataError, match="cannot open file://.*nope.zip") as exc:
        download_pytorch_names(missing, SHA256, tmp_path / "names")
    assert "offline?" not in str(exc.value)
    assert leftovers(tmp_path) == []


def fake_resolver(monkeypatch, table: dict, hang: threading.Event | None = None):
    """socket.getaddrinfo answering from table (host -> IPv4 address), or hanging on hosts not in it until hang is
    set (then "not known"); the unbounded lookups urllib's FileHandler makes (gethostbyname, gethostbyname_ex)
    fail the test. Returns the hosts asked, in order."""
    asked = []

    def getaddrinfo(host, port, *args, **kwargs):
        asked.append(host)
        if host in table:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (table[host], port or 0))]
        if hang is not None:
            hang.wait(20)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    def unbounded(host, *args, **kwargs):
        raise AssertionError(f"an unbounded lookup of {host}")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket, "gethostbyname", unbounded)
    monkeypatch.setattr(socket, "gethostbyname_ex", unbounded)
    monkeypatch.setattr(socket, "gethostname", lambda: "thisbox")
    return asked


@pytest.mark.parametrize("deadline_s, read_timeout_s, bound", [
    (0.5, 30.0, "before the download's 0.5 s deadline"), (30.0, 0.5, "within 0.5 s")], ids=["deadline", "read-timeout"])
def test_a_file_url_whose_host_lookup_hangs_is_given_up_at_the_deadline(archive, tmp_path, monkeypatch,
                                                                         deadline_s, read_timeout_s, bound):
    """file://HOST/path: urllib looked HOST up (and this machine's own names) with no bound at all, three lookups
    in a row: a dead resolver held a 0.5 s download for as long as each of them hung."""
    release = threading.Event()
    asked = fake_resolver(monkeypatch, {}, hang=release)
    url = f"file://names.example{ZIP_PATH.as_posix()}"
    start = time.monotonic()
    try:
        with pytest.raises(DataError) as exc:
            download_pytorch_names(url, SHA256, tmp_path / "names", deadline_s=deadline_s, read_timeout_s=read_timeout_s)
    finally:
        release.set()
    assert time.monotonic() - start < 5
    message = str(exc.value)
    assert message == (f"cannot open {url} (the name lookup of names.example gave no answer {bound}); a file:// "
                       f"address reads a file on this machine: write it with no host, {ZIP_PATH.as_uri()}")
    assert asked == ["names.example"] and leftovers(tmp_path) == []


def test_a_file_url_whose_host_is_unknown_or_elsewhere_is_refused_at_once(archive, tmp_path, monkeypatch):
    asked = fake_resolver(monkeypatch, {"far.example": "192.0.2.7", "localhost": "127.0.0.1", "thisbox": "10.0.0.5"})
    for host, why in (("nowhere.example", "nowhere.example has no address (Name or service not known)"),
                      ("far.example", "far.example is not this machine"),
                      ("localhost:8080", "localhost:8080 is not this machine")):
        url = f"file://{host}{ZIP_PATH.as_posix()}"
        start = time.monotonic()
        with pytest.raises(DataError) as exc:
            download_pytorch_names(url, SHA256, tmp_path / "names")
        assert time.monotonic() - start < 5
        assert str(exc.value) == (f"cannot open {url} ({why}); a file:// address reads a file on this machine: "
                                  f"write it with no host, {ZIP_PATH.as_uri()}")
    assert asked == ["nowhere.example", "far.example", "localhost", "thisbox"]
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("host", ["localhost", "thisbox", "me.example"])
def test_a_file_url_naming_this_machine_works(archive, tmp_path, monkeypatch, host):
    asked = fake_resolver(monkeypatch, {"me.example": "10.0.0.5", "localhost": "127.0.0.1", "thisbox": "10.0.0.5"})
    out = download_pytorch_names(f"file://{host}{ZIP_PATH.as_posix()}", SHA256, tmp_path / "names")
    assert len(leftovers(out)) == 18
    assert asked == ([] if host != "me.example" else ["me.example", "localhost", "thisbox"])   # its own names: no lookup


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_a_file_url_to_a_pipe_or_a_folder_is_refused_at_once(tmp_path, kind):
    """file:// to a FIFO blocked for ever: the deadline's watchdog closes sockets, and a local file has none."""
    odd = tmp_path / "names-data.zip"
    os.mkfifo(odd) if kind == "fifo" else odd.mkdir()
    with pytest.raises(DataError, match=r"names-data\.zip: not a regular file") as exc:
        download_pytorch_names(odd.as_uri(), SHA256, tmp_path / "out" / "names")
    assert "\n" not in str(exc.value)
    assert not (tmp_path / "out").exists()                  # nothing made, no temporary file left
