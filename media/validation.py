"""Upload validation before any decode: type by content, container structure, header size.

Pure code over a seekable binary file; no Django. Every rejection is an `ImageRejected` carrying
the HTTP status and machine code the API answers with, so the service only translates it.

Order (cheapest and most decisive first): magic bytes (415 for anything but JPEG, PNG, WebP and
HEIC), a markup scan (polyglots), a walk of the container (truncation, data after the end,
oversized metadata), then Pillow's header parse restricted to the sniffed format, whose
dimensions are checked against the pixel cap before a single pixel is decoded.
"""

from __future__ import annotations

import struct
import warnings
import zlib
from dataclasses import dataclass
from typing import IO

from PIL import Image, UnidentifiedImageError

from media.heif import register_heif

CHUNK = 1 << 16


class ImageRejected(Exception):
    status = 400
    code = "invalid_image"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class UnsupportedImageType(ImageRejected):
    status = 415
    code = "unsupported_media_type"


class InvalidImage(ImageRejected):
    status = 400
    code = "invalid_image"


class ImageTooLarge(ImageRejected):
    status = 400
    code = "image_too_large"


@dataclass(frozen=True)
class ImageKind:
    name: str  # jpeg | png | webp | heic
    pillow_format: str  # the only format Pillow may open it as
    extension: str


JPEG = ImageKind("jpeg", "JPEG", "jpg")
PNG = ImageKind("png", "PNG", "png")
WEBP = ImageKind("webp", "WEBP", "webp")
HEIC = ImageKind("heic", "HEIF", "heic")
KINDS = {kind.name: kind for kind in (JPEG, PNG, WEBP, HEIC)}

# HEIF brands whose image payload is HEVC; AVIF and other ISO-BMFF files are not accepted.
HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
GENERIC_HEIF_BRANDS = {b"mif1", b"msf1"}

# Markup that turns a file into an HTML/SVG/PHP polyglot. Each is long and specific enough that
# its chance of appearing in compressed image data is negligible (~1e-6 over a 30 MB file).
MARKUP_SIGNATURES = (
    b"<script",
    b"<!doctype",
    b"<html>",
    b"<html ",
    b"<body>",
    b"<body ",
    b"<iframe",
    b"<svg xmlns",
    b"<?php ",
    b"<?xml-stylesheet",
    b"javascript:",
    b"onerror=",
    b"onload=",
)
_OVERLAP = max(len(sig) for sig in MARKUP_SIGNATURES)


@dataclass(frozen=True)
class Inspection:
    kind: ImageKind
    width: int  # as stored (before EXIF orientation)
    height: int
    metadata_bytes: int


def sniff(head: bytes) -> ImageKind | None:
    """The image kind named by the first bytes, never by a file name or Content-Type."""
    if head[:3] == b"\xff\xd8\xff":
        return JPEG
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return PNG
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head[4:8] == b"ftyp" and len(head) >= 16:
        box_size = struct.unpack(">I", head[:4])[0]
        major = head[8:12]
        compatible = {head[i : i + 4] for i in range(16, min(box_size, len(head)) - 3, 4)}
        if major in HEIC_BRANDS or (major in GENERIC_HEIF_BRANDS and compatible & HEIC_BRANDS):
            return HEIC
    return None


def inspect_image(
    fp: IO[bytes], *, size: int, max_pixels: int, max_metadata_bytes: int
) -> Inspection:
    """Validate an upload of `size` bytes without decoding it; raise `ImageRejected` if bad."""
    if size == 0:
        raise InvalidImage("The file is empty.")
    fp.seek(0)
    kind = sniff(fp.read(64))
    if kind is None:
        raise UnsupportedImageType("Only JPEG, PNG, WebP and HEIC images are accepted.")
    _scan_for_markup(fp)
    walk = {"jpeg": _walk_jpeg, "png": _walk_png, "webp": _walk_webp, "heic": _walk_heif}
    metadata_bytes = walk[kind.name](fp, size)
    if metadata_bytes > max_metadata_bytes:
        raise InvalidImage("The image carries too much metadata.")
    width, height = read_header_size(fp, kind, max_pixels=max_pixels)
    return Inspection(kind=kind, width=width, height=height, metadata_bytes=metadata_bytes)


def read_header_size(fp: IO[bytes], kind: ImageKind, *, max_pixels: int) -> tuple[int, int]:
    """Dimensions from the header (Pillow opens lazily), refused above `max_pixels`."""
    fp.seek(0)
    try:
        image = open_image(fp, kind)
    except Image.DecompressionBombError:
        raise ImageTooLarge(f"The image has more than {max_pixels} pixels.")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, struct.error):
        raise InvalidImage("The image is corrupt or truncated.")
    with image:
        width, height = image.size
    if width <= 0 or height <= 0:
        raise InvalidImage("The image has no pixels.")
    if width * height > max_pixels:
        raise ImageTooLarge(f"The image has more than {max_pixels} pixels.")
    return width, height


def open_image(fp: IO[bytes], kind: ImageKind) -> Image.Image:
    """Pillow's lazy open limited to one format.

    Our own pixel cap (checked by the callers) replaces Pillow's bomb warning; Pillow's hard
    limit (twice its warning size) still raises `DecompressionBombError` before any decode.
    """
    if kind is HEIC:
        register_heif()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(fp, formats=[kind.pillow_format])


