"""The libvips pipeline: safe decode (once per image), then region → size → rotation → quality
→ format for each instruction, all in memory.

Speed: the source is decoded once into memory; downscaled copies made for one derivative are kept
and reused as the starting point of smaller ones (a cascade: a target is made from the smallest
kept copy at least as large); the smart crops are thumbnails cut from a small kept copy, and
identical ones (the two default smart crops) are computed once. Colour management runs after
resizing, on few pixels.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import struct
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pyvips

from .atkinson import STRIP, atkinson, atkinson_many
from .colour import icc_description as _icc_description
from .colour import to_srgb
from .config import DEFAULT_JPEG_QUALITY
from .errors import ImageRejectedError, ParameterError
from .jpeg_markers import JpegLayout, browser_ready, jpeg_layout, jpeg_without_metadata
from .memory import decoded_size
from .params import DEFAULT_SIZE_RULES, Instruction, Quality, Rotation
from .services import fit_box

# Loaders we accept (by libvips class). Everything else, including every loader libvips marks
# untrusted (ImageMagick, PDF, SVG, FITS, matrix, ...), is blocked process-wide.
ALLOWED_LOADERS = {
    "VipsForeignLoadJpeg": "jpegload",
    "VipsForeignLoadPng": "pngload",
    "VipsForeignLoadWebp": "webpload",
    "VipsForeignLoadTiff": "tiffload",
    "VipsForeignLoadNsgif": "gifload",
}
_ALLOWED_NICKS = {"jpegload", "pngload", "webpload", "tiffload", "gifload"}

JPEG_Q = DEFAULT_JPEG_QUALITY
_configured = False
_configure_lock = threading.Lock()
log = logging.getLogger(__name__)

# The URIs being decoded in this process, by thread: libvips warns from its own worker threads,
# so a warning is attributed to its thread's URI, else to the only URI in progress, else to all.
_decoding: dict[int, str] = {}
_decoding_lock = threading.Lock()


class _VipsWarnings(logging.Handler):
    """Turns libvips' warnings (which pyvips logs as ``pyvips`` records) into JSON log lines of
    this package naming the URI being decoded."""

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage().removeprefix("VIPS:").strip()
        if record.levelno < logging.WARNING or not message:
            return
        with _decoding_lock:
            own = _decoding.get(threading.get_ident())
            active = sorted(set(_decoding.values()))
        extra: dict[str, object] = {"warning": message}
        if own or len(active) == 1:
            extra["uri"] = own or active[0]
        elif active:
            extra["uris"] = active
        log.warning("libvips warning", extra=extra)


@contextlib.contextmanager
def vips_warnings(uri: str) -> Iterator[None]:
    """Log every libvips warning raised while the block runs with ``uri`` (JSON on stderr)."""
    thread = threading.get_ident()
    with _decoding_lock:
        _decoding[thread] = uri
    try:
        yield
    finally:
        with _decoding_lock:
            _decoding.pop(thread, None)


# glibc's malloc: blocks from this size up are mapped and unmapped on their own, and free memory
# above this much at the top of the heap goes back to the system. By default the first is 128 KB
# and only grows as such blocks are freed, so a worker's first images (and any after a trim) map
# their pixel buffers afresh and fault every page in again: about 4,000 page faults, some 5 ms
# of system time, per 24 MP image (1,000 with these). A worker then keeps at most this much
# free memory between images, well inside memory.PROCESS_BASELINE (what glibc's own dynamic
# threshold may already reach: up to 32 MB mapped, 64 MB kept).
MALLOC_MMAP_THRESHOLD = 32 << 20
MALLOC_TRIM_THRESHOLD = 32 << 20
_M_TRIM_THRESHOLD = -1  # mallopt parameters (malloc.h)
_M_MMAP_THRESHOLD = -3


def tune_malloc() -> bool:
    """Set glibc's malloc thresholds (:data:`MALLOC_MMAP_THRESHOLD`); False where the C library
    is not glibc (musl and others have no ``mallopt``: nothing to tune)."""
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(
        mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD)
        and mallopt(_M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD)
    )


def configure_vips(concurrency: int | None = None) -> None:
    """Lock libvips down (once per process), tune malloc for image buffers (:func:`tune_malloc`)
    and set libvips' worker-thread count."""
    global _configured
    with _configure_lock:
        if not _configured:
            tune_malloc()
            pyvips.block_untrusted_set(True)
            pyvips.operation_block_set("VipsForeignLoad", True)
            for cls in ALLOWED_LOADERS:
                pyvips.operation_block_set(cls, False)
            # The operation cache only holds memory here: every pipeline is new.
            pyvips.cache_set_max(0)
            # libvips' warnings become this package's JSON lines with the URI (not bare text).
            vips_log = logging.getLogger("pyvips")
            vips_log.addHandler(_VipsWarnings(logging.WARNING))
            vips_log.propagate = False
            _configured = True
        if concurrency:
            pyvips.concurrency_set(max(1, concurrency))


def vips_message(exc: pyvips.Error) -> str:
    """The useful line of a libvips error."""
    lines = [line.strip() for line in (exc.detail or "").splitlines() if line.strip()]
    return "; ".join(dict.fromkeys(lines[:3])) or exc.message


@dataclass(frozen=True)
class Rendered:
    """One encoded derivative, ready to write."""

    instruction: Instruction
    key: str
    data: bytes
    width: int
    height: int


