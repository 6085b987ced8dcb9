"""Undoing a failed run: its objects deleted several at once (never more than asked), only the
documents it replaced written back (issue #13)."""

from __future__ import annotations

import threading

import pytest
from iiif_process.errors import StoreError
from iiif_process.publish import Item, publish, remove_objects
from iiif_process.stores import MemoryStore


class _MeetingStore(MemoryStore):
    """A memory store whose deletes wait (a second at most) until ``meet`` deletes are under way
    together, and note the most that ever were."""

    def __init__(self, meet: int) -> None:
        super().__init__()
        self.barrier = threading.Barrier(meet, timeout=1.0)
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0

    def delete(self, key: str) -> None:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            self.barrier.wait()
        except threading.BrokenBarrierError:
            pass
        finally:
            with self.lock:
                self.running -= 1
        super().delete(key)


def _written(store: MemoryStore, keys: str) -> list[tuple[MemoryStore, str]]:
    for key in keys:
        store.write(key, b"x", "image/jpeg")
    return [(store, key) for key in keys]


def test_two_objects_are_deleted_at_the_same_time() -> None:
    store = _MeetingStore(meet=2)
    remove_objects(_written(store, "ab"), 4, {"uri": "img.jpg"})
    assert store.most == 2


def test_deletes_never_exceed_the_workers() -> None:
    store = _MeetingStore(meet=3)
    remove_objects(_written(store, "abcdef"), 2, {"uri": "img.jpg"})
    assert store.most == 2


@pytest.mark.parametrize("workers", [1, 4])
def test_every_object_is_deleted(workers: int) -> None:
    store = _MeetingStore(meet=1)
    remove_objects(_written(store, "abc"), workers, {"uri": "img.jpg"})
    assert store.objects == {}


class _RefusingStore(MemoryStore):
    """A memory store that refuses to write one key (a real error of the store's kind)."""

    def __init__(self, refused: str) -> None:
        super().__init__()
        self.refused = refused

    def write(
        self, key: str, data: bytes, content_type: str, cache_control: str | None = None
    ) -> None:
        if key == self.refused:
            raise StoreError(f"cannot write {key}")
        super().write(key, data, content_type, cache_control)


def _failed_rerun(restore: bool) -> _RefusingStore:
    """Publish ``img.jpg`` (``restore`` as given) then ``info.json``, which is refused, over an
    earlier run's objects."""
    store = _RefusingStore("info.json")
    store.write("img.jpg", b"old image", "image/jpeg")
    phases = [
        [Item(store, "img.jpg", b"new image", "image/jpeg", restore=restore)],
        [Item(store, "info.json", b"{}", "application/json")],
    ]
    with pytest.raises(StoreError):
        publish("img.jpg", phases)
    return store


def test_a_failed_publication_leaves_a_replaced_image_replaced() -> None:
    assert _failed_rerun(restore=False).objects["img.jpg"] == b"new image"


def test_a_failed_publication_writes_back_a_replaced_document() -> None:
    assert _failed_rerun(restore=True).objects["img.jpg"] == b"old image"
