"""Real image files made in the tests (no fixtures on disk), good and hostile."""

from __future__ import annotations

import io
import random
import struct
import zlib
from functools import cache

from PIL import Image, ImageDraw, ImageFilter

RED, BLUE, GREEN, WHITE = (220, 20, 30), (20, 40, 220), (30, 200, 60), (255, 255, 255)
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
    b'22-rdf-syntax-ns#"><rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
    b' xmp:CreatorTool="secret-camera"/></rdf:RDF></x:xmpmeta>'
)


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def halves(size: tuple[int, int], left=RED, right=BLUE, mode="RGB") -> Image.Image:
    image = Image.new(mode, size, right)
    ImageDraw.Draw(image).rectangle([0, 0, size[0] // 2 - 1, size[1]], fill=left)
    return image


def jpeg_rotated_with_gps() -> bytes:
    """Stored 1200x1000, left red and right blue; EXIF orientation 6 (display rotated 90 deg
    clockwise: red on top), GPS coordinates, XMP, a comment and an sRGB ICC profile."""
    from PIL import ImageCms

    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "SecretCam"
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.5), 3: "E", 4: (13.0, 24.0, 36.0)}
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return encode(
        halves((1200, 1000)),
        "JPEG",
        quality=95,
        exif=exif.tobytes(),
        xmp=XMP,
        comment=b"shot at home",
        icc_profile=icc,
    )


def png_with_alpha() -> bytes:
    """500x400: the left half fully transparent, the right half opaque green."""
    image = Image.new("RGBA", (500, 400), (*GREEN, 255))
    ImageDraw.Draw(image).rectangle([0, 0, 249, 400], fill=(0, 0, 0, 0))
    return encode(image, "PNG")


def webp() -> bytes:
    return encode(halves((800, 600)), "WEBP", quality=95)


def heic() -> bytes:
    from media.heif import register_heif

    register_heif()
    return encode(halves((640, 480)), "HEIF", quality=95)


def small_jpeg() -> bytes:
    return encode(halves((320, 200)), "JPEG", quality=95)


def flat(color: tuple[int, int, int], size=(400, 400), fmt="PNG") -> bytes:
    return encode(Image.new("RGB", size, color), fmt)


def photo(width: int = 4000, height: int = 3000, seed: int = 4) -> bytes:
    """A photo-like JPEG: smooth gradients, soft shapes and sensor-like noise."""
    base = Image.linear_gradient("L").resize((width, height))
    image = Image.merge(
        "RGB",
        (
            base,
            Image.radial_gradient("L").resize((width, height)),
            base.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        ),
    )
    draw = ImageDraw.Draw(image)
    rnd = random.Random(seed)
    for _ in range(300):
        x, y, r = rnd.randrange(width), rnd.randrange(height), rnd.randrange(20, width // 10)
        color = (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256))
        draw.ellipse([x - r, y - r, x + r, y + r], fill=color)
    image = image.filter(ImageFilter.GaussianBlur(3))
    image = Image.blend(image, Image.effect_noise((width, height), 12).convert("RGB"), 0.15)
    return encode(image, "JPEG", quality=92)


def textured(seed: int, size=(640, 480)) -> Image.Image:
    rnd = random.Random(seed)
    image = Image.new("RGB", size, (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)))
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x, y = rnd.randrange(size[0]), rnd.randrange(size[1])
        color = (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256))
        draw.rectangle([x, y, x + rnd.randrange(40, 200), y + rnd.randrange(40, 200)], fill=color)
    return image


# --- hostile inputs -------------------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@cache
def png_bomb(side: int = 50000) -> bytes:
    """A tiny 1-bit PNG that decodes to side x side pixels (2.5 gigapixels at 50000)."""
    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    compressor = zlib.compressobj(9)
    block = row * 500
    body = b"".join(compressor.compress(block) for _ in range(side // 500))
    body += compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", body)
        + _png_chunk(b"IEND", b"")
    )


def png_with_corrupt_pixels() -> bytes:
    """Structurally valid (every CRC right) but its compressed pixel data is garbage."""
    header = struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0)
    garbage = bytes(random.Random(1).randrange(256) for _ in range(2000))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", garbage)
        + _png_chunk(b"IEND", b"")
    )


def png_html_polyglot() -> bytes:
    """A valid PNG whose text chunk is an HTML page with a script."""
    page = b"<html><body><script>alert(document.cookie)</script></body></html>"
    png = encode(halves((64, 64)), "PNG")
    return png[:33] + _png_chunk(b"tEXt", b"Comment\x00" + page) + png[33:]


def jpeg_with_huge_exif(total: int = 3 * 1024 * 1024) -> bytes:
    """A JPEG whose EXIF spans ~3 MB of APP1 segments (each at the 64 KB segment maximum)."""
    jpeg = encode(halves((64, 64)), "JPEG")
    payload = b"Exif\x00\x00" + b"\x00" * 65000
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:2] + segment * (total // len(segment) + 1) + jpeg[2:]


def truncated_jpeg() -> bytes:
    data = encode(textured(3), "JPEG", quality=90)
    return data[: len(data) * 6 // 10]


SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b"<script>alert(1)</script><rect width='10' height='10'/></svg>"
)
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto showpage\n"
TEXT = b"just some text pretending to be a photo\n"


def gif_with_script() -> bytes:
    return encode(Image.new("P", (10, 10)), "GIF", comment=b"<script>alert(1)</script>")


def tiff() -> bytes:
    return encode(halves((32, 32)), "TIFF")


def psd_header() -> bytes:
    return b"8BPS\x00\x01" + b"\x00" * 6 + struct.pack(">HIIHH", 3, 32, 32, 8, 3) + b"\x00" * 64
