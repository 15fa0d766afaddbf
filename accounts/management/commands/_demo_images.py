"""Photo-like demo images drawn with Pillow in memory: scenes for posts, initials for avatars.

Scenes are drawn at half size and scaled up (soft edges for free), then get film grain and a
vignette, so the pipeline's filters, placeholders and hashes have something real to work on.
Everything comes from the caller's `random.Random`, so the same seed draws the same pictures.
"""

from __future__ import annotations

import colorsys
import io
import random
from collections.abc import Callable
from functools import cache

from PIL import Image, ImageChops, ImageDraw, ImageFont

Colour = tuple[int, int, int]
SIZES = {"landscape": (800, 600), "square": (800, 800), "portrait": (800, 1000)}
GRAIN_SIZE = 1200
GRAIN_SEED = 35


def _hsv(hue: float, saturation: float, value: float) -> Colour:
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, min(max(saturation, 0.0), 1.0), min(value, 1.0))
    return int(r * 255), int(g * 255), int(b * 255)


def _jitter(rng: random.Random, colour: Colour, amount: int = 18) -> Colour:
    r, g, b = (min(255, max(0, c + rng.randint(-amount, amount))) for c in colour)
    return r, g, b


@cache
def _ramp(width: int, height: int) -> Image.Image:
    """A top-to-bottom 0..255 mask."""
    return Image.linear_gradient("L").resize((width, height))


