"""Image sources and derivative caches: S3 (boto3), local disk and memory, with key safety.

Every key goes through :func:`safe_key` before any read or write, and the disk store also checks
the resolved path, so nothing outside a store's root can be read or written.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import io
import logging
import os
import re
import stat
import tempfile
import threading
import unicodedata
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

from .config import StoreSpec
from .errors import ImageRejectedError, SourceNotFoundError, StoreError, UnsafeURIError

log = logging.getLogger(__name__)

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
MAX_KEY_BYTES = 900


def safe_key(uri: str) -> str:
    """Return ``uri`` as a store-relative key, or raise :class:`UnsafeURIError` saying why.

    The one key rule of docs/contracts.md ("Keys: one rule for trigger and tool"), which the
    trigger applies too. Refused: empty keys; keys over 900 UTF-8 bytes (so that every derivative
    key and the report key stay within S3's 1024); control characters (Unicode Cc) and lone
    surrogates; backslashes; a leading ``/`` or ``-``; ``//``; ``.`` or ``..`` segments; and any
    URI scheme (``s3://``, ``file://``...: only keys relative to the configured source).
    """
    if not isinstance(uri, str) or not uri:
        raise UnsafeURIError("empty URI")
    if any(unicodedata.category(ch) == "Cc" for ch in uri):
        raise UnsafeURIError(f"URI {uri!r} contains control characters")
    if any("\ud800" <= ch <= "\udfff" for ch in uri):
        raise UnsafeURIError(f"URI {uri!r} is not valid Unicode (a lone surrogate)")
    size = len(uri.encode("utf-8"))
    if size > MAX_KEY_BYTES:
        raise UnsafeURIError(f"URI {uri[:40]!r}... is {size} bytes, over {MAX_KEY_BYTES} bytes")
    if _SCHEME.match(uri):
        raise UnsafeURIError(f"URI {uri!r} has a scheme; give a key relative to the source")
    if "\\" in uri:
        raise UnsafeURIError(f"URI {uri!r} contains a backslash")
    if uri.startswith("/"):
        raise UnsafeURIError(f"URI {uri!r} is an absolute path")
    if uri.startswith("-"):
        raise UnsafeURIError(f"URI {uri!r} starts with '-' (it would read as a flag)")
    if "//" in uri:
        raise UnsafeURIError(f"URI {uri!r} contains '//' (an empty segment)")
    if any(seg in (".", "..") for seg in uri.split("/")):
        raise UnsafeURIError(f"URI {uri!r} contains a '.' or '..' segment")
    return uri


class Store(Protocol):
    """A flat key → bytes store."""

    def read(self, key: str) -> bytes:
        """Return the bytes at ``key``; raise :class:`SourceNotFoundError` if absent."""
        ...

    def write(
        self, key: str, data: bytes, content_type: str, cache_control: str | None = None
    ) -> None:
        """Store ``data`` at ``key`` (replacing it), with its Content-Type and, where the store
        serves HTTP headers (S3), its Cache-Control."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""
        ...

    def download(self, key: str, handle: BinaryIO, max_bytes: int) -> Downloaded:
        """Stream the object at ``key`` into ``handle`` (never whole in memory), refusing it from
        its metadata, before reading, when it is over ``max_bytes`` (0 = no limit)."""
        ...

    def existing(self, keys: Collection[str]) -> set[str]:
        """Those of ``keys`` that are already stored (when unknown, all of them: a caller that
        deletes only what did not exist before then deletes nothing)."""
        ...


@dataclass(frozen=True)
class Downloaded:
    """What :meth:`Store.download` wrote: the byte count and their sha1 (hex); and the object's
    ETag (without quotes) where the store has one (S3), for the ledger."""

    size: int
    sha1: str
    etag: str | None = None


CHUNK = 1 << 20


def too_large(size: int, max_bytes: int) -> ImageRejectedError:
    """The error of an object over the size limit (wording shared with the trigger)."""
    return ImageRejectedError(f"too large: {size} bytes > limit {max_bytes} bytes")


def _check_size(size: int, max_bytes: int) -> None:
    if max_bytes and size > max_bytes:
        raise too_large(size, max_bytes)


def copy_stream(source: BinaryIO, handle: BinaryIO, max_bytes: int) -> Downloaded:
    """Copy ``source`` to ``handle`` in chunks, hashing as it goes; stops with the size error if
    more arrives than the limit (the object grew after its size was checked)."""
    digest = hashlib.sha1()  # noqa: S324 - go-iiif's fingerprint is sha1
    count = 0
    while chunk := source.read(CHUNK):
        count += len(chunk)
        _check_size(count, max_bytes)
        digest.update(chunk)
        handle.write(chunk)
    return Downloaded(count, digest.hexdigest())


class MemoryStore:
    """A store in process memory (``mem://``); named stores are shared within the process."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.objects: dict[str, bytes] = {}
        # Each object's Content-Type and Cache-Control, kept as S3 keeps them (for inspection).
        self.headers: dict[str, tuple[str, str | None]] = {}
        self._lock = threading.Lock()

    def read(self, key: str) -> bytes:
        safe_key(key)
        with self._lock:
            if key not in self.objects:
                raise SourceNotFoundError(f"source object not found: mem://{self.name}/{key}")
            return self.objects[key]

    def write(
        self, key: str, data: bytes, content_type: str, cache_control: str | None = None
    ) -> None:
        safe_key(key)
        with self._lock:
            self.objects[key] = bytes(data)
            self.headers[key] = (content_type, cache_control)

    def delete(self, key: str) -> None:
        with self._lock:
            self.objects.pop(key, None)
            self.headers.pop(key, None)

    def download(self, key: str, handle: BinaryIO, max_bytes: int) -> Downloaded:
        data = self.read(key)
        _check_size(len(data), max_bytes)
        return copy_stream(io.BytesIO(data), handle, max_bytes)

    def existing(self, keys: Collection[str]) -> set[str]:
        with self._lock:
            return {key for key in keys if key in self.objects}


_MEMORY: dict[str, MemoryStore] = {}
_MEMORY_LOCK = threading.Lock()


def memory_store(name: str = "") -> MemoryStore:
    """The process-wide memory store called ``name`` (created on first use)."""
    with _MEMORY_LOCK:
        return _MEMORY.setdefault(name, MemoryStore(name))


# Derivatives and reports on disk: readable by all (a web server's user), as go-iiif writes them;
# the folders made for them likewise, whatever the process's umask.
FILE_MODE = 0o644
DIR_MODE = 0o755


def _make_dirs(directory: str) -> None:
    """``os.makedirs`` whose new folders get :data:`DIR_MODE` whatever the umask."""
    missing: list[str] = []
    path = directory
    while not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for path in reversed(missing):
        try:
            os.mkdir(path)
        except FileExistsError:
            continue  # made meanwhile by another worker
        os.chmod(path, DIR_MODE)


class DiskStore:
    """A directory on local disk (``file:///dir``, seed ``Disk``)."""

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)

    def _path(self, key: str) -> str:
        safe_key(key)
        path = os.path.realpath(os.path.join(self.root, key))
        if not path.startswith(self.root + os.sep):
            raise UnsafeURIError(f"key {key!r} resolves outside {self.root}")
        return path

    def read(self, key: str) -> bytes:
        path = self._path(key)
        try:
            with open(path, "rb") as handle:
                return handle.read()
        except (FileNotFoundError, NotADirectoryError):
            raise SourceNotFoundError(f"source object not found: file://{path}") from None
        except IsADirectoryError:
            raise SourceNotFoundError(f"source object is a directory: file://{path}") from None
        except OSError as exc:
            raise StoreError(f"cannot read file://{path}: {exc.strerror or exc}") from exc

    def write(
        self, key: str, data: bytes, content_type: str, cache_control: str | None = None
    ) -> None:
        """Write a file atomically, mode 0644. A file has no headers: the Content-Type and
        Cache-Control are ignored (the web server in front of the folder decides them)."""
        path = self._path(key)
        directory = os.path.dirname(path)
        try:
            _make_dirs(directory)
            # Re-check after creating directories: a symlink planted on the way must not lead out.
            real = os.path.realpath(directory)
            if real != self.root and not real.startswith(self.root + os.sep):
                raise UnsafeURIError(f"key {key!r} resolves outside {self.root}")
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
            try:
                # 0644 whatever the umask, as go-iiif writes them (mkstemp makes 0600).
                os.fchmod(fd, FILE_MODE)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                # Atomic: readers see the old object or the whole new one, never a partial file.
                os.replace(tmp, path)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise StoreError(f"cannot write file://{path}: {exc.strerror or exc}") from exc

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(key))

    def local_path(self, key: str, max_bytes: int) -> tuple[str, int]:
        """The file holding ``key`` and its size, checked against ``max_bytes`` (0 = no limit)
        from ``stat`` before anything is read: a disk source is decoded in place, not copied."""
        path = self._path(key)
        try:
            info = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            raise SourceNotFoundError(f"source object not found: file://{path}") from None
        except OSError as exc:
            raise StoreError(f"cannot read file://{path}: {exc.strerror or exc}") from exc
        if stat.S_ISDIR(info.st_mode):
            raise SourceNotFoundError(f"source object is a directory: file://{path}")
        _check_size(info.st_size, max_bytes)
        return path, info.st_size

    def download(self, key: str, handle: BinaryIO, max_bytes: int) -> Downloaded:
        path, _ = self.local_path(key, max_bytes)
        try:
            with open(path, "rb") as source:
                return copy_stream(source, handle, max_bytes)
        except OSError as exc:
            raise StoreError(f"cannot read file://{path}: {exc.strerror or exc}") from exc

    def existing(self, keys: Collection[str]) -> set[str]:
        return {key for key in keys if os.path.lexists(self._path(key))}


class S3Store:
    """An S3 bucket and prefix (``s3blob://``, ``s3://``, seed ``S3``), through boto3.

    boto3 honours ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3`` itself, so the same code runs
    against an emulator. The client is created lazily and shared (boto3 clients are thread-safe).
    """

    def __init__(
        self, bucket: str, prefix: str = "", region: str | None = None, client: Any = None
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.region = region
        self._client = client
        self._lock = threading.Lock()
        # A store given its client (tests, moto in-process) stays in this process; one that makes
        # its own client can be reopened by a worker process (see __getstate__).
        self.portable = client is None

    def __getstate__(self) -> dict[str, Any]:
        if not self.portable:
            raise TypeError("an S3Store given its own client cannot move to another process")
        return {"bucket": self.bucket, "prefix": self.prefix, "region": self.region}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["bucket"], state["prefix"], state["region"])  # type: ignore[misc]

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config as BotoConfig

                self._client = boto3.session.Session().client(
                    "s3",
                    region_name=self.region,
                    config=BotoConfig(retries={"mode": "standard"}, max_pool_connections=32),
                )
            return self._client

    def _key(self, key: str) -> str:
        return self.prefix + safe_key(key)

    def read(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        full = self._key(key)
        try:
            return self.client.get_object(Bucket=self.bucket, Key=full)["Body"].read()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise SourceNotFoundError(
                    f"source object not found: s3://{self.bucket}/{full}"
                ) from None
            raise StoreError(f"cannot read s3://{self.bucket}/{full}: {code or exc}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"cannot read s3://{self.bucket}/{full}: {exc}") from exc

    def write(
        self, key: str, data: bytes, content_type: str, cache_control: str | None = None
    ) -> None:
        """PutObject with ContentType, and CacheControl when given."""
        from botocore.exceptions import BotoCoreError, ClientError

        full = self._key(key)
        extra = {"CacheControl": cache_control} if cache_control else {}
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=full, Body=data, ContentType=content_type, **extra
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise StoreError(f"cannot write s3://{self.bucket}/{full}: {code or exc}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"cannot write s3://{self.bucket}/{full}: {exc}") from exc

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def download(self, key: str, handle: BinaryIO, max_bytes: int) -> Downloaded:
        """GetObject, with the size checked from the response's Content-Length before the body
        is read (no HeadObject: one request, and no s3:ListBucket needed to tell 404 from 403)."""
        from botocore.exceptions import BotoCoreError, ClientError

        full = self._key(key)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=full)
            body = response["Body"]
            try:
                size = int(response.get("ContentLength", 0))
                _check_size(size, max_bytes)
                done = copy_stream(body, handle, max_bytes)
            finally:
                body.close()
            etag = str(response.get("ETag") or "").strip('"') or None
            return Downloaded(done.size, done.sha1, etag)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise SourceNotFoundError(
                    f"source object not found: s3://{self.bucket}/{full}"
                ) from None
            raise StoreError(f"cannot read s3://{self.bucket}/{full}: {code or exc}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"cannot read s3://{self.bucket}/{full}: {exc}") from exc

    def existing(self, keys: Collection[str]) -> set[str]:
        """One ListObjectsV2 over the keys' common prefix (an image's derivatives share one);
        when listing is refused, every key counts as existing, so nothing is deleted."""
        from botocore.exceptions import BotoCoreError, ClientError

        full = {self._key(key): key for key in keys}
        if not full:
            return set()
        prefix = os.path.commonprefix(list(full))  # noqa: RUF071 - S3 prefixes are strings
        found: set[str] = set()
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                found.update(o["Key"] for o in page.get("Contents", []) if o["Key"] in full)
        except (ClientError, BotoCoreError) as exc:
            log.warning(
                "cannot list existing objects; a failed write will delete nothing",
                extra={"bucket": self.bucket, "prefix": prefix, "error": str(exc)},
            )
            return set(keys)
        return {full[k] for k in found}


@functools.cache
def _takes_cache_control(kind: type) -> bool:
    """Whether a store class's ``write`` has the ``cache_control`` parameter (a store written
    before it existed, outside this module, still works: it gets no Cache-Control)."""
    try:
        parameters = inspect.signature(kind.write).parameters
    except (TypeError, ValueError):
        return False
    return "cache_control" in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


def write_object(
    store: Store, key: str, data: bytes, content_type: str, cache_control: str | None = None
) -> None:
    """``store.write`` with the Cache-Control when there is one and the store takes it."""
    if cache_control is not None and _takes_cache_control(type(store)):
        store.write(key, data, content_type, cache_control=cache_control)
    else:
        store.write(key, data, content_type)


def open_store(spec: StoreSpec) -> Store:
    """Open the store a :class:`StoreSpec` describes."""
    if spec.kind == "s3":
        return S3Store(spec.bucket, spec.prefix, spec.region)
    if spec.kind == "disk":
        return DiskStore(spec.path)
    if spec.kind == "memory":
        return memory_store(spec.path)
    raise StoreError(f"unsupported store kind {spec.kind!r}")


@dataclass(frozen=True)
class LocalSource:
    """A source object as a file on local disk: its path, size, and sha1 when already known;
    its ETag when the store has one (S3)."""

    path: str
    size: int
    sha1: str | None
    etag: str | None = None


def file_sha1(path: str) -> str:
    """The hex sha1 of a file, read in chunks."""
    digest = hashlib.sha1()  # noqa: S324 - go-iiif's fingerprint is sha1
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def local_source(store: Store, key: str, max_bytes: int) -> Iterator[LocalSource]:
    """The object at ``key`` as a local file for the duration of the block, refused from its size
    before any read when over ``max_bytes`` (0 = no limit).

    A disk store's file is used in place. Any other object is streamed (hashed on the way) into a
    temporary file in ``TMPDIR`` (the task's ephemeral storage on Fargate) that has no name: it is
    read through ``/proc/self/fd``, so its space is freed when the block ends however it ends,
    even when the process is killed mid-image (out of memory, SIGKILL).
    """
    if isinstance(store, DiskStore):
        path, size = store.local_path(key, max_bytes)
        yield LocalSource(path, size, None)
        return
    named = not os.path.isdir("/proc/self/fd")  # no /proc (not Linux): a named file instead
    with contextlib.ExitStack() as stack:
        try:
            if named:
                handle = stack.enter_context(tempfile.NamedTemporaryFile(prefix="iiif-source-"))
            else:
                handle = stack.enter_context(tempfile.TemporaryFile())
            done = store.download(key, handle, max_bytes)  # type: ignore[arg-type]
            handle.flush()
        except OSError as exc:
            raise StoreError(f"cannot copy {key} to local disk: {exc.strerror or exc}") from exc
        path = handle.name if named else f"/proc/self/fd/{handle.fileno()}"
        yield LocalSource(path, done.size, done.sha1, done.etag)