def _resize(image: pyvips.Image, width: int, height: int) -> pyvips.Image:
    """Resize to exactly width x height (lanczos3), premultiplying alpha."""
    alpha = image.hasalpha()
    if alpha:
        original_format = image.format
        image = image.premultiply()
    out = image.resize(width / image.width, vscale=height / image.height)
    if alpha:
        out = out.unpremultiply().cast(original_format)
    if out.width != width or out.height != height:
        # Rounding in libvips can leave a one-pixel difference: crop or extend to the exact box.
        out = out.embed(0, 0, width, height, extend="copy")
    return out


# Sources whose decoded pixels exceed this are streamed from their file for each pass instead of
# being decoded once into memory (about 170 MP of 8-bit RGB: a 100 MP photo still takes the
# faster in-memory path). A streamed pass holds a few strips plus the kept downscaled copies.
STREAM_ABOVE = 512 << 20
# What a streamed image holds beyond its encoded full-size derivative: libvips' strip buffers and
# caches, the downscaled copies kept for the cascade, and the encoders' output.
STREAM_WORKING = 192 << 20

# How hard a decode fails on damaged data (libvips ``fail_on``). A JPEG's header can promise far
# more data than the file holds; libjpeg then only *warns* ("premature end of data segment") and
# fills the rest with grey. A museum must not publish a damaged master as a grey image, so any
# libjpeg warning (all of them report corrupt data) fails the image with libjpeg's words. Other
# formats fail on truncation: libtiff also warns about harmless things (unknown private tags of
# camera backs), and those masters must still be processed; their warnings are logged.
FAIL_ON = {"jpegload": "warning"}
DEFAULT_FAIL_ON = "truncated"


def _open(path: str, access: str, fail_on: str, **options: object) -> pyvips.Image:
    """Open a file through a libvips source: no option parsing of the file name (a key may hold
    ``[...]``), and the loader is chosen by content."""
    return pyvips.Image.new_from_source(
        pyvips.Source.new_from_file(path), "", access=access, fail_on=fail_on, **options
    )


@dataclass(frozen=True)
class Probe:
    """What the header of a source says, checked before anything is decoded."""

    image: pyvips.Image  # lazy: nothing decoded yet
    loader: str
    width: int
    height: int
    orientation: int
    path: str = ""

    @property
    def decoded_bytes(self) -> int:
        """The memory the decoded pixels take."""
        return decoded_size(self.width, self.height, self.image.bands, self.image.format)

    @property
    def streamed(self) -> bool:
        """Whether the pixels are streamed from the file for each pass (a huge image)."""
        return bool(self.path) and self.decoded_bytes > STREAM_ABOVE

    @property
    def fail_on(self) -> str:
        """The libvips ``fail_on`` level of this source's decodes."""
        return FAIL_ON.get(self.loader, DEFAULT_FAIL_ON)

    def size(self, auto_orient: bool) -> tuple[int, int]:
        """The image's width and height, turned by the EXIF orientation when ``auto_orient``."""
        if auto_orient and self.orientation in (5, 6, 7, 8):  # turned by 90 degrees
            return self.height, self.width
        return self.width, self.height

    @property
    def working_bytes(self) -> int:
        """The memory processing this image needs at its peak (for admission): the decoded
        pixels and libvips' working copies, or for a streamed image its strips, kept copies and
        its largest encoded derivative (at most a quarter of the pixels' bytes)."""
        if self.streamed:
            return STREAM_WORKING + self.decoded_bytes // 4
        return self.decoded_bytes * 3 // 2


# What the error diffusion holds per pixel of a strip beside its input and result: the skewed
# buffer, the 32-bit grey and its temporaries, and the previous strip's while the next is greyed
# (measured: a full-size dither of a 24 MP photograph grows the process by 180 MB).
DITHER_STRIP_BYTES = 16


def instruction_target(
    ins: Instruction, full: tuple[int, int], size_rules: str
) -> tuple[tuple[int, int, int, int], tuple[int, int]]:
    """The instruction's region box on the full image of size ``full`` (upright as the
    instruction sees it) and its output size; raises :class:`ParameterError`."""
    box = ins.region.box(*full)
    return box, ins.size.target(box[2], box[3], size_rules)


def dither_working_bytes(
    header: Probe, instructions: Sequence[Instruction], size_rules: str
) -> int:
    """The memory the dithered derivatives of ``instructions`` need beside the decoded pixels
    (for admission): the error diffusion holds each one's input whole (a byte a pixel for grey,
    three for colour), its black-and-white result (a byte a pixel) and the working arrays of one
    strip of :data:`~.atkinson.STRIP` rows. A full-size dither of a 24 MP photograph needs 185 MB
    more than :attr:`Probe.working_bytes` counts; go-iiif's small ``dc`` and ``ds`` about 10 MB."""
    per_pixel = (1 if header.image.bands < 3 else 3) + 1
    total = 0
    for ins in instructions:
        if ins.quality.kind != "dither":
            continue
        try:
            _, (out_w, out_h) = instruction_target(
                ins, header.size(ins.rotation.auto_orient), size_rules
            )
        except ParameterError:
            continue  # the derivative fails alone, with its own message, before any dither
        radians = math.radians(ins.rotation.degrees)
        cos, sin = abs(math.cos(radians)), abs(math.sin(radians))
        # An angle that is not a multiple of 90 widens the canvas to the turned box.
        turned_w = math.ceil(out_w * cos + out_h * sin - 1e-9)
        turned_h = math.ceil(out_w * sin + out_h * cos - 1e-9)
        strip = turned_w * min(turned_h, STRIP) * DITHER_STRIP_BYTES
        total += turned_w * turned_h * per_pixel + strip
    return total


