"""HEIC support through pillow-heif, registered once with its extras (thumbnails, depth) off."""

from __future__ import annotations

from functools import cache


@cache
def register_heif() -> None:
    import pillow_heif

    pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)
