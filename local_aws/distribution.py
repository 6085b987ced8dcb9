"""The local stand-in for the stack's CloudFront distribution (issue #11).

moto's CloudFormation does not model `AWS::CloudFront::*`, so the embedded AWS cannot create the
distribution that serves the private derivatives bucket to IIIF viewers. `LocalDistribution`
plays it: a static HTTP server on localhost that answers GET and HEAD with the bucket's objects
(their Content-Type and Cache-Control as stored, as CloudFront passes them on), adds the CORS
headers of the stack's response-headers policy (`Access-Control-Allow-Origin: *`; methods GET,
HEAD, OPTIONS) and answers CORS preflights. A key that is not in the bucket is 403, as CloudFront
with origin access control and read-only access answers it. Its URL is deployed as the stack's
`publicBaseUrl`, so the task definition hands it to the task and the stack's `PublicBaseUrl`
output names it.

Plain HTTP on purpose: a browser would refuse a self-signed certificate, and the deployed stack's
HTTPS (a redirect at CloudFront) is asserted on the template instead.

The objects come from an `ObjectSource`: `S3Objects` (the embedded AWS's derivatives bucket, while
it runs) or `FolderObjects` (a copy on disk, for `python -m local_aws.viewer` after `make demo`).
"""

from __future__ import annotations

import mimetypes
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from botocore.exceptions import ClientError

from local_aws.server import EmbeddedAws, free_localhost_port

#: The CORS headers of the stack's response-headers policy (stacks/distribution.py).
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "*",
    "Access-Control-Max-Age": "86400",
}
#: Its security header that makes sense over plain HTTP (HSTS does not).
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff"}
IMAGE_PROFILE = 'application/ld+json;profile="http://iiif.io/api/image/{}/context.json"'
PRESENTATION_PROFILE = (
    'application/ld+json;profile="http://iiif.io/api/presentation/3/context.json"'
)


@dataclass(frozen=True)
class StoredObject:
    """One object as the origin returns it."""

    body: bytes
    content_type: str
    cache_control: str | None = None
    etag: str | None = None


class ObjectSource(Protocol):
    """Where the distribution reads objects; None = no such key."""

    def get(self, key: str) -> StoredObject | None: ...

    def describe(self) -> str: ...


class S3Objects:
    """The derivatives bucket of the stack whose `PublicBaseUrl` output is `base_url`.

    Looked up in CloudFormation on first use (the stack is deployed after the distribution
    starts, since its URL is a deploy setting) and again when the bucket has gone (the emulator
    was reset and the stack deployed anew).
    """

    def __init__(self, aws: EmbeddedAws, base_url: str) -> None:
        self._aws = aws
        self._base_url = base_url
        self._s3 = aws.client("s3")
        self._bucket: str | None = None
        self._lock = threading.Lock()

    def describe(self) -> str:
        return f"the derivatives bucket of the stack whose PublicBaseUrl is {self._base_url}"

    def bucket(self, refresh: bool = False) -> str | None:
        """The bucket's name, or None while no deployed stack names this distribution."""
        with self._lock:
            if self._bucket is None or refresh:
                self._bucket = self._find_bucket()
            return self._bucket

    def _find_bucket(self) -> str | None:
        cloudformation = self._aws.client("cloudformation")
        for stack in cloudformation.describe_stacks().get("Stacks", []):
            outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
            if outputs.get("PublicBaseUrl") == self._base_url:
                return outputs.get("DerivativesBucketName")
        return None

    def get(self, key: str) -> StoredObject | None:
        for refresh in (False, True):
            bucket = self.bucket(refresh=refresh)
            if bucket is None:
                continue
            try:
                response = self._s3.get_object(Bucket=bucket, Key=key)
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code")
                if code == "NoSuchBucket":
                    continue  # deployed anew since: look the bucket up again
                if code in ("NoSuchKey", "404"):
                    return None
                raise
            return StoredObject(
                body=response["Body"].read(),
                content_type=response.get("ContentType") or "binary/octet-stream",
                cache_control=response.get("CacheControl"),
                etag=response.get("ETag"),
            )
        return None