def probe(path: str, size: int, max_pixels: int) -> Probe:
    """Read and check only the header of the file at ``path`` (``size`` bytes): accepted loader,
    and the pixel limit."""
    try:
        header = _open(path, "sequential", DEFAULT_FAIL_ON)
    except pyvips.Error as exc:
        raise ImageRejectedError(
            f"not a supported image ({size} bytes): {vips_message(exc)}"
        ) from None
    loader = header.get("vips-loader") if header.get_typeof("vips-loader") else ""
    nick = loader.removesuffix("_buffer").removesuffix("_source")
    if nick not in _ALLOWED_NICKS:
        raise ImageRejectedError(f"image format {loader or 'unknown'!r} is not accepted")
    pixels = header.width * header.height
    if max_pixels and pixels > max_pixels:
        raise ImageRejectedError(
            f"image is {header.width}x{header.height} = {pixels} pixels, over the limit of "
            f"{max_pixels} (iiif_process.max_pixels / IIIF_PROCESS_MAX_PIXELS / -max-pixels)"
        )
    orientation = header.get("orientation") if header.get_typeof("orientation") else 1
    if FAIL_ON.get(nick, DEFAULT_FAIL_ON) != DEFAULT_FAIL_ON:
        header = _open(path, "sequential", FAIL_ON[nick])
    return Probe(header, nick, header.width, header.height, orientation, path)


# --- the source's own JPEG as the full-size derivative ---------------------------------------


