"""A stand-in image whose iiif-process believes it has more memory than its task: the way to make
a real out-of-memory kill on the embedded AWS.

iiif-process reads its task's memory limit from its cgroup and refuses an image that cannot fit
(`image needs about N MB of memory ..., over the memory budget`), so an honest poison image never
reaches the kernel's limit. `iiif_process.memory_budget_mb` in config.json overrides that budget;
set above the task's memory (a misconfiguration, which `make image-push CONFIG=` could bake into a
real image), the tool admits an image its task cannot hold, the decode goes over the limit, and
the task is killed as on Fargate (exit 137, OutOfMemoryError) - standing in for any image whose
memory the tool misjudges. Only the config differs: the tool, instructions and stack are the
project's.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from local_aws.task_runner import PROJECT_ROOT, ProjectImage


def over_budget_image(folder: Path, budget_mb: int = 4096) -> ProjectImage:
    """The project's image with `iiif_process.memory_budget_mb` = `budget_mb` baked into its
    config.json (written into `folder`)."""
    folder.mkdir(parents=True, exist_ok=True)
    container = PROJECT_ROOT / "container"
    config = json.loads((container / "config.json").read_text(encoding="utf-8"))
    config.setdefault("iiif_process", {})["memory_budget_mb"] = budget_mb
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    shutil.copy(container / "instructions.json", folder / "instructions.json")
    return ProjectImage(tool=ProjectImage.from_project().tool, baked_files=folder)
