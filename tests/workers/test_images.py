"""Image loading on real image files, a real local HTTP server and moto's S3 server."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from schemas.images import ImageRef
from streams.broker import free_port
from streams.config import ImageSettings
from tests.support.hostile import IMAGE_URLS
from workers.images import (
    ImageDecodeError,
    ImageError,
    ImageFetchError,
    ImageRefused,
    load_image,
)
from workers.images.decode import decode_image
from workers.images.fetch import check_address, fetch

LOCAL = ImageSettings(allow_networks=["127.0.0.0/8"], timeout_s=2)


def png_bytes(size: tuple[int, int] = (800, 400), mode: str = "RGB", fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, 200 if mode in ("L", "I;16", "CMYK") else (200, 20, 20)).save(
        buf, format=fmt
    )
    return buf.getvalue()


def test_decode_resizes_keeping_aspect() -> None:
    img = decode_image(png_bytes((1000, 500)), ImageSettings())
    assert img.mode == "RGB"
    assert img.size == (500, 250)


@pytest.mark.parametrize(
    ("mode", "fmt"), [("CMYK", "JPEG"), ("I;16", "PNG"), ("RGBA", "PNG"), ("P", "GIF")]
)
def test_unusual_modes_become_rgb(mode: str, fmt: str) -> None:
    assert decode_image(png_bytes((64, 64), mode, fmt), ImageSettings()).mode == "RGB"


def test_animated_gif_uses_first_frame() -> None:
    frames = [Image.new("RGB", (32, 32), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    img = decode_image(buf.getvalue(), ImageSettings())
    assert img.getpixel((5, 5))[0] > 200


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"definitely not an image", "not an image"),
        (png_bytes()[:200], "broken image"),
    ],
)
def test_broken_images_are_refused(data: bytes, reason: str) -> None:
    with pytest.raises(ImageDecodeError, match=reason):
        decode_image(data, ImageSettings())


def test_enormous_dimensions_are_refused_from_the_header() -> None:
    """A 1x1 PNG whose header claims 100000x100000: refused before any pixel is decoded."""
    data = bytearray(png_bytes((1, 1)))
    data[16:24] = struct.pack(">II", 100_000, 100_000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    with pytest.raises(ImageDecodeError, match=r"10000000000 pixels\) exceeds"):
        decode_image(bytes(data), ImageSettings())


def test_decompression_bomb_is_refused() -> None:
    bomb = png_bytes((6000, 6000), "L")  # small file, 36 M pixels
    assert len(bomb) < 200_000
    with pytest.raises(ImageDecodeError, match="pixel limit"):
        decode_image(bomb, ImageSettings(max_pixels=10_000_000))


def test_file_roots_and_sha(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(png_bytes())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    roots = ImageSettings(file_roots=[str(tmp_path)])
    loaded = load_image(ImageRef(url=path.as_uri(), sha256=digest), roots)
    assert loaded.sha256 == digest
    with pytest.raises(ImageRefused, match="outside the allowed file roots"):
        load_image(ImageRef(url=path.as_uri()), ImageSettings(file_roots=["/nonexistent-root"]))
    with pytest.raises(ImageFetchError, match="sha256 mismatch"):
        load_image(ImageRef(url=path.as_uri(), sha256="0" * 64), roots)
    with pytest.raises(ImageFetchError, match="cannot read"):
        load_image(ImageRef(url=(tmp_path / "missing.png").as_uri()), roots)
    with pytest.raises(ImageFetchError, match="exceeds the 1024-byte limit"):
        load_image(ImageRef(url=path.as_uri()), roots.model_copy(update={"max_bytes": 1024}))


def test_file_urls_are_refused_unless_roots_are_configured(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(png_bytes())
    with pytest.raises(ImageRefused, match="file:// images are off"):
        fetch(path.as_uri(), ImageSettings())


def test_only_regular_files_inside_the_roots_are_read(tmp_path: Path) -> None:
    """Devices and FIFOs are refused without reading (/dev/zero never ends, a FIFO blocks);
    a symlink inside a root that leads outside it is refused."""
    with pytest.raises(ImageRefused, match="not a regular file"):
        fetch("file:///dev/null", ImageSettings(file_roots=["/dev"]))
    with pytest.raises(ImageRefused, match="not a regular file"):
        fetch("file:///dev/zero", ImageSettings(file_roots=["/dev"]))
    root = tmp_path / "root"
    root.mkdir()
    fifo = root / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(ImageRefused, match="not a regular file"):
        fetch(fifo.as_uri(), ImageSettings(file_roots=[str(root)]))
    outside = tmp_path / "secret.png"
    outside.write_bytes(png_bytes())
    (root / "link.png").symlink_to(outside)
    with pytest.raises(ImageRefused, match="outside the allowed file roots"):
        fetch((root / "link.png").as_uri(), ImageSettings(file_roots=[str(root)]))
    (root / "loop.png").symlink_to(root / "loop.png")
    with pytest.raises(ImageError):
        fetch((root / "loop.png").as_uri(), ImageSettings(file_roots=[str(root)]))
    (root / "inner.png").write_bytes(png_bytes())
    (root / "link-inside.png").symlink_to(root / "inner.png")
    assert fetch((root / "link-inside.png").as_uri(), ImageSettings(file_roots=[str(root)]))


@pytest.mark.parametrize(
    "ip", ["127.0.0.1", "10.1.2.3", "192.168.0.1", "169.254.169.254", "224.0.0.1", "::1", "0.0.0.0"]
)
def test_non_public_addresses_are_refused(ip: str) -> None:
    with pytest.raises(ImageRefused):
        check_address(ip, [])


@pytest.mark.parametrize(
    ("ip", "carried"),
    [
        ("64:ff9b::a9fe:a9fe", "169.254.169.254"),  # NAT64
        ("64:ff9b::7f00:1", "127.0.0.1"),
        ("2002:a9fe:a9fe::1", "169.254.169.254"),  # 6to4
        ("2002:0a00:0001::1", "10.0.0.1"),
        ("::7f00:1", "127.0.0.1"),  # IPv4-compatible
        ("::a9fe:a9fe", "169.254.169.254"),
        ("::ffff:169.254.169.254", "169.254.169.254"),  # IPv4-mapped
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", ""),  # Teredo, client 127.0.0.1
        ("64:ff9b:1::a9fe:a9fe", ""),  # local-use NAT64
    ],
)
def test_ipv4_carried_in_ipv6_is_checked(ip: str, carried: str) -> None:
    with pytest.raises(ImageRefused, match=rf"not public.*{carried}"):
        check_address(ip, [])


def test_public_ipv4_carried_in_ipv6_passes() -> None:
    for ip in ("64:ff9b::5db8:d822", "2002:5db8:d822::1", "::ffff:93.184.216.34"):
        check_address(ip, [])
    check_address("::ffff:127.0.0.1", ["127.0.0.0/8"])
    check_address("64:ff9b::7f00:1", ["127.0.0.0/8"])


def test_public_and_allow_listed_addresses_pass() -> None:
    check_address("93.184.216.34", [])
    check_address("10.1.2.3", ["10.0.0.0/8"])


def noise_png(size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.effect_noise(size, 80).convert("RGB").save(buf, format="PNG")
    return buf.getvalue()


class _Handler(http.server.BaseHTTPRequestHandler):
    image = noise_png((100, 100))  # ~10 kB: incompressible
    hits: list[str] = []

    def do_GET(self) -> None:
        _Handler.hits.append(self.path)
        if self.path == "/ok.png":
            self.send_response(200)
            self.send_header("Content-Length", str(len(self.image)))
            self.end_headers()
            self.wfile.write(self.image)
        elif self.path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.end_headers()
        elif self.path == "/to-ok":
            self.send_response(301)
            self.send_header("Location", "/ok.png")
            self.end_headers()
        elif self.path == "/slow.png":
            time.sleep(5)
        elif self.path == "/trickle.png":  # slowloris: a byte at a time, never done
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            try:
                for _ in range(300):  # 30 s unless the client gives up
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                return
        elif self.path.startswith("/to-metadata"):
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()
        elif self.path == "/to-malformed":
            self.send_response(302)
            self.send_header("Location", "http://[::1/x.png")
            self.end_headers()
        elif self.path == "/to-bad-port":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:99999/x.png")
            self.end_headers()
        elif self.path.startswith("/to-recorder/"):
            self.send_response(307)
            self.send_header("Location", self.path.removeprefix("/to-recorder/"))
            self.end_headers()
        else:
            self.send_response(404)
            self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def http_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_http_fetch_redirects_and_errors(http_server: str) -> None:
    assert load_image(ImageRef(url=f"{http_server}/ok.png"), LOCAL).image.size == (100, 100)
    assert load_image(ImageRef(url=f"{http_server}/to-ok"), LOCAL).image.size == (100, 100)
    with pytest.raises(ImageFetchError, match="redirect loop"):
        load_image(ImageRef(url=f"{http_server}/loop"), LOCAL)
    with pytest.raises(ImageFetchError, match="HTTP 404"):
        load_image(ImageRef(url=f"{http_server}/missing.png"), LOCAL)
    with pytest.raises(ImageFetchError, match=r"deadline of 0\.5 s"):
        load_image(
            ImageRef(url=f"{http_server}/slow.png"), LOCAL.model_copy(update={"timeout_s": 0.5})
        )
    with pytest.raises(ImageFetchError, match="exceeds"):
        load_image(
            ImageRef(url=f"{http_server}/ok.png"), LOCAL.model_copy(update={"max_bytes": 1024})
        )


def test_slow_servers_meet_the_deadline(http_server: str) -> None:
    settings = LOCAL.model_copy(update={"timeout_s": 0.4})
    with pytest.raises(ImageFetchError, match=r"deadline of 0\.4 s .* while reading the body"):
        load_image(ImageRef(url=f"{http_server}/trickle.png"), settings)
    with (
        Recorder(accept=True) as silent,  # accepts, never answers
        pytest.raises(ImageFetchError, match="while reading the status line and headers"),
    ):
        load_image(ImageRef(url=f"http://127.0.0.1:{silent.port}/x.png"), settings)


class Trickler:
    """A TCP server on 127.0.0.1 that answers every connection with ``head`` at once, then
    ``tail`` repeated one byte every 50 ms, for at most ``seconds`` (then it closes)."""

    def __init__(self, head: bytes, tail: bytes, seconds: float = 6.0) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.head, self.tail, self.seconds = head, tail, seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)  # the request
                conn.sendall(self.head)
                data = self.tail * 1000
                ends = time.monotonic() + self.seconds
                for i in range(len(data)):
                    if self._stop.is_set() or time.monotonic() > ends:
                        break
                    try:
                        conn.sendall(data[i : i + 1])
                    except OSError:
                        break  # the client gave up
                    time.sleep(0.05)

    def __enter__(self) -> Trickler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.mark.parametrize(
    ("head", "tail", "phase"),
    [
        (b"", b"HTTP/1.1 200 OK\r\n", "reading the status line and headers"),
        (b"HTTP/1.1 200 OK\r\n", b"X-Pad: a\r\n", "reading the status line and headers"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"1\r\nx\r\n",
            "reading the body",
        ),
    ],
    ids=["status-line", "headers", "chunked-body"],
)
def test_one_deadline_covers_every_phase_of_a_fetch(head: bytes, tail: bytes, phase: str) -> None:
    """A server trickling bytes within the socket timeout still meets the fetch's deadline."""
    settings = LOCAL.model_copy(update={"timeout_s": 0.5})
    with Trickler(head, tail) as server, pytest.raises(ImageFetchError) as info:
        fetch(f"http://127.0.0.1:{server.port}/x.png", settings)
    assert f"deadline of 0.5 s (images.timeout_s) exceeded while {phase}" in str(info.value)


