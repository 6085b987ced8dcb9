"""Which S3 keys may become `-uri` arguments of a task, and why the others may not."""

from __future__ import annotations

import posixpath
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

SUPPORTED_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "tif", "tiff", "gif", "webp"})
# docs/contracts.md "Keys: one rule for trigger and tool": 900 bytes keeps every derivative key
# ({key}/{region}/{size}/{rotation}/{quality}.{format}, {key}/{report}) within S3's 1024.
MAX_KEY_BYTES = 900
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True)
class KeyVerdict:
    """Why a key is not processed: ``outcome`` is "skipped" (nothing to do) or "failed" (bad)."""

    outcome: str
    reason: str


def unsafe_reason(key: str) -> str | None:
    """Return why ``key`` may not become a ``-uri``, or None if it may.

    The rule of docs/contracts.md, which iiif-process applies too: a key the container would
    refuse must not cost a task.
    """
    if key == "":
        return "empty key"
    size = len(key.encode("utf-8", errors="surrogatepass"))
    if size > MAX_KEY_BYTES:
        return f"key is {size} bytes long; at most {MAX_KEY_BYTES} are allowed"
    if any(unicodedata.category(char) == "Cc" for char in key):
        return "key contains a control character"
    if any(unicodedata.category(char) == "Cs" for char in key):
        return "key contains a lone surrogate (not valid UTF-8)"
    if "\\" in key:
        return "key contains a backslash"
    if key.startswith("/"):
        return "key starts with '/'"
    if key.startswith("-"):
        # A leading dash would be read as an option by iiif-process.
        return "key starts with '-'"
    if _SCHEME.match(key):
        return "key starts with a URI scheme ('name://')"
    if "//" in key:
        return "key contains '//'"
    segments = key.split("/")
    if "." in segments:
        return "key contains a '.' segment"
    if ".." in segments:
        return "key contains a '..' segment"
    return None


def check_key(key: str, size: int | None = None, max_source_bytes: int = 0) -> KeyVerdict | None:
    """Return None if ``key`` should be processed, else the verdict with its reason.

    Unsafe keys fail; folder placeholders, empty objects, unsupported types and objects over
    ``max_source_bytes`` (0 = no limit; known only when the event gives ``size``) are skipped.
    """
    reason = unsafe_reason(key)
    if reason is not None:
        return KeyVerdict("failed", f"unsafe key: {reason}")
    if key.endswith("/"):
        return KeyVerdict("skipped", "folder placeholder (key ends with '/')")
    if size == 0:
        return KeyVerdict("skipped", "zero-byte object")
    extension = posixpath.splitext(key)[1].lstrip(".").lower()
    if extension not in SUPPORTED_EXTENSIONS:
        shown = f"'.{extension}'" if extension else "no extension"
        return KeyVerdict(
            "skipped",
            f"unsupported file type ({shown}); supported: "
            + ", ".join(sorted(SUPPORTED_EXTENSIONS)),
        )
    if max_source_bytes and size is not None and size > max_source_bytes:
        # The same words as iiif-process, which refuses the object from its metadata too.
        return KeyVerdict("skipped", f"too large: {size} bytes > limit {max_source_bytes} bytes")
    return None


def strip_path(key: str) -> str:
    """The seed's -strip-paths: keep only the file name."""
    return posixpath.basename(key)


def strip_path_collisions(keys: Iterable[str]) -> dict[str, str]:
    """Map each key whose file name is shared with a different key to the reason it fails.

    Under -strip-paths two such keys would write their derivatives to the same place.
    """
    by_name: dict[str, set[str]] = {}
    for key in keys:
        by_name.setdefault(strip_path(key), set()).add(key)
    reasons: dict[str, str] = {}
    for name, group in by_name.items():
        if len(group) > 1:
            others = sorted(group)
            for key in others:
                rivals = ", ".join(repr(other) for other in others if other != key)
                reasons[key] = (
                    f"-strip-paths: file name {name!r} is shared with {rivals}; "
                    "their derivatives would overwrite each other"
                )
    return reasons
