"""IIIF Presentation 3 manifests: one image, one canvas, its Level 0 image service.

The manifest lets Mirador and Universal Viewer open an image by URL (docs/contracts.md, "Deep
zoom"): its id is ``BASE/KEY/manifest.json``; the canvas has the image's size; the canvas's one
painting annotation has the full-size image as its body, with the image service ``BASE/KEY``
(``ImageService3``, or ``ImageService2`` written with ``@id``/``@type`` as Presentation 3 asks
for services of older APIs) so viewers deep-zoom from its ``info.json``; the label is the key's
file name.
"""

from __future__ import annotations

import posixpath
from typing import Any

from .tiles import LEVEL0_V2, Plan, full_image_path

CONTEXT = "http://iiif.io/api/presentation/3/context.json"
CONTENT_TYPE = f'application/ld+json;profile="{CONTEXT}"'
NAME = "manifest.json"
FORMAT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif"}


def label(key: str) -> str:
    """The manifest's label: the key's file name (``a/b/photo.jpg`` → ``photo.jpg``)."""
    return posixpath.basename(key) or key


def image_service(service_id: str, version: int) -> dict[str, Any]:
    """The image service reference of a Level 0 ``info.json`` at ``service_id``."""
    if version == 2:
        return {"@id": service_id, "@type": "ImageService2", "profile": LEVEL0_V2}
    return {"id": service_id, "type": "ImageService3", "profile": "level0"}


def manifest_document(service_id: str, key: str, plan: Plan) -> dict[str, Any]:
    """The Presentation 3 manifest of the image whose ``info.json`` id is ``service_id`` (the
    public ``BASE/KEY``) and whose pyramid is ``plan``."""
    version = plan.options.api_version
    fmt = FORMAT_TYPES.get(plan.options.format, "image/jpeg")
    canvas = f"{service_id}/canvas/1"
    service = [image_service(service_id, version)]
    small_w, small_h = max(plan.sizes)  # the largest size that fits in one tile (written)
    small = f"{small_w}," if version == 2 else f"{small_w},{small_h}"
    quality, ext = plan.options.quality, plan.options.format
    return {
        "@context": CONTEXT,
        "id": f"{service_id}/{NAME}",
        "type": "Manifest",
        "label": {"none": [label(key)]},
        "thumbnail": [
            {
                "id": f"{service_id}/full/{small}/0/{quality}.{ext}",
                "type": "Image",
                "format": fmt,
                "width": small_w,
                "height": small_h,
                "service": service,
            }
        ],
        "items": [
            {
                "id": canvas,
                "type": "Canvas",
                "width": plan.width,
                "height": plan.height,
                "items": [
                    {
                        "id": f"{canvas}/page/1",
                        "type": "AnnotationPage",
                        "items": [
                            {
                                "id": f"{canvas}/page/1/image",
                                "type": "Annotation",
                                "motivation": "painting",
                                "target": canvas,
                                "body": {
                                    "id": f"{service_id}/{full_image_path(plan.options)}",
                                    "type": "Image",
                                    "format": fmt,
                                    "width": plan.width,
                                    "height": plan.height,
                                    "service": service,
                                },
                            }
                        ],
                    }
                ],
            }
        ],
    }
