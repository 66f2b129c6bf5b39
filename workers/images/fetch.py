"""Fetch image bytes for ``file://``, ``http(s)://`` and ``s3://`` references, with limits.

http(s) fetches resolve the host first and refuse loopback, private, link-local (cloud
metadata), multicast and reserved addresses unless ``images.allow_networks`` lists them; the
connection goes to the checked address, and every redirect is checked again.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

from streams.config import ImageSettings
from workers.images.errors import ImageFetchError, ImageRefused

_CHUNK = 64 * 1024


def check_address(ip: str, allow: list[str]) -> None:
    """Refuse non-public addresses unless an allowed network contains them."""
    addr = ipaddress.ip_address(ip)
    if any(addr in ipaddress.ip_network(net, strict=False) for net in allow):
        return
    if not addr.is_global or addr.is_multicast:
        raise ImageRefused(f"address {ip} is not public (loopback/private/link-local/multicast)")


def _resolve(host: str, port: int, allow: list[str]) -> str:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ImageFetchError(f"cannot resolve {host}: {exc}") from None
    addresses = [str(info[4][0]) for info in infos]
    for ip in addresses:  # every address the name resolves to must be allowed
        check_address(ip, allow)
    return addresses[0]


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a pre-checked IP, verifying the certificate against the host name."""

    def __init__(self, host: str, ip: str, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        self._ip = ip

    def connect(self) -> None:
        sock = socket.create_connection((self._ip, self.port), self.timeout)
        context = ssl.create_default_context()
        self.sock = context.wrap_socket(sock, server_hostname=self.host)


def _read_limited(resp: http.client.HTTPResponse, limit: int, deadline: float) -> bytes:
    length = resp.getheader("Content-Length")
    if length and length.isdigit() and int(length) > limit:
        raise ImageFetchError(f"image of {length} bytes exceeds the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            raise ImageFetchError("image download took too long")
        chunk = resp.read1(_CHUNK)  # one recv: a server trickling bytes meets the deadline
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise ImageFetchError(f"image exceeds the {limit}-byte limit")
        chunks.append(chunk)


def fetch_http(url: str, settings: ImageSettings) -> bytes:
    deadline = time.monotonic() + settings.timeout_s * 3
    seen: set[str] = set()
    for _ in range(settings.max_redirects + 1):
        if url in seen:
            raise ImageFetchError(f"redirect loop at {url}")
        seen.add(url)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ImageRefused(f"redirect to a disallowed url {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        ip = _resolve(parts.hostname, port, settings.allow_networks)
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = _PinnedHTTPSConnection(parts.hostname, ip, port=port, timeout=settings.timeout_s)
        else:
            conn = http.client.HTTPConnection(ip, port, timeout=settings.timeout_s)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request("GET", path, headers={"Host": parts.netloc, "User-Agent": "caslie-stream"})
            resp = conn.getresponse()
            if resp.status in (301, 302, 303, 307, 308):
                location = resp.getheader("Location")
                if not location:
                    raise ImageFetchError(f"redirect without Location from {url}")
                url = urljoin(url, location)
                continue
            if resp.status != 200:
                raise ImageFetchError(f"HTTP {resp.status} from {url}")
            return _read_limited(resp, settings.max_bytes, deadline)
        except (OSError, http.client.HTTPException) as exc:
            raise ImageFetchError(f"fetching {url} failed: {type(exc).__name__}: {exc}") from None
        finally:
            conn.close()
    raise ImageFetchError(f"more than {settings.max_redirects} redirects")


def fetch_file(url: str, settings: ImageSettings) -> bytes:
    path = Path(unquote(urlsplit(url).path)).resolve()
    if settings.file_roots and not any(
        path.is_relative_to(Path(root).resolve()) for root in settings.file_roots
    ):
        raise ImageRefused(f"{path} is outside the allowed file roots")
    try:
        size = path.stat().st_size
        if size > settings.max_bytes:
            raise ImageFetchError(
                f"image of {size} bytes exceeds the {settings.max_bytes}-byte limit"
            )
        return path.read_bytes()
    except OSError as exc:
        raise ImageFetchError(f"cannot read {path}: {exc.strerror or exc}") from None


def fetch_s3(url: str, settings: ImageSettings) -> bytes:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    parts = urlsplit(url)
    client = boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        config=Config(
            connect_timeout=settings.timeout_s,
            read_timeout=settings.timeout_s,
            retries={"max_attempts": 2},
        ),
    )
    try:
        obj = client.get_object(Bucket=parts.netloc, Key=parts.path.lstrip("/"))
        if obj["ContentLength"] > settings.max_bytes:
            raise ImageFetchError(
                f"image of {obj['ContentLength']} bytes exceeds the {settings.max_bytes}-byte limit"
            )
        data: bytes = obj["Body"].read(settings.max_bytes + 1)
        return data
    except (BotoCoreError, ClientError) as exc:
        raise ImageFetchError(f"fetching {url} failed: {exc}") from None


def fetch(url: str, settings: ImageSettings) -> bytes:
    scheme = urlsplit(url).scheme
    if scheme in ("http", "https"):
        return fetch_http(url, settings)
    if scheme == "file":
        return fetch_file(url, settings)
    if scheme == "s3":
        return fetch_s3(url, settings)
    raise ImageRefused(f"scheme {scheme!r} is not allowed")
