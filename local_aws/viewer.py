"""The deep-zoom viewer page: each image in OpenSeadragon, and in Mirador from its manifest.

    python -m local_aws.viewer [--site demo-output/viewer.json] [--port N] [--no-browser]

After `make demo`, this serves two things on localhost until Ctrl-C:

- the demo's CloudFront stand-in again (`local_aws.distribution`) on the URL the demo deployed as
  `publicBaseUrl`, now reading the copy of the derivatives bucket in `demo-output/derivatives/`,
  so the ids in each `info.json` and `manifest.json` resolve as they did during the demo;
- a page (another port, so another origin: the viewers read the images across origins, with
  CORS, as a viewer on some museum's site reads a CloudFront distribution) where each image
  deep-zooms in OpenSeadragon and opens in Mirador from its manifest URL.

OpenSeadragon and Mirador come from npm (package.json) and are served from node_modules/, never
from a CDN. The end-to-end browser test (tests/e2e/test_viewer_browser.py) serves the same page
against the embedded AWS while it runs.
"""

from __future__ import annotations

import argparse
import html
import json
import mimetypes
import signal
import sys
import threading
import webbrowser
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from local_aws.distribution import FolderObjects, local_distribution, port_of
from local_aws.server import free_localhost_port

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = PROJECT_ROOT / "node_modules"
#: URL prefix -> folder of an npm package's prebuilt files.
VENDOR = {
    "openseadragon": NODE_MODULES / "openseadragon" / "build" / "openseadragon",
    "mirador": NODE_MODULES / "mirador" / "dist",
}
#: What `make demo` writes for this viewer.
DEFAULT_SITE = PROJECT_ROOT / "demo-output" / "viewer.json"
COMMAND = "make viewer"


@dataclass(frozen=True)
class Site:
    """What the page shows: images (source keys) published under `public_base_url`."""

    public_base_url: str
    images: tuple[str, ...]
    derivatives: Path | None = None
    """A copy of the derivatives bucket on disk (after the demo), or None (served live)."""

    def image_url(self, key: str) -> str:
        """The image service's id: `BASE/KEY`, the key percent-encoded except '/'."""
        return f"{self.public_base_url}/{quote(key, safe='/')}"

    def save(self, path: Path) -> Path:
        """Write the site as JSON (`load` reads it back; paths relative to its folder)."""
        data: dict[str, Any] = {"public_base_url": self.public_base_url, "images": self.images}
        if self.derivatives is not None:
            data["derivatives"] = self.derivatives.relative_to(path.parent).as_posix()
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Path) -> Site:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SystemExit(
                f"{path} does not exist: run `make demo` first (it writes it at the end)"
            ) from None
        folder = data.get("derivatives")
        return cls(
            public_base_url=data["public_base_url"],
            images=tuple(data["images"]),
            derivatives=(path.parent / folder) if folder else None,
        )


_STYLE = """
body { font-family: sans-serif; margin: 1.5em; background: #fafafa; color: #222; }
section { margin-bottom: 2em; }
.osd { width: 100%; height: 480px; background: #111; border: 1px solid #ccc; }
nav a { margin-right: 1em; }
code { font-size: .85em; }
"""

# Records what each viewer did, for people (the status line) and for the browser test.
_INDEX_SCRIPT = """
window.deepZoom = [];
for (const element of document.querySelectorAll(".osd")) {
  const state = { key: element.dataset.key, opened: false, openFailed: null,
                  tilesLoaded: 0, tilesFailed: [] };
  window.deepZoom.push(state);
  const viewer = OpenSeadragon({
    id: element.id,
    prefixUrl: "/vendor/openseadragon/images/",
    tileSources: [element.dataset.info],
    crossOriginPolicy: "Anonymous",
    showNavigator: true,
    maxZoomPixelRatio: 2,
  });
  state.viewer = viewer;
  const status = document.getElementById(element.id + "-status");
  const show = () => {
    status.textContent = state.openFailed ? "could not open: " + state.openFailed
      : `${state.tilesLoaded} tiles loaded, ${state.tilesFailed.length} failed`;
  };
  viewer.addHandler("open", () => { state.opened = true; });
  // Whether every tile the current view needs has been drawn.
  state.drawn = () => Boolean(viewer.world.getItemAt(0)?.getFullyLoaded());
  viewer.addHandler("open-failed", (event) => {
    state.openFailed = String(event.message); show();
  });
  viewer.addHandler("tile-loaded", () => { state.tilesLoaded += 1; show(); });
  viewer.addHandler("tile-load-failed", (event) => {
    state.tilesFailed.push(String(event.message)); show();
  });
}
"""

_MIRADOR_SCRIPT = """
const manifest = new URLSearchParams(location.search).get("manifest");
document.title = "Mirador: " + manifest;
window.mirador = Mirador.viewer({
  id: "mirador",
  windows: [{ manifestId: manifest }],
  workspaceControlPanel: { enabled: false },
});
"""


