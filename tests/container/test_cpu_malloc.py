"""Issue #12: a worker keeps its image buffers' pages between images (glibc's malloc tuned)
instead of faulting them in afresh for each image."""

from __future__ import annotations

import ctypes
import platform
import resource

import pytest
from iiif_process import transform


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_malloc_is_tuned_on_glibc() -> None:
    assert transform.tune_malloc() is True


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_a_freed_image_buffer_is_reused_without_faulting_its_pages_again() -> None:
    transform.tune_malloc()
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = (ctypes.c_void_p,)
    size = 8 << 20  # a 2048x1365 RGB copy
    first = libc.malloc(size)
    ctypes.memset(first, 1, size)
    libc.free(first)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    again = libc.malloc(size)
    ctypes.memset(again, 1, size)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    libc.free(again)
    assert faults < (size >> 12) // 4  # a fresh mapping would fault all 2,048 pages


def test_no_mallopt_means_nothing_to_tune(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_c_library(*_: object) -> None:
        raise OSError("no C library here")

    monkeypatch.setattr(ctypes, "CDLL", no_c_library)
    assert transform.tune_malloc() is False
