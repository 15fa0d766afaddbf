"""The image pipeline: one decode per upload, then every variant. Pure code, no Django.

    render(fp, kind, variants=POST_VARIANTS, filter_id="juno", max_pixels=50_000_000)

Fast path: a JPEG is decoded with DCT scaling (`Image.draft`) straight to the smallest power-of-
two reduction still larger than the biggest variant, so a 12 MP photo decodes as 3 MP; each
chain of variants is then resized step by step (1080 -> 640 -> 320 -> 150), each step from the
previous, never from the full image. Orientation is applied once; the output is plain sRGB
JPEG carrying no metadata at all (no EXIF, GPS, XMP, comment or ICC segment).

Shape rules (Instagram's): the original-aspect chain is centre-cropped to an aspect ratio
between 4:5 and 1.91:1; images whose short side is under 320 px are upscaled to 320; wider than
1080 px downscaled to 1080. Square variants are a centre square of the whole frame.
"""

from __future__ import annotations

import io
import logging
import math
import struct
from dataclasses import dataclass
from functools import cache
from typing import BinaryIO

from celery.exceptions import SoftTimeLimitExceeded
from PIL import Image, ImageCms, UnidentifiedImageError

from media import hashes
from media.filters import lut_for
from media.validation import ImageKind, ImageTooLarge, InvalidImage, open_image

logger = logging.getLogger(__name__)

MIN_SIDE = 320
MAX_WIDTH = 1080
MIN_ASPECT = 4 / 5
MAX_ASPECT = 1.91
JPEG_QUALITY = 82
WHITE = (255, 255, 255)
# Bicubic is a proper convolution when downscaling in Pillow (antialiased, support scaled by
# the ratio): visually on par with Lanczos at these ratios, and a third cheaper.
RESAMPLE = Image.Resampling.BICUBIC
# After DCT scaling the steps to the first variants shrink by less than 2x, where a triangle
# filter is as good (36.9 vs 37.0 dB PSNR against a full-size Lanczos reference on the bench
# photo) and cheaper; the smaller variants keep bicubic.
GENTLE_RESAMPLE = Image.Resampling.BILINEAR


@dataclass(frozen=True)
class Variant:
    size: int
    square: bool

    @property
    def name(self) -> str:
        return f"{self.size}_square" if self.square else str(self.size)


POST_VARIANTS = tuple(
    Variant(size, square) for square in (False, True) for size in (1080, 640, 320, 150)
)
PROFILE_VARIANTS = (Variant(320, True), Variant(150, True))


@dataclass(frozen=True)
class RenderedVariant:
    name: str
    width: int
    height: int
    data: bytes


@dataclass(frozen=True)
class Rendered:
    variants: tuple[RenderedVariant, ...]
    width: int  # of the largest variant (original aspect when there is one)
    height: int
    source_width: int  # the upload, as displayed (after orientation)
    source_height: int
    phash: int
    blurhash: str
    placeholder: str


def render(
    fp: BinaryIO,
    kind: ImageKind,
    *,
    variants: tuple[Variant, ...],
    filter_id: str,
    max_pixels: int,
    quality: int = JPEG_QUALITY,
) -> Rendered:
    """Decode once and render `variants`; raise `ImageRejected` for an undecodable image."""
    fp.seek(0)
    try:
        image = open_image(fp, kind)
    except Image.DecompressionBombError:
        raise ImageTooLarge(f"The image has more than {max_pixels} pixels.")
    except _NOT_THE_FILE:
        raise
    except Exception as exc:  # codecs report bad data as anything (pillow-heif: RuntimeError)
        _log_undecodable(exc)
        raise InvalidImage("The image is corrupt or truncated.")
    with image:
        raw_w, raw_h = image.size
        if raw_w * raw_h > max_pixels:
            raise ImageTooLarge(f"The image has more than {max_pixels} pixels.")
        try:
            return _render(image, variants=variants, filter_id=filter_id, quality=quality)
        except _NOT_THE_FILE:
            raise
        except Exception as exc:
            # Pillow reports undecodable data as OSError/ValueError (truncated, bad Huffman...),
            # other codecs and metadata parsers as whatever they raise.
            _log_undecodable(exc)
            raise InvalidImage("The image could not be decoded.")