def index_page(site: Site) -> str:
    """One section per image: an OpenSeadragon viewer of its `info.json` and links."""
    sections = []
    for number, key in enumerate(site.images):
        base = site.image_url(key)
        info, manifest = f"{base}/info.json", f"{base}/manifest.json"
        mirador = f"/mirador.html?manifest={quote(manifest, safe='')}"
        sections.append(
            f'<section><h2>{html.escape(key)}</h2><nav><a href="{html.escape(mirador)}">'
            f'Open in Mirador</a><a href="{html.escape(info)}">info.json</a>'
            f'<a href="{html.escape(manifest)}">manifest.json</a></nav>'
            f'<div class="osd" id="osd-{number}" data-key="{html.escape(key)}" '
            f'data-info="{html.escape(info)}"></div>'
            f'<p id="osd-{number}-status">loading...</p></section>'
        )
    listing = "".join(sections) or "<p>No image has an info.json: nothing to zoom.</p>"
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>IIIF deep zoom</title>"
        f"<style>{_STYLE}</style></head><body><h1>IIIF deep zoom</h1>"
        f"<p>{len(site.images)} images served from <code>{html.escape(site.public_base_url)}"
        "</code> (the stand-in for the stack's CloudFront distribution). Scroll or pinch in a "
        "viewer to zoom; tiles load as needed.</p>"
        f"{listing}<script src='/vendor/openseadragon/openseadragon.min.js'></script>"
        f"<script>{_INDEX_SCRIPT}</script></body></html>\n"
    )


def mirador_page() -> str:
    """Mirador with one window, the manifest given as `?manifest=URL`."""
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Mirador</title>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'></head>"
        "<body style='margin:0'><div id='mirador' style='position:absolute;inset:0'></div>"
        "<script src='/vendor/mirador/mirador.min.js'></script>"
        f"<script>{_MIRADOR_SCRIPT}</script></body></html>\n"
    )


def vendor_file(path: str) -> Path | None:
    """The node_modules file behind `/vendor/PACKAGE/FILE`, or None (unknown or outside)."""
    parts = path.split("/", 3)
    if len(parts) < 4 or parts[1] != "vendor" or parts[2] not in VENDOR:
        return None
    root = VENDOR[parts[2]].resolve()
    target = (root / parts[3]).resolve()
    return target if target.is_relative_to(root) and target.is_file() else None


def missing_packages() -> list[str]:
    """The npm packages of the page that node_modules lacks."""
    return [name for name, folder in VENDOR.items() if not folder.is_dir()]


class _PageHandler(BaseHTTPRequestHandler):
    server: _PageServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, index_page(self.server.site).encode(), "text/html")
        elif path == "/favicon.ico":
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
        elif path == "/mirador.html":
            self._send(HTTPStatus.OK, mirador_page().encode(), "text/html")
        elif (file := vendor_file(path)) is not None:
            content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            self._send(HTTPStatus.OK, file.read_bytes(), content_type)
        else:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")

    do_HEAD = do_GET


class _PageServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, site: Site) -> None:
        super().__init__(("127.0.0.1", port), _PageHandler)
        self.site = site


@contextmanager
def viewer_page(site: Site, port: int | None = None) -> Iterator[str]:
    """Serve the page for `site` on `port` (default: a free one); yield its URL."""
    missing = missing_packages()
    if missing:
        raise RuntimeError(
            f"node_modules lacks {', '.join(missing)}: run `npm ci` (make demo and make test do)"
        )
    server = _PageServer(port or free_localhost_port(), site)
    thread = threading.Thread(target=server.serve_forever, name="viewer", daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local_aws.viewer",
        description="Serve make demo's images in OpenSeadragon and Mirador on localhost.",
    )
    parser.add_argument("--site", type=Path, default=DEFAULT_SITE, help="default %(default)s")
    parser.add_argument("--port", type=int, default=0, help="the page's port (default: free)")
    parser.add_argument("--no-browser", action="store_true", help="print the URL only")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    site = Site.load(args.site)
    if site.derivatives is None or not site.derivatives.is_dir():
        print(f"error: {args.site} names no copy of the derivatives on disk", file=sys.stderr)
        return 1

    def stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        with ExitStack() as stack:
            stack.enter_context(
                local_distribution(
                    FolderObjects(site.derivatives), port=port_of(site.public_base_url)
                )
            )
            url = stack.enter_context(viewer_page(site, args.port or None))
            print(f"CloudFront stand-in: {site.public_base_url} serves {site.derivatives}")
            print(f"Deep-zoom viewer:    {url}  ({len(site.images)} images; Ctrl-C to stop)")
            if not args.no_browser:
                webbrowser.open(url)
            threading.Event().wait()
    except (OSError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
