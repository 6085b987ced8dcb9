"""A store whose ``write`` signature cannot be read is written without a Cache-Control."""

from __future__ import annotations

from typing import Any

from iiif_process.stores import write_object


class _OpaqueWrite:
    """A callable ``inspect.signature`` refuses (as some C-implemented callables are)."""

    __signature__ = "unreadable"

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append((args, kwargs))


class _OpaqueStore:
    write = _OpaqueWrite()


def test_a_write_of_unknown_signature_gets_no_cache_control() -> None:
    write_object(_OpaqueStore(), "k/info.json", b"{}", "application/json", "max-age=60")
    assert _OpaqueStore.write.calls == [(("k/info.json", b"{}", "application/json"), {})]
