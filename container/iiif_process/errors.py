"""Exceptions of the processing tool; each message names what was wrong."""

from __future__ import annotations


class IIIFProcessError(Exception):
    """Base of every error the tool reports for one URI or one derivative."""


class ConfigError(IIIFProcessError):
    """The config or instructions file is unreadable or invalid."""


class UnsafeURIError(IIIFProcessError):
    """A URI was refused before any read (traversal, absolute path, scheme, control characters)."""


class SourceNotFoundError(IIIFProcessError):
    """The source object does not exist."""


class StoreError(IIIFProcessError):
    """A read from or write to a store failed."""


class ImageRejectedError(IIIFProcessError):
    """The source is not an image we accept (format, pixel limit, corrupt data)."""


class ParameterError(IIIFProcessError):
    """An IIIF parameter of an instruction is invalid or not supported."""
