"""go-iiif's per-image report: its fields, its name and where it is stored."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .transform import Rendered

# go-iiif v8's -report-template default.
REPORT_TEMPLATE = "process_{sha256_origin}.json"
# go-iiif 2019 (the seed) -report-name default.
SEED_REPORT_NAME = "process.json"
_VARIABLE = re.compile(r"\{([^{}]*)\}")


def report_name(uri: str, template: str) -> str:
    """Expand a report template: ``{sha256_origin}`` = hex sha256 of the URI; other variables
    expand to nothing (URI-template semantics for undefined variables)."""
    digest = hashlib.sha256(uri.encode("utf-8")).hexdigest()
    return _VARIABLE.sub(lambda m: digest if m[1] == "sha256_origin" else "", template)


def report_key(uri: str, name: str) -> str:
    """Where the report of ``uri`` is stored: next to its derivatives."""
    return f"{uri}/{name}"


def build_report(
    uri: str, fingerprint: str, rendered: Iterable[Rendered], services: Mapping[str, Any]
) -> dict[str, Any]:
    """The report go-iiif prints and stores for one image (maps sorted by label, as Go does)."""
    items = sorted(rendered, key=lambda r: r.instruction.label)
    report: dict[str, Any] = {
        "dimensions": {r.instruction.label: [r.width, r.height] for r in items},
        "origin": uri,
        "origin_fingerprint": fingerprint,
        "origin_uri": f"file:///{uri}",
        "uris": {r.instruction.label: r.key for r in items},
    }
    report.update(services)
    return dict(sorted(report.items()))