# Raised while decoding, but not by the file: out of memory, the task's time limit.
_NOT_THE_FILE = (MemoryError, SoftTimeLimitExceeded)
_EXPECTED = (UnidentifiedImageError, OSError, ValueError, SyntaxError, struct.error, EOFError)


def _log_undecodable(exc: Exception) -> None:
    """Undecodable uploads are routine; an error of another type is logged with its trace, in
    case it is ours rather than the file's."""
    if not isinstance(exc, _EXPECTED):
        logger.warning("an upload failed to render with %s", type(exc).__name__, exc_info=exc)


def _render(
    image: Image.Image, *, variants: tuple[Variant, ...], filter_id: str, quality: int
) -> Rendered:
    raw_w, raw_h = image.size
    if image.format != "JPEG":
        image.load()  # no DCT scaling outside JPEG: the one decode happens now
    orientation = _orientation(image)
    src_w, src_h = (raw_h, raw_w) if orientation in (5, 6, 7, 8) else (raw_w, raw_h)

    # Plan in the displayed frame: each chain's source box and first (largest) size.
    chains: list[tuple[list[Variant], tuple[int, int], tuple[int, int]]] = []
    originals = [v for v in variants if not v.square]
    squares = [v for v in variants if v.square]
    if originals:
        crop = _aspect_crop(src_w, src_h)
        scale = _base_scale(*crop)
        chains.append((originals, crop, (round(crop[0] * scale), round(crop[1] * scale))))
    if squares:
        side = min(src_w, src_h)
        target = min(MAX_WIDTH, max(MIN_SIDE, side))
        chains.append((squares, (side, side), (target, target)))
    # One intermediate covers every chain's box at the largest scale any chain needs: it is
    # colour-converted and filtered once, and each chain's first variant is cut from it.
    union = (max(box[0] for _, box, _ in chains), max(box[1] for _, box, _ in chains))
    ratio = max(size[0] / box[0] for _, box, size in chains)
    inter_size = (max(1, round(union[0] * ratio)), max(1, round(union[1] * ratio)))

    if image.format == "JPEG" and ratio < 1:
        image.draft("RGB", (math.ceil(raw_w * ratio), math.ceil(raw_h * ratio)))
    image.load()  # the one decode (a no-op if it already happened)
    icc_profile = image.info.get("icc_profile")
    # Turned by the orientation read above, not by `ImageOps.exif_transpose`, which also
    # rewrites the EXIF block and fails on a malformed one; variants carry no EXIF anyway.
    image = _flatten(image.transpose(_TURNS[orientation]) if orientation != 1 else image)

    factor = image.size[0] / src_w  # what the draft kept
    inter = _resize(image, inter_size, _centre_box(src_w, src_h, *union, factor))
    del image  # the decoded frame is no longer needed: free it before the variants
    phash = hashes.perceptual_hash(inter)  # before colour and filter: the content's hash
    inter = _to_srgb(inter, icc_profile)
    lut = lut_for(filter_id)
    if lut is not None:
        inter = inter.filter(lut)

    out: list[RenderedVariant] = []
    for chain_variants, box, size in chains:
        base = _resize(inter, size, _centre_box(*union, *box, inter_size[0] / union[0]))
        out += _chain(base, chain_variants, quality)

    by_name = {variant.name: variant for variant in out}
    ordered = tuple(by_name[v.name] for v in variants)
    largest = ordered[0]
    smallest = min(ordered, key=lambda v: v.width * v.height)
    with Image.open(io.BytesIO(smallest.data)) as preview:
        preview.load()
        blurhash = hashes.blurhash_of(preview)
        placeholder = hashes.placeholder_data_url(preview)
    return Rendered(
        variants=ordered,
        width=largest.width,
        height=largest.height,
        source_width=src_w,
        source_height=src_h,
        phash=phash,
        blurhash=blurhash,
        placeholder=placeholder,
    )


