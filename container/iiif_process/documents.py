"""The tools' JSON documents (the go-iiif config and instructions): read from a file, from
``defaults://`` (the built-in ones), a directory (``file:///DIR`` or a path) or a bucket
(``s3blob://BUCKET?region=R&prefix=P``, ``s3://BUCKET/PREFIX``). Every failure is a
:class:`~.errors.ConfigError` naming where the document was looked for.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .arguments import Arguments
from .config import parse_store_uri
from .defaults import DEFAULTS_SCHEME, default_config
from .errors import ConfigError, IIIFProcessError
from .stores import open_store


def _read_json(location: str, data: bytes) -> Any:
    """``data`` parsed as JSON; ``location`` names it in the error."""
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{location} is not valid JSON: {exc}") from None


def _read_file(path: str) -> bytes:
    """A local file's bytes."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None


def load_file(path: str) -> Any:
    """A JSON document from a local file (the seed form's ``-config PATH``)."""
    return _read_json(path, _read_file(path))


def load_document(source: str, name: str, defaults: Any) -> Any:
    """Load a JSON document from ``defaults://``, a directory (``file:///DIR`` or a path) or a
    bucket (``s3blob://BUCKET?region=R&prefix=P``, ``s3://BUCKET/PREFIX``)."""
    if source.startswith(DEFAULTS_SCHEME):
        return defaults
    scheme = urlsplit(source).scheme
    if scheme in ("s3", "s3blob"):
        try:
            data = open_store(parse_store_uri(source)).read(name)
        except IIIFProcessError as exc:
            raise ConfigError(f"cannot read {name} from {source}: {exc}") from None
        return _read_json(f"{source} {name}", data)
    if scheme == "file":
        source = urlsplit(source).path
    elif scheme:
        raise ConfigError(f"unsupported source {source!r} for {name}")
    return load_file(os.path.join(source, name))


def load_named_document(args: Arguments, kind: str, default_name: str, defaults: Any) -> Any:
    """The document ``-KIND PATH`` names, else ``-KIND-source`` and ``-KIND-name`` (``defaults://``
    and ``default_name`` when not given); ``kind`` is ``config`` or ``instructions``."""
    path = args.get(kind)
    if path:
        return load_file(path)
    return load_document(
        args.get(f"{kind}-source", DEFAULTS_SCHEME) or DEFAULTS_SCHEME,
        args.get(f"{kind}-name", default_name) or default_name,
        defaults,
    )


def load_config_document(args: Arguments, env: Mapping[str, str]) -> Any:
    """The go-iiif config document the command line names (the seed's ``-config PATH``, else
    ``-config-source`` and ``-config-name``), its ``images.source`` and ``derivatives.cache``
    replaced by ``-config-images-source-uri`` and ``-config-derivatives-cache-uri`` (flag, else
    environment). Replaced before parsing, so a placeholder in a replaced block is no error."""
    data = load_named_document(args, "config", "config.json", default_config())
    if not isinstance(data, dict):
        return data  # parse_config says what is wrong with it
    data = dict(data)
    source = args.get("config-images-source-uri", env.get("config-images-source-uri"))
    cache = args.get("config-derivatives-cache-uri", env.get("config-derivatives-cache-uri"))
    if source:
        data["images"] = {**(data.get("images") or {}), "source": {"uri": source}}
    if cache:
        data["derivatives"] = {**(data.get("derivatives") or {}), "cache": {"uri": cache}}
    return data
