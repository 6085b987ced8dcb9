"""A dithered derivative's own memory in admission: the error diffusion holds its input and its
result whole (:func:`iiif_process.transform.dither_working_bytes`), so a full-size dither is
counted before it is admitted, not discovered by an out-of-memory kill."""

from __future__ import annotations

from pathlib import Path

import pyvips
from iiif_process.batch import WorkerJob, run_one
from iiif_process.config import Config, StoreSpec
from iiif_process.memory import MemoryGate
from iiif_process.params import DEFAULT_SIZE_RULES, parse_instructions
from iiif_process.process import ReportOptions
from iiif_process.stores import MemoryStore
from iiif_process.transform import Probe, dither_working_bytes, probe

from . import iiif_images as gen


def _header(tmp_path: Path, image: pyvips.Image, orientation: int = 1) -> Probe:
    path = tmp_path / "a.jpg"
    path.write_bytes(gen.with_orientation(image, orientation))
    return probe(str(path), path.stat().st_size, 0)


def _bytes(header: Probe, spec: dict[str, str]) -> int:
    return dither_working_bytes(header, parse_instructions({"d": spec}), DEFAULT_SIZE_RULES)


# Each count is the input (3 bytes a pixel for colour, 1 for grey), the result (1 byte a pixel)
# and 16 bytes a pixel of one strip of at most 1024 rows.
FULL = {"size": "full", "quality": "dither", "format": "png"}


def test_a_full_size_colour_dither_counts_input_result_and_strip(tmp_path: Path) -> None:
    header = _header(tmp_path, gen.gradient(400, 300))
    assert _bytes(header, FULL) == 400 * 300 * (3 + 1) + 400 * 300 * 16


def test_a_grey_source_dither_counts_one_byte_of_input_a_pixel(tmp_path: Path) -> None:
    header = _header(tmp_path, gen.gradient(400, 300).colourspace("b-w"))
    assert _bytes(header, FULL) == 400 * 300 * (1 + 1) + 400 * 300 * 16


def test_the_strip_is_at_most_1024_rows(tmp_path: Path) -> None:
    header = _header(tmp_path, gen.gradient(100, 3000).colourspace("b-w"))
    assert _bytes(header, FULL) == 100 * 3000 * (1 + 1) + 100 * 1024 * 16


def test_a_dither_counts_its_output_size_not_the_source(tmp_path: Path) -> None:
    header = _header(tmp_path, gen.gradient(400, 300))
    assert _bytes(header, {"size": "200,", "quality": "dither", "format": "png"}) == 200 * 150 * 20


def test_a_region_is_cut_from_the_upright_image(tmp_path: Path) -> None:
    # Orientation 6 turns 400x300 into 300x400: the region's height is then all 400 rows.
    header = _header(tmp_path, gen.gradient(400, 300), orientation=6)
    spec = {"region": "0,0,300,400", "size": "full", "quality": "dither", "format": "png"}
    assert _bytes(header, spec) == 300 * 400 * 20


def test_an_angle_widens_the_dither_to_the_turned_box(tmp_path: Path) -> None:
    header = _header(tmp_path, gen.gradient(400, 300))
    spec = {"size": "full", "rotation": "30", "quality": "dither", "format": "png"}
    # 400 cos 30 + 300 sin 30 = 496.4; 400 sin 30 + 300 cos 30 = 459.8
    assert _bytes(header, spec) == 497 * 460 * 20


def test_other_qualities_add_nothing(tmp_path: Path) -> None:
    header = _header(tmp_path, gen.gradient(400, 300))
    assert _bytes(header, {"size": "full", "quality": "gray", "format": "png"}) == 0


def _run(instructions: dict[str, dict[str, str]], budget: int) -> dict[str, object]:
    source = MemoryStore()
    source.objects["a.jpg"] = gen.jpeg(gen.gradient(400, 300))
    config = Config(StoreSpec("memory"), StoreSpec("memory"))
    job = WorkerJob(
        config,
        parse_instructions(instructions),
        source,
        MemoryStore(),
        ReportOptions(),
        1,
        budget,
        None,
    )
    entry, _ = run_one("a.jpg", job, MemoryGate(budget))
    return entry


# The decoded pixels' working copies (400 x 300 x 3 x 1.5 = 540,000 bytes) fit this budget; with
# a full-size dither's 2,400,000 bytes beside them they do not.
BUDGET = 800_000


def test_a_full_size_dither_over_the_budget_is_refused_by_name() -> None:
    entry = _run({"d": {"size": "full", "quality": "dither", "format": "png"}}, BUDGET)
    assert "over the memory budget" in str(entry.get("error"))


def test_the_same_image_in_colour_fits_that_budget() -> None:
    entry = _run({"d": {"size": "full", "quality": "color", "format": "png"}}, BUDGET)
    assert "error" not in entry


def test_a_region_outside_the_image_adds_nothing_and_is_left_to_fail_alone(
    tmp_path: Path,
) -> None:
    header = _header(tmp_path, gen.gradient(400, 300))
    spec = {"region": "500,0,10,10", "size": "full", "quality": "dither", "format": "png"}
    assert _bytes(header, spec) == 0