def browser_jpeg(header: Probe) -> tuple[bytes, JpegLayout] | None:
    """The source's bytes and layout when they can be the full-size derivative as they are
    (metadata stripped): a JPEG a browser shows, whose pixels are the derivative's.

    That is: an 8-bit baseline or progressive JPEG (Huffman coded) of 1 or 3 components (CMYK
    and YCCK have 4), no alpha, sRGB or grey with no profile or an sRGB one (so no colour
    conversion would change a pixel), at most ``COPY_SOURCE_MAX_BYTES``, whose markers are
    well formed up to its end of image, with no metadata the stripping would leave in.
    """
    # tiles imports this module: its helpers are imported when first needed.
    from .tiles import COPY_SOURCE_MAX_BYTES, _already_srgb

    image = header.image
    if header.loader != "jpegload" or image.hasalpha() or not _already_srgb(image):
        return None
    try:
        if not header.path or os.path.getsize(header.path) > COPY_SOURCE_MAX_BYTES:
            return None
        with open(header.path, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    layout = jpeg_layout(data)
    if layout is None or not browser_ready(layout):
        return None
    return data, layout


def exif_orientation(orientation: int) -> bytes:
    """A minimal EXIF APP1 segment holding only the orientation tag (big-endian TIFF, one IFD
    entry: tag 0x0112, SHORT, count 1)."""
    tiff = b"MM\x00\x2a" + struct.pack(">IH", 8, 1)
    tiff += struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    body = b"Exif\x00\x00" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


def published_jpeg(data: bytes, layout: JpegLayout, keep_all: bool, orientation: int) -> bytes:
    """The source JPEG as the full-size derivative: with ``keep_all``, its bytes as they are;
    else its image data untouched with only JFIF, the (sRGB) ICC profile and Adobe's colour
    transform flag kept (EXIF, XMP, IPTC, comments and any trailer after EOI dropped), plus the
    EXIF orientation tag when ``orientation`` is not 1 (rotation ``-1``, as a re-encode has)."""
    if keep_all:
        return data
    # A view, not a copy: the image data is copied once, into the result.
    stripped = jpeg_without_metadata(memoryview(data)[: layout.end])  # bytes-like is enough
    if stripped is None:  # jpeg_layout walked the same markers: not expected
        raise ImageRejectedError("cannot remove the source JPEG's metadata")
    if orientation in (0, 1):
        return stripped
    # After SOI and JFIF's APP0 when there is one (JFIF wants to be first).
    at = 2
    if stripped[2:4] == b"\xff\xe0":
        at += 2 + int.from_bytes(stripped[4:6], "big")
    return stripped[:at] + exif_orientation(orientation) + stripped[at:]


# Shrink-on-load factors of the loaders that have one (JPEG decodes at 1/2, 1/4, 1/8 directly).
_SHRINK_ON_LOAD = {"jpegload": (8, 4, 2)}


def largest_shrink(
    loader: str, full: tuple[int, int], target: tuple[int, int], margin: float
) -> int:
    """The largest shrink-on-load of ``loader`` whose decode of a ``full``-sized image still has
    at least ``margin`` times the ``target``'s pixels across, on each side (1: none)."""
    full_w, full_h = full
    for shrink in _SHRINK_ON_LOAD.get(loader, ()):
        if full_w // shrink >= margin * target[0] and full_h // shrink >= margin * target[1]:
            return shrink
    return 1


# How much larger than the biggest derivative made from it the whole image's decode must stay.
# 1: libjpeg's DCT-domain 1/2, 1/4, 1/8 decode is a clean low-pass, and a lanczos3 resize of it
# to a target at least as small is within 51 dB PSNR (max 4 levels) of the same resize of the
# full decode (6000x4000 photo to 2048 and to 1024 wide, measured): no visible difference, for
# half the decode and resize work. (libvips' own thumbnail keeps 2x; the streamed pass of a huge
# image below still does.)
DECODE_MARGIN = 1.0
STREAM_MARGIN = 2.0

# Dithered derivatives no larger than this on either side are dithered together, in one pass
# (go-iiif's default set: ``dc`` at 800x533 and ``ds`` at 320x320 take the 1,864 wavefront
# steps of ``dc`` instead of 2,824); each holds a few MB at most while its group waits.
JOINT_DITHER_SIDE = 1024


class SourceImage:
    """A source image: decoded once into memory (first page / frame only), or for a huge image
    streamed from its file for each pass, so memory holds strips, never the whole image.

    The decode happens at the first use of the pixels, at :attr:`shrink` (1/2, 1/4 or 1/8 of a
    JPEG's size straight from libjpeg) when :meth:`Renderer.plan` found that no derivative
    needs more; sizes and regions are always computed on the full image (:meth:`size`).
    """

    def __init__(self, header: Probe) -> None:
        self.loader = header.loader
        self.orientation = header.orientation
        self.streamed = header.streamed
        self.header = header
        self._path = header.path
        self._fail_on = header.fail_on
        image = header.image
        # The source's colour profile, kept for the derivatives (their pixels become sRGB).
        self.icc: bytes | None = (
            image.get("icc-profile-data") if image.get_typeof("icc-profile-data") else None
        )
        # The decode's shrink-on-load factor (1 = full size); set before the first decode.
        self.shrink = 1
        # Decoded rasters by (shrink, turned by the EXIF orientation).
        self._rasters: dict[tuple[int, bool], pyvips.Image] = {}
        self._scaled: dict[bool, list[pyvips.Image]] = {True: [], False: []}
        self._crops: dict[tuple[bool, int, int], pyvips.Image] = {}
        self._jpeg: tuple[bytes, JpegLayout] | None = None
        self._jpeg_read = False
        # The whole-image downscale (oriented, width, height) every other derivative is made
        # from, when the plan found one: made in one sequential pass from the decoder.
        self._one_pass: tuple[bool, int, int] | None = None
        # Derivatives may be made from two threads (full-size encodes beside the resizing).
        self._lock = threading.RLock()

    def size(self, auto_orient: bool) -> tuple[int, int]:
        """The full image's width and height, turned by the EXIF orientation when
        ``auto_orient`` (whatever scale it is decoded at)."""
        return self.header.size(auto_orient)

    def use_shrink(self, shrink: int) -> None:
        """Decode at 1/``shrink`` of the full size (a JPEG only; ignored once decoded, and for a
        streamed image, which chooses the shrink of each pass)."""
        with self._lock:
            if not self._rasters and not self.streamed and self.loader in _SHRINK_ON_LOAD:
                self.shrink = shrink

    def decode_into(self, need: tuple[bool, int, int]) -> None:
        """Make the whole-image downscale ``need`` (oriented, width, height) straight from one
        sequential decode at :attr:`shrink`, the decoded image never held whole in memory (for a
        24 MP JPEG at 1/2: 18 MB and a copy less, same pixels): the plan found that every other
        derivative is made from it. Ignored once decoded, for a streamed image, and when the
        EXIF orientation would turn it (turning needs the whole image)."""
        with self._lock:
            turned = need[0] and self.orientation not in (0, 1)
            if not self._rasters and not self.streamed and not turned:
                self._one_pass = need

    def _decode(self, shrink: int) -> pyvips.Image:
        try:
            if shrink == 1:
                # Sequential read straight into memory: the single decode.
                return self.header.image.copy_memory()
            return _open(self._path, "sequential", self._fail_on, shrink=shrink).copy_memory()
        except pyvips.Error as exc:
            raise ImageRejectedError(
                f"cannot decode {self.loader} image: {vips_message(exc)}"
            ) from None

    def _raster(self, shrink: int, auto_orient: bool) -> pyvips.Image:
        """The decoded image at 1/``shrink``, turned by the EXIF orientation when asked."""
        turned = auto_orient and self.orientation not in (0, 1)
        with self._lock:
            key = (shrink, turned)
            if key not in self._rasters:
                if turned:
                    self._rasters[key] = self._raster(shrink, False).autorot()
                else:
                    self._rasters[key] = self._decode(shrink)
            return self._rasters[key]

    @property
    def raw(self) -> pyvips.Image:
        """The source as decoded (at :attr:`shrink`), not turned; a streamed image's header."""
        return self.header.image if self.streamed else self._raster(self.shrink, False)

    def _stream(self, auto_orient: bool, shrink: int = 1, random: bool = False) -> pyvips.Image:
        """A fresh pass over a streamed source, top to bottom; random access (which libvips
        serves from a disk copy for formats that lack it) only to turn the image."""
        rotate = auto_orient and self.orientation not in (0, 1)
        options = {"shrink": shrink} if shrink > 1 else {}
        access = "random" if rotate or random else "sequential"
        image = _open(self._path, access, self._fail_on, **options)
        return image.autorot() if rotate else image

    def _shrink_for(self, auto_orient: bool, width: int, height: int) -> int:
        """The largest shrink-on-load of a streamed pass that still leaves twice the target's
        pixels across."""
        return largest_shrink(self.loader, self.size(auto_orient), (width, height), STREAM_MARGIN)

    def base(self, auto_orient: bool, random: bool = False) -> pyvips.Image:
        """The full image at full size, with the EXIF orientation applied unless ``auto_orient``
        is false; ``random``: it will be read out of order (turned), not top to bottom.

        When the plan shrank the decode, this is a second, full-size decode (the plan avoids
        that: it shrinks only when nothing needs the full size)."""
        if self.streamed:
            return self._stream(auto_orient, random=random)
        return self._raster(1, auto_orient)

    def scaled(self, auto_orient: bool, width: int, height: int, keep: bool) -> pyvips.Image:
        """The full region at width x height in sRGB, made from the smallest kept copy that is
        at least as large (a cascade: each size from the previous one, lanczos3 each time).

        ``keep`` stores the result (in memory) as a starting point for later, smaller targets.
        """
        with self._lock:
            return self._scaled_locked(auto_orient, width, height, keep)

    def _scaled_locked(
        self, auto_orient: bool, width: int, height: int, keep: bool
    ) -> pyvips.Image:
        kept = self._scaled[auto_orient]
        for image in kept:
            if image.width == width and image.height == height:
                return image
        candidates = [i for i in kept if i.width >= width and i.height >= height]
        if candidates:
            source = min(candidates, key=lambda i: i.width)
            out = _resize(source, width, height)
        elif (auto_orient, width, height) == self._one_pass and not self._rasters:
            self._one_pass = None
            options = {"shrink": self.shrink} if self.shrink > 1 else {}
            try:
                decoder = _open(self._path, "sequential", self._fail_on, **options)
                out = to_srgb(_resize(decoder, width, height)).copy_memory()
            except pyvips.Error as exc:  # the decode fails here, as _decode's would
                raise ImageRejectedError(
                    f"cannot decode {self.loader} image: {vips_message(exc)}"
                ) from None
            kept.append(out)
            return out
        elif self.streamed:
            out = to_srgb(
                _resize(
                    self._stream(auto_orient, self._shrink_for(auto_orient, width, height)),
                    width,
                    height,
                )
            )
        else:
            decoded = self._raster(self.shrink, auto_orient)
            if decoded.width < width or decoded.height < height:
                decoded = self.base(auto_orient)  # more than the plan allowed for
            out = to_srgb(_resize(decoded, width, height))
        if keep or self.streamed:
            # A streamed pass can be read only once, top to bottom: hold the (small) result.
            out = out.copy_memory()
            kept.append(out)
        return out

    def cover_size(self, auto_orient: bool, width: int, height: int) -> tuple[int, int]:
        """The size the smart crop ``-1,-1,width,height`` scales the whole image to before it
        cuts: just covering width x height, never enlarged."""
        full_w, full_h = self.size(auto_orient)
        scale = min(1.0, max(width / full_w, height / full_h))
        cover_w = max(min(width, full_w), round(full_w * scale))
        cover_h = max(min(height, full_h), round(full_h * scale))
        return cover_w, cover_h

    def smart_thumbnail(self, auto_orient: bool, width: int, height: int) -> pyvips.Image:
        """go-iiif's smart crop ``-1,-1,w,h``: the w x h thumbnail of the most interesting part.

        Like libvips' ``thumbnail_image(w, height=h, crop="attention")``: the image is scaled
        down until it just covers w x h (never enlarged), then the w x h area where libvips'
        attention strategy points is cut from it. The scaled copy comes from the smallest kept
        copy that still covers w x h, so this costs a few small images, not a full-size pass.
        """
        with self._lock:
            return self._smart_thumbnail_locked(auto_orient, width, height)

    def _smart_thumbnail_locked(self, auto_orient: bool, width: int, height: int) -> pyvips.Image:
        cache_key = (auto_orient, width, height)
        if cache_key not in self._crops:
            cover_w, cover_h = self.cover_size(auto_orient, width, height)
            if (cover_w, cover_h) == self.size(auto_orient):
                cover = to_srgb(self.base(auto_orient))
            else:
                cover = self.scaled(auto_orient, cover_w, cover_h, keep=False)
            crop_w, crop_h = min(width, cover_w), min(height, cover_h)
            if (crop_w, crop_h) != (cover_w, cover_h):
                cover = cover.smartcrop(crop_w, crop_h, interesting="attention")
            self._crops[cache_key] = cover.copy_memory()
        return self._crops[cache_key]

    def as_published(self) -> tuple[bytes, JpegLayout] | None:
        """The source's bytes and their layout when they can be published as they are (see
        :func:`browser_jpeg`), else None. Read once."""
        with self._lock:
            if not self._jpeg_read:
                self._jpeg, self._jpeg_read = browser_jpeg(self.header), True
            return self._jpeg

    def verify(self) -> None:
        """Decode the whole image once if nothing has yet (at the plan's shrink: libjpeg still
        reads every coefficient), so damaged data fails the image as it does when re-encoded."""
        if self.streamed:
            self._stream(False, max(_SHRINK_ON_LOAD.get(self.loader, (1,)))).min()
        else:
            self.raw  # noqa: B018 (the decode is the point)


def _rotate(image: pyvips.Image, rotation: Rotation) -> pyvips.Image:
    if rotation.mirror:
        image = image.fliphor()
    degrees = rotation.degrees
    if degrees == 90:
        return image.rot("d90")
    if degrees == 180:
        return image.rot("d180")
    if degrees == 270:
        return image.rot("d270")
    if degrees:
        return image.rotate(degrees)
    return image


def _split_alpha(image: pyvips.Image) -> tuple[pyvips.Image, pyvips.Image | None]:
    if image.hasalpha():
        return image.extract_band(0, n=image.bands - 1), image.extract_band(image.bands - 1)
    return image, None


def _join_alpha(image: pyvips.Image, alpha: pyvips.Image | None) -> pyvips.Image:
    return image if alpha is None else image.bandjoin(alpha)


def _gray(image: pyvips.Image) -> pyvips.Image:
    return image if image.bands == 1 else image.colourspace("b-w")


def dither(image: pyvips.Image) -> pyvips.Image:
    """go-iiif's dither: Atkinson error diffusion to black and white (alpha kept)."""
    colour, alpha = _split_alpha(image)
    return _join_alpha(atkinson(colour), alpha)


def dither_many(images: Sequence[pyvips.Image]) -> list[pyvips.Image]:
    """:func:`dither` of several images, diffused together (the cost of the largest one's
    steps, not of all: :func:`iiif_process.atkinson._diffuse`); the same pixels."""
    split = [_split_alpha(image) for image in images]
    dithered = atkinson_many([colour for colour, _ in split])
    return [_join_alpha(out, alpha) for out, (_, alpha) in zip(dithered, split, strict=True)]


def _unsharp(
    colour: pyvips.Image, blurred: pyvips.Image, amount: float, threshold: float
) -> pyvips.Image:
    """Each pixel of ``colour`` plus ``amount`` x its difference from ``blurred`` where that
    exceeds ``threshold`` (a fraction of full scale), as 8-bit."""
    diff = colour.cast("float") - blurred
    mask = diff.abs() > threshold * 255
    return mask.ifthenelse(colour + diff * amount, colour).cast("uchar")


@functools.lru_cache(maxsize=16)
def _unsharp_table(amount: float, threshold: float) -> pyvips.Image:
    """:func:`_unsharp` of every (pixel, blurred) pair of 8-bit values, made by the very same
    libvips operations on a 256 x 256 image of all pairs, as a 65,536-entry table indexed by
    ``blurred << 8 | pixel``: one lookup per sample then gives the same result as the float
    pipeline on the whole image, which cost four times as much."""
    pairs = pyvips.Image.xyz(256, 256).cast("uchar")
    table = _unsharp(pairs[0], pairs[1], amount, threshold).copy_memory()
    return pyvips.Image.new_from_memory(table.write_to_memory(), 256 * 256, 1, 1, "uchar")


def crisp(image: pyvips.Image, radius: float, amount: float, threshold: float) -> pyvips.Image:
    """Unsharp mask: add ``amount`` x (image - gaussian blur of sigma ``radius``) where the
    difference exceeds ``threshold`` (a fraction of full scale)."""
    colour, alpha = _split_alpha(image)
    if radius <= 0 or amount == 0:
        return image
    blurred = colour.gaussblur(radius)
    if colour.format == "uchar" and blurred.format == "uchar":
        index = (blurred.cast("ushort") << 8) | colour.cast("ushort")
        sharpened = index.maplut(_unsharp_table(amount, threshold))
    else:
        sharpened = _unsharp(colour, blurred, amount, threshold)
    return _join_alpha(sharpened.copy(interpretation=colour.interpretation), alpha)


def apply_quality(image: pyvips.Image, quality: Quality) -> pyvips.Image:
    """Apply an IIIF / go-iiif quality."""
    kind = quality.kind
    if kind in ("default", "color"):
        return image
    if kind == "gray":
        colour, alpha = _split_alpha(image)
        return _join_alpha(_gray(colour), alpha)
    if kind == "bitonal":
        colour, alpha = _split_alpha(image)
        out = (_gray(colour) > 127).ifthenelse(255, 0).cast("uchar").copy(interpretation="b-w")
        return _join_alpha(out, alpha)
    if kind == "dither":
        return dither(image)
    if kind == "crisp":
        return crisp(image, *quality.crisp)
    raise ParameterError(f"unsupported quality {kind!r}")


_KEEP = pyvips.enums.ForeignKeep


@dataclass(frozen=True)
class Metadata:
    """What a derivative carries besides pixels (issue #8 item 5: privacy).

    By default only the colour profile (when the source had one) and, for a derivative whose
    orientation was not applied (rotation ``-1``), the orientation tag; EXIF (GPS position,
    artist, camera serial), XMP, IPTC and comments are stripped. ``keep_all``
    (``iiif_process.keep_metadata``) keeps the source's metadata as it is.
    """

    keep_all: bool = False
    icc: bytes | None = None  # the source's profile
    orientation: int = 1  # to record in the derivative (1 = none)


def _with_metadata(image: pyvips.Image, meta: Metadata) -> tuple[pyvips.Image, int, dict]:
    """The image to save, the saver's ``keep`` flags and its extra options."""
    options: dict[str, object] = {}
    image = image.copy()
    if meta.keep_all:
        keep = _KEEP.ALL
    else:
        keep = _KEEP.NONE
        # The savers rebuild EXIF from these fields: drop them all, then set the orientation.
        for name in image.get_fields():
            if name.startswith("exif-") or name == "orientation":
                image.remove(name)
        if meta.orientation not in (0, 1):
            image.set_type(pyvips.GValue.gint_type, "orientation", meta.orientation)
            keep |= _KEEP.EXIF
    if image.get_typeof("icc-profile-data"):
        image.remove("icc-profile-data")
    if meta.icc is not None:
        # The pixels are sRGB now: the source's own profile when it was sRGB, else libvips'
        # built-in sRGB (or grey) profile, which describes them.
        keep |= _KEEP.ICC
        colour = image.bands - (1 if image.hasalpha() else 0) >= 3
        if not colour:
            options["profile"] = "sgrey"
        elif "srgb" in _icc_description(meta.icc).lower():
            image.set_type(pyvips.GValue.blob_type, "icc-profile-data", meta.icc)
        else:
            options["profile"] = "srgb"
    return image, keep, options


def encode(
    image: pyvips.Image, fmt: str, meta: Metadata | None = None, jpeg_quality: int = JPEG_Q
) -> bytes:
    """Encode to ``fmt`` in memory: JPEG at ``jpeg_quality`` (alpha flattened onto white), PNG,
    WebP, deflate TIFF, GIF, carrying only the metadata ``meta`` allows (default: none)."""
    if fmt == "jpg" and image.hasalpha():
        image = image.flatten(background=255)
    image, keep, options = _with_metadata(image, meta or Metadata())
    if fmt == "jpg":
        return image.jpegsave_buffer(Q=jpeg_quality, keep=keep, **options)
    if fmt == "png":
        return image.pngsave_buffer(keep=keep, **options)
    if fmt == "webp":
        return image.webpsave_buffer(keep=keep, **options)
    if fmt == "tif":
        return image.tiffsave_buffer(
            keep=keep, compression="deflate", predictor="horizontal", **options
        )
    if fmt == "gif":
        return image.gifsave_buffer(keep=keep, **options)
    raise ParameterError(f"unsupported format {fmt!r}")


def _one_pass(
    needs: Sequence[tuple[bool, int, int] | None], kept: Sequence[bool]
) -> tuple[bool, int, int] | None:
    """The kept whole-image downscale that every other need fits in (same orientation, no
    larger on either side), so that it alone reads the decoder; None when there is none."""
    if not needs or any(need is None for need in needs):
        return None
    sized = [(need, keep) for need, keep in zip(needs, kept, strict=True) if need is not None]
    biggest, keep = max(sized, key=lambda pair: pair[0][1] * pair[0][2])
    if not keep:
        return None
    auto, width, height = biggest
    if all(n[0] == auto and n[1] <= width and n[2] <= height for n, _ in sized):
        return biggest
    return None


class Renderer:
    """Makes every derivative of one source image.

    :meth:`plan` (given the whole instruction set) lets the source skip what no derivative
    needs: a full-size JPEG derivative of a JPEG a browser shows is the source's own bytes
    (:meth:`passes_through`), and the decode shrinks on load as far as the biggest remaining
    derivative allows.
    """

    def __init__(
        self,
        source: SourceImage,
        keep_metadata: bool = False,
        size_rules: str = DEFAULT_SIZE_RULES,
        jpeg_quality: int = JPEG_Q,
    ) -> None:
        self.source = source
        self.keep_metadata = keep_metadata
        self.size_rules = size_rules  # when a size may enlarge: "2.1" (go-iiif) or "3"
        self.jpeg_quality = jpeg_quality
        # Whether the plan found derivatives that decode the source (and so check its data).
        self._decoded_anyway = False
        # The small dithered derivatives the plan found (dithered together at the first of
        # them), and their results until rendered.
        self._dither_group: tuple[Instruction, ...] = ()
        self._dithered: dict[str, pyvips.Image] = {}
        self._order: tuple[Instruction, ...] = ()  # the derivatives made, in render order
        self._dither_lock = threading.Lock()

    def metadata(self, instruction: Instruction) -> Metadata:
        """What the derivative of ``instruction`` carries besides pixels."""
        oriented = instruction.rotation.auto_orient
        return Metadata(
            keep_all=self.keep_metadata,
            icc=self.source.icc,
            orientation=1 if oriented else self.source.orientation,
        )

    def _target(self, ins: Instruction) -> tuple[tuple[int, int, int, int], tuple[int, int]]:
        """The instruction's region box on the full image and its output size (a smart crop's
        box is its crop size; the output is then sized from that)."""
        try:
            return instruction_target(
                ins, self.source.size(ins.rotation.auto_orient), self.size_rules
            )
        except ParameterError as exc:
            raise ParameterError(f"instruction {ins.label!r}: {exc}") from None

    def _whole(self, ins: Instruction, box: tuple[int, int, int, int]) -> bool:
        full = self.source.size(ins.rotation.auto_orient)
        return ins.region.kind == "full" or box == (0, 0, *full)

    def passes_through(self, ins: Instruction) -> bool:
        """Whether the derivative is the source JPEG itself (metadata stripped, no re-encode):
        the whole image at full size, not turned (rotation 0 on an upright source, or ``-1``,
        which records the source's orientation instead), default or color quality, JPEG, from a
        source a browser shows as it is (:func:`browser_jpeg`)."""
        rotation = ins.rotation
        if (
            ins.format != "jpg"
            or ins.quality.kind not in ("default", "color")
            or rotation.degrees
            or rotation.mirror
            or (rotation.auto_orient and self.source.orientation not in (0, 1))
            or self.source.loader != "jpegload"
        ):
            return False
        box, target = self._target(ins)
        if not self._whole(ins, box) or target != self.source.size(rotation.auto_orient):
            return False
        return self.source.as_published() is not None

    def _needs(self, ins: Instruction) -> tuple[bool, int, int] | None:
        """The smallest whole image (oriented, width, height) the derivative can be made from,
        or None when it needs the full-size pixels (a crop, a full-size or enlarged output)."""
        auto = ins.rotation.auto_orient
        full = self.source.size(auto)
        box, (width, height) = self._target(ins)
        if ins.region.kind == "smart" and box != (0, 0, *full):
            return (auto, *self.source.cover_size(auto, int(ins.region.w), int(ins.region.h)))
        if not self._whole(ins, box) or width > full[0] or height > full[1]:
            return None
        return None if (width, height) == full else (auto, width, height)

    def _keeps(self, ins: Instruction) -> bool:
        """Whether the derivative's whole-image downscale is kept for smaller ones (as
        :meth:`_image` decides)."""
        box, (width, _) = self._target(ins)
        full_w, _ = self.source.size(ins.rotation.auto_orient)
        return self._whole(ins, box) and ins.size.kind != "wh" and width < full_w

    def plan(
        self, instructions: Sequence[Instruction], thumbnail_box: int = 0, full_size: bool = False
    ) -> int:
        """Choose the cheapest decode every derivative allows (and a ``thumbnail_box`` x
        ``thumbnail_box`` thumbnail for the services, when given; ``full_size``: something else
        needs the full-size pixels): the largest shrink-on-load that leaves the biggest
        derivative not made from the source's bytes at least :data:`DECODE_MARGIN` times its
        pixels. Returns the shrink (1 = full size)."""
        if full_size:
            self._decoded_anyway = True
            return self._use(1)
        made = [ins for ins in instructions if not self.passes_through(ins)]
        dithers = tuple(
            ins
            for ins in made
            if ins.quality.kind == "dither" and max(self._target(ins)[1]) <= JOINT_DITHER_SIDE
        )
        self._dither_group = dithers if len(dithers) > 1 else ()
        self._order = tuple(made)
        needs = [self._needs(ins) for ins in made]
        kept = [self._keeps(ins) for ins in made]
        if thumbnail_box:
            needs.append((True, *fit_box(*self.source.size(True), thumbnail_box)))
            kept.append(True)  # the services' thumbnail is kept (process._render)
        self._decoded_anyway = bool(needs)
        one_pass = _one_pass(needs, kept)
        if one_pass is not None:
            self.source.decode_into(one_pass)
        shrink = max(_SHRINK_ON_LOAD.get(self.source.loader, (1,)))
        for need in needs:
            if need is None:
                return self._use(1)
            auto, width, height = need
            full = self.source.size(auto)
            shrink = min(
                shrink, largest_shrink(self.source.loader, full, (width, height), DECODE_MARGIN)
            )
        return self._use(shrink)

    def _use(self, shrink: int) -> int:
        self.source.use_shrink(shrink)
        return self.source.shrink

    def render(self, instruction: Instruction, uri: str) -> Rendered:
        """Make one derivative, encoded, in memory."""
        if self.passes_through(instruction):
            return self._published(instruction, uri)
        try:
            image = self._image(instruction)
            data = encode(image, instruction.format, self.metadata(instruction), self.jpeg_quality)
        except pyvips.Error as exc:
            raise ImageRejectedError(
                f"derivative {instruction.label!r} failed: {vips_message(exc)}"
            ) from None
        return Rendered(instruction, instruction.key(uri), data, image.width, image.height)

    def _published(self, ins: Instruction, uri: str) -> Rendered:
        """The source's own JPEG as the derivative; its data must decode cleanly (checked here
        unless the plan has other derivatives decode it: a damaged source then fails there)."""
        found = self.source.as_published()
        assert found is not None  # passes_through() said so
        if not self._decoded_anyway:
            self.source.verify()
        meta = self.metadata(ins)
        data = published_jpeg(*found, keep_all=meta.keep_all, orientation=meta.orientation)
        width, height = self.source.size(ins.rotation.auto_orient)
        return Rendered(ins, ins.key(uri), data, width, height)

    def _unfinished(self, ins: Instruction) -> pyvips.Image:
        """The derivative's pixels before its quality: region, size and rotation applied."""
        src = self.source
        auto = ins.rotation.auto_orient
        box, (width, height) = self._target(ins)
        full_w, full_h = src.size(auto)
        if self._whole(ins, box):
            if (width, height) == (full_w, full_h):
                image = to_srgb(src.base(auto, random=ins.rotation.degrees != 0))
            else:
                # A whole-image downscale: keep it when it can seed a smaller derivative.
                keep = ins.size.kind != "wh" and width < full_w
                image = src.scaled(auto, width, height, keep)
        else:
            if ins.region.kind == "smart":
                region = src.smart_thumbnail(auto, int(ins.region.w), int(ins.region.h))
            else:
                base = src.base(auto, random=ins.rotation.degrees != 0)
                region = base.crop(*box)
            if (width, height) == (region.width, region.height):
                image = to_srgb(region)
            else:
                image = to_srgb(_resize(region, width, height))
        return _rotate(image, ins.rotation)

    def _image(self, ins: Instruction) -> pyvips.Image:
        if ins in self._dither_group:
            return self._dithered_together(ins)
        return apply_quality(self._unfinished(ins), ins.quality)

    def _dithered_together(self, ins: Instruction) -> pyvips.Image:
        """The dithered derivative ``ins`` of the plan's group of small dithers: at the first of
        them, every one not yet made is dithered in one pass (:func:`dither_many`).

        A later member's pixels must be what they would be at its turn: the whole-image
        downscales rendered before it are kept as seeds of smaller ones (the cascade), so those
        are made first, in render order, exactly as their own turns would make them (which
        then find them made)."""
        with self._dither_lock:
            if ins.label not in self._dithered:
                group = [i for i in self._dither_group if i.label not in self._dithered]
                labels = [i.label for i in self._order]
                done = labels.index(ins.label) if ins.label in labels else len(labels)
                images = []
                for member in group:
                    try:
                        turn = labels.index(member.label)
                        for earlier in self._order[done + 1 : turn]:
                            if self._keeps(earlier):
                                self._unfinished(earlier)
                        done = max(done, turn)
                        images.append(self._unfinished(member))
                    except pyvips.Error as exc:  # named after its own derivative
                        raise ImageRejectedError(
                            f"derivative {member.label!r} failed: {vips_message(exc)}"
                        ) from None
                self._dithered.update(
                    zip((i.label for i in group), dither_many(images), strict=True)
                )
            return self._dithered.pop(ins.label)
