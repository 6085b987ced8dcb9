"""Running ``iiif-process`` from the benchmark: the command line on go-iiif's defaults, one run
in a fresh child process, and a run that only starts up (for subtracting)."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.measure import Run, run_child

PYTHON = sys.executable
TOOL = Path(sys.executable).parent / "iiif-process"
MISSING = "no-such-image"


def tool_argv(
    source_dir: Path, out: Path, uris: Sequence[str], config_dir: Path | None
) -> list[str]:
    """``iiif-process`` on go-iiif's default instructions (and config, unless ``config_dir``),
    from ``source_dir`` to ``out``."""
    config = (
        ["-config-source", config_dir.resolve().as_uri(), "-config-name", "config.json"]
        if config_dir
        else ["-config-source", "defaults://"]
    )
    return [
        str(TOOL),
        *config,
        "-instructions-source",
        "defaults://",
        "-config-images-source-uri",
        source_dir.resolve().as_uri(),
        "-config-derivatives-cache-uri",
        out.resolve().as_uri(),
        *uris,
    ]


def run_tool(
    source_dir: Path,
    uris: Sequence[str],
    out: Path,
    config_dir: Path | None = None,
    cpus: Sequence[int] | None = None,
) -> tuple[Run, dict[str, Any]]:
    """One run of the tool (into an emptied ``out``): the measured child and its stdout JSON."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    run = run_child(
        tool_argv(source_dir, out, uris, config_dir),
        cpus=cpus,
        stderr_path=out.parent / f"{out.name}.stderr.log",
    )
    try:
        result = json.loads(run.stdout) if run.stdout.strip() else {}
    except json.JSONDecodeError:
        result = {}
    return run, result


def tool_startup(
    source_dir: Path, out: Path, cpus: Sequence[int] | None = None, workers: int = 1
) -> Run:
    """A run that starts ``workers`` worker processes (one per missing image), reads its config,
    imports everything and fails on the missing images: what a run costs besides its images."""
    uris = [f"{MISSING}-{index}.jpg" for index in range(workers)]
    run, result = run_tool(source_dir, uris, out, cpus=cpus)
    if any(uri not in result for uri in uris):
        raise RuntimeError(f"iiif-process did not start cleanly (exit {run.returncode})")
    return run


def copies(image: Path, directory: Path, count: int) -> list[str]:
    """``count`` copies of ``image`` under distinct names in ``directory`` (hard links where the
    file system allows): each is a URI of its own. Returns their names."""
    directory.mkdir(parents=True, exist_ok=True)
    names = []
    for index in range(count):
        path = directory / f"{image.stem}-{index:02d}{image.suffix}"
        if not path.exists() or path.stat().st_size != image.stat().st_size:
            path.unlink(missing_ok=True)
            try:
                path.hardlink_to(image)
            except OSError:
                shutil.copyfile(image, path)
        names.append(path.name)
    return names
