"""Perceptual hash (64-bit DCT pHash), blurhash and the tiny data-URL placeholder. Pure code."""

from __future__ import annotations

import base64
import io
import math
from functools import cache

from PIL import Image

PHASH_SIDE = 32
PHASH_BITS = 8  # an 8x8 block of the lowest frequencies: 64 bits
BLURHASH_MAX_SIDE = 32
BLURHASH_COMPONENTS = (4, 3)
PLACEHOLDER_MAX_SIDE = 16


@cache
def _cosines(n: int, k: int) -> tuple[tuple[float, ...], ...]:
    """cos(pi * u * (2x + 1) / 2n) for u < k, x < n: the DCT-II basis."""
    return tuple(
        tuple(math.cos(math.pi * u * (2 * x + 1) / (2 * n)) for x in range(n)) for u in range(k)
    )


def perceptual_hash(image: Image.Image) -> int:
    """pHash: the 8x8 lowest DCT frequencies of a 32x32 grey image, each bit above the median.

    Returned as a signed 64-bit integer (PostgreSQL bigint); compare with `hamming_distance`.
    """
    grey = image.convert("L").resize(
        (PHASH_SIDE, PHASH_SIDE), Image.Resampling.LANCZOS, reducing_gap=2.0
    )
    pixels = list(grey.getdata())
    basis = _cosines(PHASH_SIDE, PHASH_BITS)
    # Separable 2D DCT, only the 8x8 low-frequency corner is computed.
    rows = [
        [
            sum(
                c * p
                for c, p in zip(cos_u, pixels[y * PHASH_SIDE : (y + 1) * PHASH_SIDE], strict=True)
            )
            for cos_u in basis
        ]
        for y in range(PHASH_SIDE)
    ]
    coefficients = [
        sum(cos_v[y] * rows[y][u] for y in range(PHASH_SIDE))
        for cos_v in basis
        for u in range(PHASH_BITS)
    ]
    median = sorted(coefficients)[len(coefficients) // 2 - 1 : len(coefficients) // 2 + 1]
    threshold = (median[0] + median[1]) / 2
    value = 0
    for coefficient in coefficients:
        value = (value << 1) | (coefficient > threshold)
    return to_signed64(value)


def to_signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def hamming_distance(a: int, b: int) -> int:
    return ((a ^ b) & ((1 << 64) - 1)).bit_count()


def _fit(image: Image.Image, max_side: int) -> Image.Image:
    small = image.copy()
    small.thumbnail((max_side, max_side), Image.Resampling.BOX)
    return small


_BASE83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"
_SRGB_TO_LINEAR = tuple(
    v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4
    for v in (i / 255 for i in range(256))
)


def _base83(value: int, length: int) -> str:
    return "".join(_BASE83[(value // 83 ** (length - 1 - i)) % 83] for i in range(length))


def _linear_to_srgb(value: float) -> int:
    v = max(0.0, min(1.0, value))
    srgb = v * 12.92 if v <= 0.0031308 else 1.055 * v ** (1 / 2.4) - 0.055
    return int(srgb * 255 + 0.5)


def _sign_pow(value: float, exponent: float) -> float:
    return math.copysign(abs(value) ** exponent, value)


def blurhash_of(image: Image.Image) -> str:
    """Blurhash (https://blurha.sh, 4x3 components) of a copy no larger than 32 px.

    The reference algorithm, computed separably (rows, then columns) so it costs ~1 ms.
    """
    small = _fit(image, BLURHASH_MAX_SIDE).convert("RGB")
    width, height = small.size
    cx, cy = BLURHASH_COMPONENTS
    raw = small.tobytes()
    lin = [tuple(_SRGB_TO_LINEAR[c] for c in raw[i : i + 3]) for i in range(0, len(raw), 3)]
    cos_x = [[math.cos(math.pi * i * x / width) for x in range(width)] for i in range(cx)]
    cos_y = [[math.cos(math.pi * j * y / height) for y in range(height)] for j in range(cy)]
    # rows[y][i] = sum over x of cos_x[i][x] * pixel(x, y), per channel
    rows = []
    for y in range(height):
        line = lin[y * width : (y + 1) * width]
        rows.append(
            [
                tuple(
                    sum(c * p[ch] for c, p in zip(cos_x[i], line, strict=True)) for ch in range(3)
                )
                for i in range(cx)
            ]
        )
    factors = []
    for j in range(cy):
        for i in range(cx):
            norm = (1.0 if i == 0 and j == 0 else 2.0) / (width * height)
            factors.append(
                tuple(
                    norm * sum(cos_y[j][y] * rows[y][i][ch] for y in range(height))
                    for ch in range(3)
                )
            )
    dc, ac = factors[0], factors[1:]
    max_ac = max((abs(v) for f in ac for v in f), default=0.0)
    quant_max = int(max(0, min(82, math.floor(max_ac * 166 - 0.5))))
    ac_scale = (quant_max + 1) / 166
    out = _base83((cx - 1) + (cy - 1) * 9, 1) + _base83(quant_max, 1)
    out += _base83(
        (_linear_to_srgb(dc[0]) << 16) + (_linear_to_srgb(dc[1]) << 8) + _linear_to_srgb(dc[2]), 4
    )
    for factor in ac:
        q = [
            int(max(0, min(18, math.floor(_sign_pow(v / ac_scale, 0.5) * 9 + 9.5)))) for v in factor
        ]
        out += _base83(q[0] * 361 + q[1] * 19 + q[2], 2)
    return out


def placeholder_data_url(image: Image.Image) -> str:
    """A <= 16 px JPEG as a data URL: shown blurred by the client until the variant loads."""
    small = _fit(image, PLACEHOLDER_MAX_SIDE).convert("RGB")
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=60)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
