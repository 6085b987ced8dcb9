"""The built-in config and instruction set behind ``defaults://`` (go-iiif v8's defaults)."""

from __future__ import annotations

import copy
from typing import Any

DEFAULTS_SCHEME = "defaults://"

# go-iiif v8's default instruction set.
DEFAULT_INSTRUCTIONS: dict[str, dict[str, str]] = {
    "o": {"size": "full", "format": "", "rotation": "-1"},
    "k": {"size": "!2048,1536", "format": "jpg"},
    "b": {"size": "!1024,768", "format": "jpg"},
    "c": {"size": "!800,600", "format": "jpg"},
    "dc": {"size": "!800,600", "quality": "dither", "format": "jpg"},
    "z": {"size": "!640,480", "format": "jpg"},
    "n": {"size": "!320,240", "format": "jpg"},
    "s": {
        "size": "full",
        "region": "-1,-1,320,320",
        "quality": "crisp:2.0,0.5,0.025",
        "format": "jpg",
    },
    "ds": {"size": "full", "quality": "dither", "region": "-1,-1,320,320", "format": "jpg"},
}

# go-iiif's default config, in the v7+ (URI) generation.
DEFAULT_CONFIG: dict[str, Any] = {
    "level": {"compliance": "2"},
    "profile": {"services": {"enable": ["palette", "blurhash", "imagehash"]}},
    "palette_service": {
        "extruders": [{"uri": "marekm4://", "count": 5}],
        "grid": {"uri": "euclidian://"},
        "palettes": [{"uri": "crayola://"}, {"uri": "css4://"}],
    },
    "blurhash_service": {"x": 8, "y": 8, "size": 200},
    "imagehash_service": {},
    "graphics": {"driver": "native://"},
    "features": {
        "enable": {
            "size": ["max"],
            "format": ["webp", "tif", "gif"],
            "rotation": ["noAutoRotate"],
        },
        "disable": {"rotation": ["rotationArbitrary"], "quality": ["bitonal"]},
        "append": {
            "quality": {
                "dither": {
                    "syntax": "dither",
                    "required": False,
                    "supported": True,
                    "match": "^dither$",
                },
                "crisp": {
                    "syntax": "crisp",
                    "required": False,
                    "supported": True,
                    "match": "^crisp(?:\\:(\\d+\\.\\d+),(\\d+\\.\\d+),(\\d+\\.\\d+))?$",
                },
            }
        },
    },
    "images": {"source": {"uri": "mem://"}, "cache": {"uri": "memory://"}},
    "derivatives": {"cache": {"uri": "mem://"}},
}


def default_instructions() -> dict[str, dict[str, str]]:
    """A fresh copy of go-iiif v8's default instruction set."""
    return copy.deepcopy(DEFAULT_INSTRUCTIONS)


def default_config() -> dict[str, Any]:
    """A fresh copy of the default config."""
    return copy.deepcopy(DEFAULT_CONFIG)