def _resize(
    image: Image.Image, size: tuple[int, int], box: tuple[float, float, float, float]
) -> Image.Image:
    """`box` of `image` at `size`: a plain crop when no scaling is needed."""
    if (round(box[2] - box[0]), round(box[3] - box[1])) == size:
        left, top = round(box[0]), round(box[1])
        if (left, top, *size) == (0, 0, *image.size):
            return image
        return image.crop((left, top, left + size[0], top + size[1]))
    gentle = box[2] - box[0] <= 2 * size[0]
    return image.resize(size, GENTLE_RESAMPLE if gentle else RESAMPLE, box=box, reducing_gap=3.0)


# The turn that shows an image of each EXIF orientation upright.
_TURNS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(0x0112, 1)
    except Exception:  # a malformed EXIF block only loses its orientation
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _aspect_crop(width: int, height: int) -> tuple[int, int]:
    aspect = width / height
    if aspect < MIN_ASPECT:
        return width, max(1, round(width / MIN_ASPECT))
    if aspect > MAX_ASPECT:
        return max(1, round(height * MAX_ASPECT)), height
    return width, height


def _base_scale(width: int, height: int) -> float:
    if min(width, height) < MIN_SIDE:
        return MIN_SIDE / min(width, height)
    if width > MAX_WIDTH:
        return MAX_WIDTH / width
    return 1.0


def _centre_box(
    src_w: int, src_h: int, crop_w: int, crop_h: int, factor: float
) -> tuple[float, float, float, float]:
    left = (src_w - crop_w) / 2
    top = (src_h - crop_h) / 2
    return (left * factor, top * factor, (left + crop_w) * factor, (top + crop_h) * factor)


def _flatten(image: Image.Image) -> Image.Image:
    """Transparency over white, palettes and high bit depths to 8-bit L/RGB/CMYK."""
    if image.mode in ("RGB", "L", "CMYK"):
        return image
    if image.mode == "P" and "transparency" not in image.info:
        return image.convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        return image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    if image.mode == "F":
        return image.convert("L")
    rgba = image.convert("RGBA")
    flat = Image.new("RGB", rgba.size, WHITE)
    flat.paste(rgba, mask=rgba.getchannel("A"))
    return flat


@cache
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _to_srgb(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """Colours converted from the embedded profile (Display P3, Adobe RGB, CMYK...) to sRGB."""
    if icc_profile:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
            converted = ImageCms.profileToProfile(image, source, _srgb(), outputMode="RGB")
            if converted is not None:
                return converted
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # an unusable profile: the pixels are taken as sRGB
    return image if image.mode == "RGB" else image.convert("RGB")


def _chain(base: Image.Image, variants: list[Variant], quality: int) -> list[RenderedVariant]:
    """Largest first, each variant resized from the previous one."""
    out = []
    current = base
    for variant in sorted(variants, key=lambda v: -v.size):
        base_w, base_h = base.size
        if variant.square:
            size = (min(variant.size, base_w),) * 2
        else:
            width = min(variant.size, base_w)
            size = (width, max(1, round(width * base_h / base_w)))
        if current.size == (size[0] * 2, size[1] * 2):
            current = current.reduce(2)  # an exact halving: a 2x2 box is exact and ~10x faster
        elif current.size != size:
            current = current.resize(size, RESAMPLE)
        out.append(RenderedVariant(variant.name, size[0], size[1], encode_jpeg(current, quality)))
    return out


def encode_jpeg(image: Image.Image, quality: int = JPEG_QUALITY) -> bytes:
    """Baseline JPEG with no metadata: not even the info the source image carried."""
    buffer = io.BytesIO()
    image.info.clear()
    image.save(buffer, format="JPEG", quality=quality, optimize=image.width <= 640)
    return buffer.getvalue()