@cache
def _grain() -> Image.Image:
    """Film grain centred on 128 (sd ~9), drawn once and cropped per picture.

    From a seeded `random.Random` rather than `Image.effect_noise` (C `rand()`, unseeded), so
    the pictures are the same bytes on every run.
    """
    rng = random.Random(GRAIN_SEED)  # noqa: S311  (repeatable demo data, not secrets)
    size, count = (GRAIN_SIZE, GRAIN_SIZE), GRAIN_SIZE * GRAIN_SIZE
    first = Image.frombytes("L", size, rng.randbytes(count))
    second = Image.frombytes("L", size, rng.randbytes(count))
    # The mean of two uniform draws is triangular (sd ~52 around 128), scaled down to ~9.
    mean = ImageChops.add(first, second, scale=2.0)
    return mean.point(lambda v: 128 + (v - 128) * 17 // 100).convert("RGB")


@cache
def _vignette(width: int, height: int) -> Image.Image:
    return Image.radial_gradient("L").resize((width, height)).point(lambda v: max(0, v - 90) * 2)


def _gradient(size: tuple[int, int], top: Colour, bottom: Colour) -> Image.Image:
    return Image.composite(
        Image.new("RGB", size, bottom), Image.new("RGB", size, top), _ramp(*size)
    )


def _ridge(
    rng: random.Random, width: int, base: int, roughness: int, steps: int = 14
) -> list[tuple[int, int]]:
    """A skyline of hills: a random walk along the width."""
    points, y = [], base + rng.randint(-roughness, roughness)
    for i in range(steps + 1):
        y = max(0, y + rng.randint(-roughness, roughness))
        points.append((width * i // steps, y))
    return points


def _sunset(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    w, h = size
    hue = rng.uniform(0.70, 0.95)  # purple to pink at the top, orange near the horizon
    image = _gradient(size, _hsv(hue, 0.7, 0.35), _hsv(rng.uniform(0.02, 0.1), 0.85, 1.0))
    draw = ImageDraw.Draw(image)
    sx, sy, r = rng.randint(w // 5, 4 * w // 5), rng.randint(h // 2, 2 * h // 3), h // 12
    draw.ellipse([sx - r, sy - r, sx + r, sy + r], fill=_hsv(0.12, 0.6, 1.0))
    for layer in range(3):
        base = h * (60 + 10 * layer) // 100
        shade = _hsv(hue, 0.5, 0.28 - 0.08 * layer)
        draw.polygon([*_ridge(rng, w, base, h // 30), (w, h), (0, h)], fill=shade)
    return image


def _mountains(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    w, h = size
    image = _gradient(size, _hsv(0.6, 0.6, rng.uniform(0.6, 0.8)), _hsv(0.55, 0.2, 0.97))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(2, 4)):
        peak_x, peak_y = rng.randint(0, w), rng.randint(h // 6, h // 2)
        spread = rng.randint(w // 4, w // 2)
        foot = 3 * h // 4
        rock = _jitter(rng, (95, 100, 115))
        draw.polygon([(peak_x - spread, foot), (peak_x, peak_y), (peak_x + spread, foot)], rock)
        snow_y, cap = peak_y + (foot - peak_y) // 4, spread // 4
        draw.polygon(
            [(peak_x - cap, snow_y), (peak_x, peak_y), (peak_x + cap, snow_y)], (245, 248, 252)
        )
    meadow = _jitter(rng, (55, 110, 50), 25)
    draw.polygon([*_ridge(rng, w, 7 * h // 10, h // 40), (w, h), (0, h)], fill=meadow)
    return image


def _beach(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    w, h = size
    horizon = rng.randint(2 * h // 5, h // 2)
    image = _gradient(size, _hsv(0.58, 0.55, 0.9), _hsv(0.55, 0.15, 1.0))
    sea = _gradient((w, h - horizon), _hsv(0.52, 0.8, 0.75), _hsv(0.48, 0.5, 0.9))
    image.paste(sea, (0, horizon))
    draw = ImageDraw.Draw(image)
    shore = [*_ridge(rng, w, 3 * h // 4, h // 60, steps=8), (w, h), (0, h)]
    draw.polygon(shore, fill=_jitter(rng, (235, 215, 170), 10))
    for _ in range(rng.randint(3, 6)):
        y = rng.randint(horizon + 10, 3 * h // 4)
        x = rng.randint(0, w)
        draw.line([(x, y), (x + rng.randint(40, 160), y)], fill=(240, 250, 255), width=2)
    if rng.random() < 0.6:
        x, y = rng.randint(w // 6, 5 * w // 6), rng.randint(3 * h // 4 + 20, h - 20)
        colour = _hsv(rng.random(), 0.8, 0.95)
        draw.pieslice([x - 60, y - 70, x + 60, y - 10], 180, 360, fill=colour)
        draw.line([(x, y - 40), (x, y + 10)], fill=(90, 70, 50), width=3)
    return image


def _food(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    w, h = size
    wood = _jitter(rng, (150, 105, 70), 25)
    image = Image.new("RGB", size, wood)
    draw = ImageDraw.Draw(image)
    for y in range(0, h, rng.randint(6, 12)):  # the grain of a wooden table
        draw.line([(0, y), (w, y + rng.randint(-4, 4))], fill=_jitter(rng, wood, 14), width=2)
    cx, cy, r = w // 2 + rng.randint(-w // 10, w // 10), h // 2, min(w, h) * 2 // 5
    shadow = tuple(c * 7 // 10 for c in wood)
    draw.ellipse([cx - r + 8, cy - r + 10, cx + r + 8, cy + r + 10], fill=shadow)
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(246, 244, 238))
    draw.ellipse(
        [cx - r * 3 // 4, cy - r * 3 // 4, cx + r * 3 // 4, cy + r * 3 // 4], (236, 233, 225)
    )
    palette = [(200, 60, 40), (240, 180, 50), (80, 150, 60), (120, 70, 40), (250, 230, 200)]
    for _ in range(rng.randint(6, 14)):
        x, y = cx + rng.randint(-r // 2, r // 2), cy + rng.randint(-r // 2, r // 2)
        a, b = rng.randint(r // 10, r // 4), rng.randint(r // 10, r // 4)
        draw.ellipse([x - a, y - b, x + a, y + b], fill=_jitter(rng, rng.choice(palette), 25))
    if rng.random() < 0.5:  # a cup at the edge of the frame
        x, y, c = rng.choice([w // 8, 7 * w // 8]), rng.randint(h // 6, h // 3), r // 3
        draw.ellipse([x - c, y - c, x + c, y + c], fill=(250, 250, 250))
        draw.ellipse([x - c + 8, y - c + 8, x + c - 8, y + c - 8], fill=(95, 60, 35))
    return image


def _city(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    w, h = size
    image = _gradient(size, _hsv(0.66, 0.8, 0.18), _hsv(rng.uniform(0.75, 0.95), 0.6, 0.55))
    draw = ImageDraw.Draw(image)
    mx, my, mr = rng.randint(w // 8, 7 * w // 8), rng.randint(h // 10, h // 4), h // 22
    draw.ellipse([mx - mr, my - mr, mx + mr, my + mr], fill=(240, 238, 220))
    x = -rng.randint(0, 20)
    while x < w:
        bw, top = rng.randint(w // 14, w // 6), rng.randint(h // 4, 2 * h // 3)
        draw.rectangle([x, top, x + bw, h], fill=_jitter(rng, (30, 32, 45), 12))
        for wy in range(top + 8, h - 6, 14):
            for wx in range(x + 6, x + bw - 8, 12):
                if rng.random() < 0.35:
                    draw.rectangle([wx, wy, wx + 5, wy + 7], fill=_jitter(rng, (250, 210, 120)))
        x += bw + rng.randint(2, 10)
    return image


SCENES: dict[str, Callable[[random.Random, tuple[int, int]], Image.Image]] = {
    "sunset": _sunset,
    "mountains": _mountains,
    "beach": _beach,
    "food": _food,
    "city": _city,
}


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def photo_jpeg(rng: random.Random, scene: str, shape: str = "landscape") -> bytes:
    """A JPEG of `scene` ('sunset', 'mountains', 'beach', 'food', 'city') in `shape`."""
    width, height = SIZES[shape]
    image = SCENES[scene](rng, (width // 2, height // 2)).resize((width, height), Image.BICUBIC)
    darker = image.point(lambda v: v * 55 // 100)
    image = Image.composite(darker, image, _vignette(width, height))
    x, y = rng.randint(0, GRAIN_SIZE - width), rng.randint(0, GRAIN_SIZE - height)
    grain = _grain().crop((x, y, x + width, y + height))
    image = ImageChops.add(image, grain, scale=1.0, offset=-128)
    return _encode(image, "JPEG", quality=88)


@cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def avatar_png(rng: random.Random, initials: str, size: int = 400) -> bytes:
    """A PNG: a two-tone diagonal gradient with the initials in the middle."""
    hue = rng.random()
    first, second = _hsv(hue, 0.65, 0.9), _hsv(hue + rng.uniform(0.08, 0.2), 0.75, 0.6)
    image = _gradient((size, size), first, second).rotate(rng.choice([0, 90, 180, 270]))
    draw = ImageDraw.Draw(image)
    font = _font(size * 2 // 5)
    centre = (size // 2, size // 2)
    shadow = _hsv(hue, 0.8, 0.3)
    draw.text((centre[0] + 4, centre[1] + 5), initials, font=font, fill=shadow, anchor="mm")
    draw.text(centre, initials, font=font, fill=(255, 255, 255), anchor="mm")
    return _encode(image, "PNG", optimize=False)
