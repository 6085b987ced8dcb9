"""demo-output/index.html: every derivative of every image, with its label and size.

Deep-zoom files (issue #11: the Level 0 tiles and full image, all `default.jpg`, and `info.json`
and `manifest.json`) are counted apart; the viewer page (local_aws/viewer.py) shows them.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from urllib.parse import quote

import pyvips

_STYLE = """
body { font-family: sans-serif; margin: 2em; background: #fafafa; color: #222; }
section { margin-bottom: 3em; }
.grid { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-end; }
figure { margin: 0; padding: .5em; background: #fff; border: 1px solid #ddd; }
figure img { display: block; max-width: 320px; max-height: 320px; }
figcaption { font-size: .85em; margin-top: .4em; }
code { font-size: .85em; }
.failed { color: #a00; }
"""


def _size(path: Path) -> tuple[int, int]:
    image = pyvips.Image.new_from_file(str(path))  # reads the header only
    return image.width, image.height


def _href(page_dir: Path, path: Path) -> str:
    return "/".join(quote(part) for part in path.relative_to(page_dir).parts)


def _figure(page_dir: Path, label: str, path: Path) -> str:
    width, height = _size(path)
    return (
        f'<figure><a href="{_href(page_dir, path)}"><img src="{_href(page_dir, path)}" '
        f'alt="{html.escape(label)}" loading="lazy"></a><figcaption><b>{html.escape(label)}</b> '
        f"{width}&times;{height}<br><code>{html.escape(path.name)}</code></figcaption></figure>"
    )


#: What the task writes for deep zoom beside go-iiif's derivatives (docs/contracts.md): tiles and
#: the full image are all written with quality `default` (go-iiif writes `color` for it).
TILE_NAME = "default.jpg"
IIIF_DOCUMENTS = ("info.json", "manifest.json")
REPORT_NAME = "process.json"


def write_gallery(derivatives: Path, images: list[str], page: Path) -> tuple[Path, int, int, int]:
    """Write `page` for the `images` (source keys) whose derivatives are under `derivatives`.

    Returns (page, derivatives, reports, deep-zoom tiles) counted under `derivatives`.
    """
    page_dir = page.parent
    files = [p for p in derivatives.rglob("*") if p.is_file()] if derivatives.exists() else []
    reports = [p for p in files if p.name == REPORT_NAME]
    tiles = [p for p in files if p.name == TILE_NAME]
    derivative_files = [p for p in files if p.suffix != ".json" and p.name != TILE_NAME]
    sections = []
    for uri in images:
        folder = derivatives / uri
        report_path = folder / REPORT_NAME
        figures = []
        if report_path.exists():
            report = json.loads(report_path.read_text(encoding="utf-8"))
            for label, key in sorted(report.get("uris", {}).items()):
                path = derivatives / key
                if path.exists():
                    figures.append(_figure(page_dir, label, path))
            report_link = f' &middot; <a href="{_href(page_dir, report_path)}">report</a>'
        else:
            report_link = ""
        for name in IIIF_DOCUMENTS:
            if (folder / name).exists():
                report_link += f' &middot; <a href="{_href(page_dir, folder / name)}">{name}</a>'
        zoom_tiles = sum(1 for p in tiles if folder in p.parents)
        if not figures:
            found = [p for p in derivative_files if folder in p.parents]
            figures = [_figure(page_dir, str(p.relative_to(folder)), p) for p in sorted(found)]
        body = (
            f'<div class="grid">{"".join(figures)}</div>'
            if figures
            else '<p class="failed">No derivatives: processing failed (see its task\'s log).</p>'
        )
        sections.append(
            f"<section><h2>{html.escape(uri)}</h2><p>{len(figures)} derivatives, "
            f"{zoom_tiles} deep-zoom tiles{report_link}</p>{body}</section>"
        )
    page.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>IIIF derivatives</title>"
        f"<style>{_STYLE}</style></head><body><h1>IIIF derivatives made by the demo</h1>"
        f"<p>{len(derivative_files)} derivatives, {len(tiles)} deep-zoom tiles and "
        f"{len(reports)} reports of {len(images)} images (the deep-zoom viewer: "
        "<code>.venv/bin/python -m local_aws.viewer</code>).</p>"
        f"{''.join(sections)}</body></html>\n",
        encoding="utf-8",
    )
    return page, len(derivative_files), len(reports), len(tiles)