def _scan_for_markup(fp: IO[bytes]) -> None:
    fp.seek(0)
    tail = b""
    while block := fp.read(CHUNK):
        window = (tail + block).lower()
        if any(signature in window for signature in MARKUP_SIGNATURES):
            raise InvalidImage("The file contains markup or script: it is not a plain image.")
        tail = window[-_OVERLAP:]


def _read_exact(fp: IO[bytes], count: int) -> bytes:
    data = fp.read(count)
    if len(data) != count:
        raise InvalidImage("The image is truncated.")
    return data


def _walk_jpeg(fp: IO[bytes], size: int) -> int:
    """Marker segments up to the first scan, then an end-of-image marker after it."""
    fp.seek(2)
    metadata = 0
    while True:
        byte = _read_exact(fp, 1)
        if byte != b"\xff":
            raise InvalidImage("The JPEG structure is corrupt.")
        marker = _read_exact(fp, 1)[0]
        while marker == 0xFF:  # fill bytes
            marker = _read_exact(fp, 1)[0]
        if marker in (0x01, *range(0xD0, 0xD8)):
            continue
        if marker in (0xD8, 0xD9):
            raise InvalidImage("The JPEG has no image data.")
        length = struct.unpack(">H", _read_exact(fp, 2))[0]
        if length < 2:
            raise InvalidImage("The JPEG structure is corrupt.")
        if 0xE0 <= marker <= 0xEF or marker == 0xFE:
            metadata += length
        if marker == 0xDA:
            fp.seek(length - 2, 1)
            break
        fp.seek(length - 2, 1)
        if fp.tell() > size:
            raise InvalidImage("The image is truncated.")
    # 0xFF 0xD9 cannot occur inside entropy-coded data (0xFF is stuffed), so its presence after
    # the first scan is the end of the image; trailing data (motion photos) is allowed.
    previous = b""
    while block := fp.read(CHUNK):
        if b"\xff\xd9" in previous + block:
            return metadata
        previous = block[-1:]
    raise InvalidImage("The image is truncated.")


_PNG_METADATA = {b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"iCCP"}


def _walk_png(fp: IO[bytes], size: int) -> int:
    """Every chunk with its CRC, IHDR first, IEND last and nothing after it."""
    fp.seek(8)
    metadata = 0
    first = True
    while True:
        header = _read_exact(fp, 8)
        length, chunk_type = struct.unpack(">I", header[:4])[0], header[4:]
        if length > 0x7FFFFFFF or fp.tell() + length + 4 > size:
            raise InvalidImage("The image is truncated.")
        if first and chunk_type != b"IHDR":
            raise InvalidImage("The PNG structure is corrupt.")
        first = False
        crc = zlib.crc32(chunk_type)
        remaining = length
        while remaining:
            data = _read_exact(fp, min(remaining, CHUNK))
            crc = zlib.crc32(data, crc)
            remaining -= len(data)
        if struct.unpack(">I", _read_exact(fp, 4))[0] != crc:
            raise InvalidImage("The PNG is corrupt (checksum mismatch).")
        if chunk_type in _PNG_METADATA:
            metadata += length
        if chunk_type == b"acTL":
            raise UnsupportedImageType("Animated images are not accepted.")
        if chunk_type == b"IEND":
            if fp.tell() != size:
                raise InvalidImage("The file has data after the end of the image.")
            return metadata


def _walk_webp(fp: IO[bytes], size: int) -> int:
    fp.seek(4)
    riff_size = struct.unpack("<I", _read_exact(fp, 4))[0]
    if riff_size + 8 > size or riff_size % 2:
        raise InvalidImage("The image is truncated.")
    if riff_size + 8 < size:
        raise InvalidImage("The file has data after the end of the image.")
    fp.seek(12)
    metadata = 0
    image_chunks = 0
    while fp.tell() < size:
        header = _read_exact(fp, 8)
        chunk_type, length = header[:4], struct.unpack("<I", header[4:])[0]
        padded = length + (length & 1)
        if fp.tell() + padded > size:
            raise InvalidImage("The image is truncated.")
        if chunk_type in (b"ANIM", b"ANMF"):
            raise UnsupportedImageType("Animated images are not accepted.")
        if chunk_type in (b"EXIF", b"XMP ", b"ICCP"):
            metadata += length
        if chunk_type in (b"VP8 ", b"VP8L"):
            image_chunks += 1
        fp.seek(padded, 1)
    if image_chunks != 1:
        raise InvalidImage("The WebP has no image data.")
    return metadata


def _walk_heif(fp: IO[bytes], size: int) -> int:
    """Top-level ISO-BMFF boxes must tile the file exactly."""
    fp.seek(0)
    position = 0
    while position < size:
        box_size = struct.unpack(">I", _read_exact(fp, 8)[:4])[0]
        header_size = 8
        if box_size == 1:
            box_size = struct.unpack(">Q", _read_exact(fp, 8))[0]
            header_size = 16
        elif box_size == 0:
            box_size = size - position
        if box_size < header_size or position + box_size > size:
            raise InvalidImage("The image is truncated.")
        position += box_size
        fp.seek(position)
    return 0  # HEIF metadata are items inside the file; libheif bounds what it reads
