"""The CPU headline's arithmetic (bench/cpu.py) and the floor pipeline (bench/floor.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import pyvips

from bench import floor
from bench.cpu import Batches, CpuRow, cpu_row, render_cpu
from bench.images import TestImage as Image  # not a test class
from bench.spec import PATHS


def test_the_figure_is_the_batch_less_the_warm_up_over_the_images_between() -> None:
    row = cpu_row([Batches(idle=1.0, warm=2.0, busy=5.0, peak_mb=100, processes=2)], count=12)
    assert row.cpu_per_image == pytest.approx((5.0 - 2.0) / 10)


def test_each_way_takes_its_least_disturbed_rep() -> None:
    reps = [
        Batches(idle=1.0, warm=2.5, busy=5.0, peak_mb=100, processes=2),
        Batches(idle=1.2, warm=2.0, busy=6.0, peak_mb=120, processes=2),
    ]
    assert cpu_row(reps, count=12).cpu_per_image == pytest.approx(0.3)


def test_the_first_image_extra_is_the_warm_up_per_process_beyond_the_figure() -> None:
    row = cpu_row([Batches(idle=1.0, warm=2.0, busy=5.0, peak_mb=100, processes=2)], count=12)
    assert row.first_extra == pytest.approx((2.0 - 1.0) / 2 - 0.3)


def test_the_peak_is_the_largest_of_the_reps() -> None:
    reps = [Batches(1.0, 2.0, 5.0, 100, processes=2), Batches(1.0, 2.0, 5.0, 130, processes=2)]
    assert cpu_row(reps, count=12).peak_mb == 130


@pytest.mark.parametrize(
    ("size", "need", "shrink"),
    [
        ((6000, 4000), (2048, 1365), 2),  # 24 MP: k from 3000x2000
        ((11648, 8736), (2048, 1536), 4),  # 100 MP: k from 2912x2184
        ((4096, 3072), (2048, 1536), 2),  # exactly twice k: 1/2 leaves k its pixels
        ((4094, 3072), (2048, 1536), 1),  # a pixel short of that
        ((20000, 16000), (2048, 1536), 8),
    ],
)
def test_the_floor_decodes_at_the_largest_shrink_that_leaves_k_its_pixels(
    size: tuple[int, int], need: tuple[int, int], shrink: int
) -> None:
    assert floor.decode_shrink(*size, need) == shrink


def test_the_floor_publishes_o_as_the_source_and_fits_the_others(tmp_path: Path) -> None:
    source = tmp_path / "photo.jpg"
    grey = pyvips.Image.gaussnoise(3000, 2000, mean=128, sigma=30).cast("uchar")
    grey.bandjoin([grey, grey]).copy(interpretation="srgb").jpegsave(str(source), Q=90)
    sizes = floor.process(source, tmp_path / "out")
    assert (tmp_path / "out" / PATHS["o"]).read_bytes() == source.read_bytes()
    assert sizes == {
        "o": (3000, 2000),
        "k": (2048, 1365),
        "b": (1024, 682),
        "c": (800, 533),
        "z": (640, 426),
        "n": (320, 213),
    }
    for label in ("k", "b", "c", "z", "n"):
        written = pyvips.Image.new_from_file(str(tmp_path / "out" / PATHS[label]))
        assert (written.width, written.height) == sizes[label]


def _table(ours: float) -> list[str]:
    rows = {
        "ours": CpuRow(ours, 140, 12),
        "ours-noservices": CpuRow(0.18, 130, 12),
        "reference": CpuRow(0.40, 200, 12),
        "pillow": CpuRow(0.50, 170, 12),
        "floor": CpuRow(0.16, 130, 12),
    }
    image = Image("24mp", 6000, 4000, Path("photo-24mp.jpg"))
    return render_cpu({"24mp": rows}, [image])


def _line(lines: list[str], start: str) -> str:
    return next(line for line in lines if line.startswith(start))


def test_a_ratio_at_its_target_passes() -> None:
    assert _line(_table(0.20), "ours / reference").split()[-1] == "PASS"


def test_a_ratio_over_its_target_misses() -> None:
    assert _line(_table(0.21), "ours / reference").split()[-1] == "MISS"


def test_the_floor_s_ratios_carry_no_verdict() -> None:
    line = _line(_table(0.20), "  floor / reference")
    assert line.split()[-1] == "0.40"
