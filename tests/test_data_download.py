"""``data download`` against a local HTTP server on 127.0.0.1 (no test reaches the internet)."""

from __future__ import annotations

import hashlib
import http.server
import threading

import numpy as np
import pytest
from conftest import shared_data

from zspace.core.errors import ZspaceError
from zspace.data.download import CELEBA_MESSAGE, Remote, download, fetch

TEST_DATA = shared_data()


class Server:
    """Serves ``files`` ({url path: bytes}) with HTTP Range; can cut the first transfer."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut_first: dict[str, int] = {}  # url path -> bytes sent before hanging up
        self.log: list[tuple[str, str | None, int]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                body = outer.files.get(self.path)
                rng = self.headers.get("Range")
                if body is None:
                    outer.log.append((self.path, rng, 404))
                    self.send_error(404)
                    return
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                if start >= len(body):
                    outer.log.append((self.path, rng, 416))
                    self.send_error(416)
                    return
                status = 206 if rng else 200
                outer.log.append((self.path, rng, status))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body) - start))
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.end_headers()
                cut = outer.cut_first.pop(self.path, None)
                self.wfile.write(body[start:cut] if cut is not None else body[start:])
                if cut is not None:
                    self.close_connection = True

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def blob(n=300_000, seed=0):
    data = np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()
    return data, hashlib.md5(data).hexdigest()


def test_truncated_download_resumes_with_range(server, tmp_path):
    data, md5 = blob()
    server.files["/a/file.bin"] = data
    server.cut_first["/a/file.bin"] = 100_000
    path = fetch(Remote("file.bin", md5, "all"), tmp_path, [f"{server.url}/a/"], progress=False)
    assert path == tmp_path / "file.bin" and path.read_bytes() == data
    assert server.log == [("/a/file.bin", None, 200), ("/a/file.bin", "bytes=100000-", 206)]
    assert not (tmp_path / "file.bin.part").exists()


def test_checksum_mismatch(server, tmp_path):
    data, _ = blob()
    server.files["/a/file.bin"] = data
    wrong = "0" * 32
    with pytest.raises(ZspaceError) as err:
        fetch(Remote("file.bin", wrong, "all"), tmp_path, [f"{server.url}/a/"], progress=False)
    assert str(err.value) == (
        f"data download: file.bin failed on every mirror: {server.url}/a/file.bin: checksum "
        f"mismatch (md5 {hashlib.md5(data).hexdigest()}, expected {wrong})"
    )
    assert list(tmp_path.iterdir()) == []  # neither the file nor a .part is left


def test_mirrors_are_tried_in_order(server, tmp_path):
    data, md5 = blob(1000)
    server.files["/second/file.bin"] = data
    mirrors = [f"{server.url}/first/", f"{server.url}/second"]
    fetch(Remote("file.bin", md5, "all"), tmp_path, mirrors, progress=False)
    assert [(p, s) for p, _, s in server.log] == [
        ("/first/file.bin", 404),
        ("/second/file.bin", 200),
    ]


def test_offline_message(tmp_path):
    with pytest.raises(ZspaceError) as err:
        fetch(
            Remote("file.bin", "0" * 32, "all"), tmp_path, ["http://127.0.0.1:9/"], progress=False
        )
    assert str(err.value).startswith(
        "data download: cannot reach any mirror for file.bin "
        "(offline?): http://127.0.0.1:9/file.bin: "
    )


def test_complete_part_and_present_file(server, tmp_path):
    data, md5 = blob(5000)
    server.files["/file.bin"] = data
    (tmp_path / "file.bin.part").write_bytes(data)  # a crash after the transfer, before rename
    fetch(Remote("file.bin", md5, "all"), tmp_path, [server.url], progress=False)
    assert (tmp_path / "file.bin").read_bytes() == data
    assert [s for _, _, s in server.log] == [416]
    fetch(Remote("file.bin", md5, "all"), tmp_path, [server.url], progress=False)
    assert len(server.log) == 1  # already there and verified: no request


@pytest.mark.skipif(
    not (TEST_DATA / "mnist").is_dir(), reason=f"test data absent: {TEST_DATA / 'mnist'}"
)
def test_mnist_test_files_with_the_published_md5s(server, tmp_path, monkeypatch):
    for p in (TEST_DATA / "mnist").iterdir():
        server.files[f"/mnist/{p.name}"] = p.read_bytes()
    monkeypatch.setenv("ZSPACE_MIRRORS", f"{server.url}/nothing-here/, {server.url}/mnist/")
    dataset, folder = download("MNIST", tmp_path, only="test", progress=False)
    assert folder == tmp_path / "mnist" and dataset.kind == "mnist"
    assert sorted(p.name for p in folder.iterdir()) == [
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]


def test_celeba_and_unknown_names(tmp_path):
    with pytest.raises(ZspaceError) as err:
        download("CelebA", tmp_path)
    assert str(err.value) == CELEBA_MESSAGE and "non-commercial" in CELEBA_MESSAGE
    with pytest.raises(ZspaceError) as err:
        download("imagenet", tmp_path)
    assert str(err.value) == (
        "data download: unknown data set 'imagenet' (known: mnist, "
        "fashion-mnist, kmnist, cifar10, celeba)"
    )
