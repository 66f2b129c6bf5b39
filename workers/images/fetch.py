"""Fetch image bytes for ``file://``, ``http(s)://`` and ``s3://`` references, with limits.

- Every fetch has one wall-clock deadline, ``images.timeout_s``, across all its phases
  (:mod:`workers.images.deadline`).
- http(s): the port and host name are checked first (a malformed port, an IDNA error, a label
  over 63 or a name over 253 characters is refused). The host is resolved within the deadline
  and every address it resolves to must pass :func:`check_address` (loopback, private,
  link-local/cloud metadata, multicast, reserved and IPv4 addresses wrapped in IPv6 are refused
  unless ``images.allow_networks`` lists them); the connection goes to the checked address, and
  every redirect is checked again. URL user info is never sent.
- file://: off unless ``images.file_roots`` lists folders. The path, symlinks resolved, must
  lie inside one of them; only regular files are read (checked on the opened file, so FIFOs and
  devices are refused and never block), and at most ``max_bytes + 1`` bytes.
- s3://: only the buckets listed in ``images.s3_buckets`` (empty: s3 off), read with the
  worker's credentials.

Whatever is wrong with a reference, the error is an :class:`ImageError` (the record's slot gets
no caption), never another exception. URLs in messages are redacted and cut short.
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import os
import socket
import ssl
import stat
import string
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import SplitResult, quote, unquote, urljoin, urlsplit

from streams.config import ImageSettings
from streams.redact import redact_text
from workers.images.addresses import check_address
from workers.images.deadline import Deadline
from workers.images.errors import ImageFetchError, ImageRefused

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["check_address", "fetch", "fetch_file", "fetch_http", "fetch_s3"]

_CHUNK = 64 * 1024
_REDIRECTS = (301, 302, 303, 307, 308)
#: Printable ASCII stays as it is in the request line; anything else is percent-encoded.
_PATH_SAFE = string.punctuation


def _shown(url: str) -> str:
    """``url`` for a message: credentials redacted, at most 200 characters."""
    text = redact_text(url)
    return text if len(text) <= 200 else text[:200] + "…"


def _split(url: str) -> SplitResult:
    try:
        return urlsplit(url)
    except ValueError as exc:
        raise ImageRefused(f"malformed url {_shown(url)!r}: {exc}") from None


@dataclass(frozen=True)
class _Target:
    scheme: str
    #: IDNA (ASCII) host name or IP literal.
    host: str
    port: int
    host_header: str
    #: Path and query for the request line.
    path: str


def _ascii_host(host: str) -> str:
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    try:
        name = host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ImageRefused(f"host name {host[:80]!r} is not valid: {exc}") from None
    labels = name.rstrip(".").split(".")
    if len(name.rstrip(".")) > 253 or any(not 0 < len(label) <= 63 for label in labels):
        raise ImageRefused(
            f"host name {host[:80]!r} is not valid (labels of 1-63 characters, 253 in all)"
        )
    return name


def _target(url: str) -> _Target:
    parts = _split(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImageRefused(f"disallowed url {_shown(url)!r} (http or https with a host)")
    try:
        explicit = parts.port
    except ValueError as exc:
        raise ImageRefused(f"malformed port in {_shown(url)!r}: {exc}") from None
    host = _ascii_host(parts.hostname)
    port = explicit if explicit is not None else (443 if parts.scheme == "https" else 80)
    bare = f"[{host}]" if ":" in host else host
    path = quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query:
        path += "?" + quote(parts.query, safe=_PATH_SAFE)
    return _Target(
        scheme=parts.scheme,
        host=host,
        port=port,
        host_header=bare if explicit is None else f"{bare}:{explicit}",
        path=path,
    )


def _resolve(host: str, port: int, allow: list[str], deadline: Deadline) -> str:
    outcome: list[Any] = []
    done = threading.Event()

    def lookup() -> None:
        try:
            outcome.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except Exception as exc:  # handed to the waiting fetch
            outcome.append(exc)
        finally:
            done.set()

    # getaddrinfo cannot be interrupted: it runs in a thread the fetch waits on only as long
    # as the deadline allows; an abandoned lookup ends with the resolver's own timeout
    threading.Thread(target=lookup, name="image-dns", daemon=True).start()
    if not done.wait(deadline.enter("resolving the host name")):
        raise deadline.exceeded()
    result = outcome[0]
    if isinstance(result, socket.gaierror):
        raise ImageFetchError(f"cannot resolve {host}: {result}")
    if isinstance(result, UnicodeError | ValueError):
        raise ImageRefused(f"cannot resolve {host[:80]!r}: {result}")
    if isinstance(result, Exception):
        raise ImageFetchError(f"cannot resolve {host}: {type(result).__name__}: {result}")
    addresses = [str(info[4][0]) for info in result]
    for ip in addresses:  # every address the name resolves to must be allowed
        check_address(ip, allow)
    return addresses[0]


class _DeadlineReader(io.RawIOBase):
    """A socket's reads, each allowed only the time left of the deadline."""

    def __init__(self, owner: _DeadlineSocket) -> None:
        self._owner = owner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        sock, deadline = self._owner.sock, self._owner.deadline
        sock.settimeout(deadline.remaining())
        try:
            return sock.recv_into(buffer)
        except TimeoutError:
            raise deadline.exceeded() from None

    def close(self) -> None:
        if not self.closed:
            self._owner.reader_closed()
        super().close()