def test_slow_name_resolution_meets_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    released = threading.Event()
    real = socket.getaddrinfo

    def slow(*args: Any, **kwargs: Any) -> Any:  # a resolver that takes its time
        released.wait(3)
        return real(*args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    try:
        with pytest.raises(ImageFetchError, match="exceeded while resolving the host name"):
            fetch("http://127.0.0.1:9/x.png", LOCAL.model_copy(update={"timeout_s": 0.3}))
    finally:
        released.set()


class Recorder:
    """A TCP listener on all loopback addresses that records every connection made to it;
    ``accept=True`` also holds them open without answering."""

    def __init__(self, accept: bool = False) -> None:
        self.sock = socket.create_server(("0.0.0.0", 0))
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(0.1)
        self.connections: list[tuple[str, int]] = []
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self.sock.accept()
            except TimeoutError:
                continue
            self.connections.append(peer)
            self._held.append(conn)

    def __enter__(self) -> Recorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        for conn in self._held:
            conn.close()
        self.sock.close()


def test_refused_addresses_are_never_connected_to(http_server: str) -> None:
    """Loopback by address, by name and through a redirect from an allowed server: the
    listener sees no connection at all."""
    nothing_allowed = ImageSettings(timeout_s=1)
    only_first = ImageSettings(allow_networks=["127.0.0.1/32"], timeout_s=1)
    with Recorder() as recorder:
        for url in (
            f"http://127.0.0.1:{recorder.port}/a.png",
            f"http://localhost:{recorder.port}/a.png",
            f"http://127.0.0.2:{recorder.port}/a.png",
            f"https://127.0.0.1:{recorder.port}/a.png",
        ):
            with pytest.raises(ImageRefused, match="not public"):
                load_image(ImageRef(url=url), nothing_allowed)
        target = f"http://127.0.0.2:{recorder.port}/a.png"
        with pytest.raises(ImageRefused, match=r"127\.0\.0\.2 is not public"):
            load_image(ImageRef(url=f"{http_server}/to-recorder/{target}"), only_first)
        with pytest.raises(ImageRefused, match=r"169\.254\.169\.254 is not public"):
            load_image(ImageRef(url=f"{http_server}/to-metadata"), only_first)
        time.sleep(0.3)
    assert recorder.connections == []


def test_schemes_other_than_the_allowed_ones_are_refused() -> None:
    for url in ("ftp://example.com/a.png", "gopher://example.com/", "data:image/png;base64,AA"):
        with pytest.raises(ImageRefused, match="not allowed"):
            fetch(url, ImageSettings())


def test_refused_address_is_never_contacted(http_server: str) -> None:
    _Handler.hits.clear()
    with pytest.raises(ImageRefused, match="not public"):
        load_image(ImageRef(url=f"{http_server}/ok.png"), ImageSettings())
    assert _Handler.hits == []


def test_unreachable_server(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(ImageFetchError, match=r"ConnectionRefusedError|failed"):
        load_image(ImageRef(url=f"http://127.0.0.1:{port}/x.png"), LOCAL)


def test_s3_fetch_through_moto_server(moto_s3: str) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto_s3)
    s3.create_bucket(Bucket="images")
    s3.put_object(Bucket="images", Key="p/1.png", Body=png_bytes((60, 30)))
    settings = ImageSettings(s3_endpoint_url=moto_s3, s3_buckets=["images"])
    assert load_image(ImageRef(url="s3://images/p/1.png"), settings).image.size == (60, 30)
    with pytest.raises(ImageFetchError, match=r"NoSuchKey|Not Found|404"):
        load_image(ImageRef(url="s3://images/p/missing.png"), settings)


def test_s3_buckets_outside_the_allow_list_are_refused(moto_s3: str) -> None:
    """The worker's credentials reach other buckets (the adapter registry): only the listed
    ones are read, and none when the list is empty."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto_s3)
    s3.create_bucket(Bucket="registry")
    s3.put_object(Bucket="registry", Key="adapter.png", Body=png_bytes((60, 30)))
    with pytest.raises(ImageRefused, match=r"'registry' is not in images\.s3_buckets"):
        fetch(
            "s3://registry/adapter.png",
            ImageSettings(s3_endpoint_url=moto_s3, s3_buckets=["images"]),
        )
    with pytest.raises(ImageRefused, match="s3:// images are off"):
        fetch("s3://registry/adapter.png", ImageSettings(s3_endpoint_url=moto_s3))


@pytest.mark.parametrize("case", IMAGE_URLS, ids=[c["name"] for c in IMAGE_URLS])
def test_hostile_image_urls_fail_as_image_errors(case: dict[str, str]) -> None:
    """Malformed ports, over-long or invalid host names: a per-image failure with a reason,
    never another exception (which would re-run the whole batch record by record)."""
    with pytest.raises(ImageError, match=case["reason"]):
        load_image(ImageRef(url=case["url"]), LOCAL)


@pytest.mark.parametrize(
    ("path", "reason"),
    [("/to-malformed", "Invalid IPv6 URL"), ("/to-bad-port", "malformed port")],
)
def test_malformed_redirects_fail_as_image_errors(http_server: str, path: str, reason: str) -> None:
    with pytest.raises(ImageError, match=reason):
        fetch(f"{http_server}{path}", LOCAL)