class FolderObjects:
    """Objects copied to disk (`aws s3 cp --recursive`), which keeps no Content-Type: it is
    told from the name as the task writes it (docs/contracts.md, "Deep zoom")."""

    def __init__(self, root: Path) -> None:
        self._root = root.resolve()

    def describe(self) -> str:
        return f"the files under {self._root}"

    def get(self, key: str) -> StoredObject | None:
        path = (self._root / key).resolve()
        if not path.is_relative_to(self._root) or not path.is_file():
            return None
        body = path.read_bytes()
        return StoredObject(body=body, content_type=self.content_type(path.name, body))

    @staticmethod
    def content_type(name: str, body: bytes) -> str:
        if name == "info.json":
            version = "2" if b"iiif.io/api/image/2/" in body else "3"
            return IMAGE_PROFILE.format(version)
        if name == "manifest.json":
            return PRESENTATION_PROFILE
        guessed, _ = mimetypes.guess_type(name)
        return guessed or "application/octet-stream"


def object_key(path: str) -> str:
    """The S3 key of a request path: the path without its leading '/', percent-decoded once
    (as CloudFront hands it to S3); the query string is not part of it."""
    return unquote(urlsplit(path).path.lstrip("/"))


class _Handler(BaseHTTPRequestHandler):
    server: _DistributionServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a viewer fetches hundreds of tiles; the demo's output stays readable

    def _cors(self) -> None:
        for name, value in {**CORS_HEADERS, **SECURITY_HEADERS}.items():
            self.send_header(name, value)

    def do_OPTIONS(self) -> None:
        self.send_response(HTTPStatus.OK)
        self._cors()
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        self._answer(with_body=True)

    def do_HEAD(self) -> None:
        self._answer(with_body=False)

    def _refuse(self, status: HTTPStatus, message: str) -> None:
        body = (
            "<?xml version='1.0' encoding='UTF-8'?>\n<Error><Code>AccessDenied</Code>"
            f"<Message>{message}</Message></Error>\n"
        ).encode()
        self.send_response(status)
        self._cors()
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.server.requests.append((self.command, self.path, int(status)))

    def _answer(self, with_body: bool) -> None:
        key = object_key(self.path)
        stored = self.server.objects.get(key) if key else None
        if stored is None:
            # CloudFront with OAC and no s3:ListBucket: S3 answers 403 for a missing key.
            self._refuse(HTTPStatus.FORBIDDEN, "Access Denied")
            return
        self.send_response(HTTPStatus.OK)
        self._cors()
        self.send_header("Content-Type", stored.content_type)
        self.send_header("Content-Length", str(len(stored.body)))
        if stored.cache_control:
            self.send_header("Cache-Control", stored.cache_control)
        if stored.etag:
            self.send_header("ETag", stored.etag)
        self.end_headers()
        if with_body:
            self.wfile.write(stored.body)
        self.server.requests.append((self.command, self.path, 200))


class _DistributionServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, objects: ObjectSource) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.objects = objects
        self.requests: list[tuple[str, str, int]] = []


class LocalDistribution:
    """A running stand-in: `url` (no trailing slash) serves `objects`."""

    def __init__(self, server: _DistributionServer) -> None:
        self._server = server
        self.url = f"http://localhost:{server.server_address[1]}"

    @property
    def objects(self) -> ObjectSource:
        return self._server.objects

    @property
    def requests(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request answered, in order."""
        return self._server.requests


@contextmanager
def local_distribution(
    objects: ObjectSource | None = None, aws: EmbeddedAws | None = None, port: int | None = None
) -> Iterator[LocalDistribution]:
    """Serve `objects` (default: `S3Objects` of `aws` for this URL) on `port` (default: a free
    one) for the duration of the `with` block."""
    port = port or free_localhost_port()
    source = objects
    if source is None:
        if aws is None:
            raise ValueError("local_distribution needs objects or the embedded AWS to read from")
        source = S3Objects(aws, f"http://localhost:{port}")
    try:
        server = _DistributionServer(port, source)
    except OSError as error:
        raise OSError(
            f"the local CloudFront stand-in cannot listen on port {port}: {error}"
        ) from None
    thread = threading.Thread(target=server.serve_forever, name="distribution", daemon=True)
    thread.start()
    try:
        yield LocalDistribution(server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def port_of(url: str) -> int:
    """The port of a `http://localhost:PORT` base URL."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in ("localhost", "127.0.0.1") or not parts.port:
        raise ValueError(f"{url!r} is not a local stand-in's URL (http://localhost:PORT)")
    return parts.port