class _DeadlineSocket:
    """What ``http.client`` uses of a socket (sendall, makefile, close), within the deadline:
    a server trickling the status line, headers, chunk sizes or body meets it. As with a
    socket, ``close`` takes effect once the files made from it are closed too."""

    def __init__(self, sock: socket.socket, deadline: Deadline) -> None:
        self.sock = sock
        self.deadline = deadline
        self._readers = 0
        self._closed = False

    def sendall(self, data: bytes) -> None:
        self.sock.settimeout(self.deadline.remaining())  # sendall: one timeout for all
        self.sock.sendall(data)

    def makefile(self, mode: str, *args: object, **kwargs: object) -> io.BufferedReader:
        self._readers += 1
        return io.BufferedReader(_DeadlineReader(self))

    def reader_closed(self) -> None:
        self._readers -= 1
        if self._closed and self._readers == 0:
            self.sock.close()

    def close(self) -> None:
        self._closed = True
        if self._readers == 0:
            self.sock.close()


class _PinnedConnection(http.client.HTTPConnection):
    """HTTP(S) to a pre-checked IP; TLS verifies the certificate against the host name."""

    def __init__(self, target: _Target, ip: str, deadline: Deadline) -> None:
        super().__init__(target.host, target.port)
        self._target = target
        self._ip = ip
        self._deadline = deadline

    def connect(self) -> None:
        sock = socket.create_connection((self._ip, self.port), self._deadline.enter("connecting"))
        try:
            if self._target.scheme == "https":
                sock.settimeout(self._deadline.enter("doing the TLS handshake"))
                context = ssl.create_default_context()
                sock = context.wrap_socket(sock, server_hostname=self._target.host)
        except BaseException:
            sock.close()
            raise
        self._deadline.enter("sending the request")
        # http.client only calls sendall, makefile and close on it
        self.sock = cast(socket.socket, _DeadlineSocket(sock, self._deadline))


