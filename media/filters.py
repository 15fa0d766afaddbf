"""Photo filters as 3D colour look-up tables (Pillow's `Color3DLUT`, applied in C).

Each filter is defined by a pure colour function on sRGB values in 0..1; its table samples that
function on a 17^3 grid once per process and Pillow interpolates between samples. The function
is the specification: tests compare a rendered pixel with `apply_color(filter_id, rgb)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from PIL import ImageFilter

LUT_SIZE = 17

Color = tuple[float, float, float]


def _clamp(value: float) -> float:
    return 0.0 if value < 0.0 else 1.0 if value > 1.0 else value


def _luma(r: float, g: float, b: float) -> float:
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(value: float, amount: float) -> float:
    return (value - 0.5) * amount + 0.5


def _saturate(r: float, g: float, b: float, amount: float) -> Color:
    y = _luma(r, g, b)
    return (y + (r - y) * amount, y + (g - y) * amount, y + (b - y) * amount)


def _fade(value: float, floor: float, ceiling: float = 1.0) -> float:
    """Lift the blacks to `floor` and cap the whites at `ceiling` (a matte look)."""
    return floor + value * (ceiling - floor)


def clarendon(r: float, g: float, b: float) -> Color:
    # More contrast and saturation; cool shadows, warm highlights.
    r, g, b = (_contrast(c, 1.2) for c in (r, g, b))
    r, g, b = _saturate(r, g, b, 1.35)
    y = _luma(r, g, b)
    return (r + 0.04 * (y - 0.5), g, b + 0.06 * (0.5 - y))


def gingham(r: float, g: float, b: float) -> Color:
    # Faded and slightly warm, lower contrast, a little desaturated.
    r, g, b = _saturate(r, g, b, 0.85)
    r, g, b = (_contrast(c, 0.85) for c in (r, g, b))
    return (_fade(r, 0.08) + 0.02, _fade(g, 0.07), _fade(b, 0.06, 0.95))


def juno(r: float, g: float, b: float) -> Color:
    # Warm and vivid: reds and yellows pushed, blues held back.
    r, g, b = _saturate(r, g, b, 1.3)
    r, g, b = (_contrast(c, 1.1) for c in (r, g, b))
    return (r * 1.08 + 0.02, g * 1.03 + 0.01, b * 0.92)


def lark(r: float, g: float, b: float) -> Color:
    # Bright and cool: reds desaturated, greens and blues lifted.
    y = _luma(r, g, b)
    r = y + (r - y) * 0.8
    return (r * 1.04 + 0.04, g * 1.08 + 0.04, b * 1.1 + 0.05)


def moon(r: float, g: float, b: float) -> Color:
    # Monochrome with strong contrast and lifted blacks.
    y = _fade(_contrast(_luma(r, g, b), 1.3), 0.06)
    return (y, y, y)


def reyes(r: float, g: float, b: float) -> Color:
    # Vintage: bright, washed out, warm, low saturation.
    r, g, b = _saturate(r, g, b, 0.75)
    r, g, b = (_contrast(c, 0.8) for c in (r, g, b))
    return (_fade(r, 0.12) + 0.05, _fade(g, 0.1) + 0.03, _fade(b, 0.08))


@dataclass(frozen=True)
class PhotoFilter:
    filter_id: str
    name: str
    function: Callable[[float, float, float], Color] | None


FILTERS: dict[str, PhotoFilter] = {
    f.filter_id: f
    for f in (
        PhotoFilter("normal", "Normal", None),
        PhotoFilter("clarendon", "Clarendon", clarendon),
        PhotoFilter("gingham", "Gingham", gingham),
        PhotoFilter("juno", "Juno", juno),
        PhotoFilter("lark", "Lark", lark),
        PhotoFilter("moon", "Moon", moon),
        PhotoFilter("reyes", "Reyes", reyes),
    )
}
DEFAULT_FILTER = "normal"


def apply_color(filter_id: str, rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """What the filter's table maps one 8-bit colour to (the definition, not the table)."""
    function = FILTERS[filter_id].function
    if function is None:
        return rgb
    out = function(*(c / 255 for c in rgb))
    return tuple(round(_clamp(c) * 255) for c in out)  # type: ignore[return-value]


@cache
def lut_for(filter_id: str) -> ImageFilter.Color3DLUT | None:
    """The filter's table, built once per process; None for the identity."""
    function = FILTERS[filter_id].function
    if function is None:
        return None

    def sample(r: float, g: float, b: float) -> Color:
        out = function(r, g, b)
        return (_clamp(out[0]), _clamp(out[1]), _clamp(out[2]))

    return ImageFilter.Color3DLUT.generate(LUT_SIZE, sample)