def _read_limited(resp: http.client.HTTPResponse, limit: int, deadline: Deadline) -> bytes:
    length = resp.getheader("Content-Length")
    if length and length.isdigit() and int(length) > limit:
        raise ImageFetchError(f"image of {length} bytes exceeds the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    while True:
        deadline.remaining()
        chunk = resp.read1(_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise ImageFetchError(f"image exceeds the {limit}-byte limit")
        chunks.append(chunk)


def fetch_http(url: str, settings: ImageSettings) -> bytes:
    deadline = Deadline(settings.timeout_s)
    seen: set[str] = set()
    for _ in range(settings.max_redirects + 1):
        if url in seen:
            raise ImageFetchError(f"redirect loop at {_shown(url)}")
        seen.add(url)
        target = _target(url)
        ip = _resolve(target.host, target.port, settings.allow_networks, deadline)
        conn = _PinnedConnection(target, ip, deadline)
        resp: http.client.HTTPResponse | None = None
        try:
            headers = {"Host": target.host_header, "User-Agent": "caslie-stream"}
            conn.request("GET", target.path, headers=headers)
            deadline.enter("reading the status line and headers")
            resp = conn.getresponse()
            if resp.status in _REDIRECTS:
                location = resp.getheader("Location")
                if not location:
                    raise ImageFetchError(f"redirect without Location from {_shown(url)}")
                url = urljoin(url, location)
                continue
            if resp.status != 200:
                raise ImageFetchError(f"HTTP {resp.status} from {_shown(url)}")
            deadline.enter("reading the body")
            return _read_limited(resp, settings.max_bytes, deadline)
        except TimeoutError:
            raise deadline.exceeded() from None
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise ImageFetchError(
                f"fetching {_shown(url)} failed: {type(exc).__name__}: {exc}"
            ) from None
        finally:
            if resp is not None:
                resp.close()
            conn.close()
    raise ImageFetchError(f"more than {settings.max_redirects} redirects")


def fetch_file(url: str, settings: ImageSettings) -> bytes:
    if not settings.file_roots:
        raise ImageRefused("file:// images are off: images.file_roots lists no folder")
    parts = _split(url)
    if parts.netloc not in ("", "localhost"):
        raise ImageRefused(f"file:// url with a host ({parts.netloc[:80]!r}) is not allowed")
    raw = unquote(parts.path)
    if "\x00" in raw or not raw.startswith("/"):
        raise ImageRefused(f"file path {raw[:200]!r} is not an absolute path")
    try:  # symlinks followed: where they lead must be inside a root
        path = Path(raw).resolve()
        roots = [Path(root).resolve() for root in settings.file_roots]
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
        raise ImageFetchError(f"cannot resolve {raw[:200]!r}: {exc}") from None
    if not any(path.is_relative_to(root) for root in roots):
        raise ImageRefused(f"{path} is outside the allowed file roots")
    limit = settings.max_bytes
    try:
        # O_NOFOLLOW: the resolved name may not have become a link since; O_NONBLOCK: a FIFO
        # does not block the open (and is refused below)
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise ImageFetchError(f"cannot read {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb", buffering=0) as file:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ImageRefused(f"{path} is not a regular file")
        if info.st_size > limit:
            raise ImageFetchError(f"image of {info.st_size} bytes exceeds the {limit}-byte limit")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:  # never more than limit + 1 bytes, whatever fstat said
            try:
                chunk = file.read(min(_CHUNK, limit + 1 - size))
            except OSError as exc:
                raise ImageFetchError(f"cannot read {path}: {exc.strerror or exc}") from None
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    if size > limit:  # grew since fstat
        raise ImageFetchError(f"image exceeds the {limit}-byte limit")
    return b"".join(chunks)


def fetch_s3(url: str, settings: ImageSettings) -> bytes:
    parts = _split(url)
    bucket = parts.netloc
    if not settings.s3_buckets:
        raise ImageRefused("s3:// images are off: images.s3_buckets lists no bucket")
    if bucket not in settings.s3_buckets:
        raise ImageRefused(f"s3 bucket {bucket[:80]!r} is not in images.s3_buckets")

    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    deadline = Deadline(settings.timeout_s)
    left = deadline.enter("requesting the object")
    client = boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        config=Config(connect_timeout=left, read_timeout=left, retries={"max_attempts": 2}),
    )
    try:
        obj = client.get_object(Bucket=bucket, Key=parts.path.lstrip("/"))
        if obj["ContentLength"] > settings.max_bytes:
            raise ImageFetchError(
                f"image of {obj['ContentLength']} bytes exceeds the {settings.max_bytes}-byte limit"
            )
        chunks: list[bytes] = []
        size = 0
        deadline.enter("reading the body")
        while chunk := obj["Body"].read(_CHUNK):
            deadline.remaining()
            size += len(chunk)
            if size > settings.max_bytes:
                raise ImageFetchError(f"image exceeds the {settings.max_bytes}-byte limit")
            chunks.append(chunk)
        return b"".join(chunks)
    except (BotoCoreError, ClientError) as exc:
        raise ImageFetchError(f"fetching {_shown(url)} failed: {exc}") from None


def fetch(url: str, settings: ImageSettings) -> bytes:
    scheme = _split(url).scheme
    if scheme in ("http", "https"):
        return fetch_http(url, settings)
    if scheme == "file":
        return fetch_file(url, settings)
    if scheme == "s3":
        return fetch_s3(url, settings)
    raise ImageRefused(f"scheme {scheme!r} is not allowed")
