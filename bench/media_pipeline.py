"""Media pipeline speed and memory on a 12 MP JPEG: ours against a naive Pillow baseline.

    python bench/media_pipeline.py

Both produce the same work product from the same generated 4000x3000 photo: 8 JPEG variants
(1080/640/320/150, original aspect and square) with the Clarendon colour table applied, a
perceptual hash and a blurhash. The baseline decodes at full size and resizes every variant
from the full image; ours decodes with JPEG DCT scaling, filters once, and resizes in a chain.
Each side runs in a fresh subprocess with Django set up (as in a worker), so its peak RSS is
its own; the figure printed is the median time per image over several runs.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_RATIO = 4.0
TARGET_RSS_MB = 150
RUNS = {"ours": 18, "baseline": 6}
FILTER = "clarendon"


def naive(data: bytes) -> list[bytes]:
    """What a first version would do: full decode, every variant from the full-size image."""
    from PIL import Image, ImageOps

    from media import hashes
    from media.filters import lut_for

    lut = lut_for(FILTER)
    image = Image.open(io.BytesIO(data))
    image.load()
    image = ImageOps.exif_transpose(image)
    width, height = image.size
    side = min(width, height)
    square_box = (
        (width - side) // 2,
        (height - side) // 2,
        (width + side) // 2,
        (height + side) // 2,
    )
    out = []
    for size in (1080, 640, 320, 150):
        scaled = min(size, width)
        variant = image.resize((scaled, round(scaled * height / width))).filter(lut)
        out.append(_jpeg(variant))
        out.append(_jpeg(image.resize((size, size), box=square_box).filter(lut)))
    hashes.perceptual_hash(image)
    hashes.blurhash_of(Image.open(io.BytesIO(out[-2])))
    return out


def _jpeg(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=82)
    return buffer.getvalue()


def ours(data: bytes) -> list[bytes]:
    from media.processing import POST_VARIANTS, render
    from media.validation import JPEG

    rendered = render(
        io.BytesIO(data), JPEG, variants=POST_VARIANTS, filter_id=FILTER, max_pixels=50_000_000
    )
    return [variant.data for variant in rendered.variants]


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "instagram.settings")
    os.environ.setdefault("DEBUG", "1")
    import django

    django.setup()


def measure_memory(side: str, path: str) -> None:
    """Child process: set Django up like a worker, render the image once, report peak RSS."""
    _setup_django()
    data = Path(path).read_bytes()
    outputs = (ours if side == "ours" else naive)(data)
    print(json.dumps({"peak_rss_mb": _peak_rss_kb() / 1024, "variants": len(outputs)}))


def measure_time(path: str) -> None:
    """Child process: time both sides on the same image, interleaved, so that a machine
    slowing down or speeding up during the run (a shared VM) affects both alike."""
    _setup_django()
    data = Path(path).read_bytes()
    ours(data), naive(data)  # warm-up: imports, colour table
    timings: dict[str, list[float]] = {"ours": [], "baseline": []}
    for _ in range(RUNS["baseline"]):
        for side, pipeline in (("ours", ours), ("baseline", naive)):
            repeats = RUNS[side] // RUNS["baseline"]
            for _ in range(repeats):
                started = time.perf_counter()
                pipeline(data)
                timings[side].append((time.perf_counter() - started) * 1000)
    print(json.dumps({side: statistics.median(values) for side, values in timings.items()}))


def _peak_rss_kb() -> int:
    """This process's own high-water mark (VmHWM). ru_maxrss is a fallback only: Linux
    carries it over from the parent across fork and exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--memory", choices=["ours", "baseline"])
    parser.add_argument("--time", action="store_true")
    parser.add_argument("--input")
    parser.add_argument("--make")
    args = parser.parse_args()
    if args.memory:
        measure_memory(args.memory, args.input)
        return
    if args.time:
        measure_time(args.input)
        return
    if args.make:
        from tests.media.images import photo

        Path(args.make).write_bytes(photo(4000, 3000))
        return

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "photo-12mp.jpg"
        # Made in a child too: this process stays small, so nothing inflates the measurements.
        subprocess.run([sys.executable, __file__, "--make", str(path)], check=True, cwd=ROOT)

        def child(*flags: str) -> dict:
            completed = subprocess.run(
                [sys.executable, __file__, *flags, "--input", str(path)],
                check=True, capture_output=True, text=True, cwd=ROOT,
            )  # fmt: skip
            return json.loads(completed.stdout.strip().splitlines()[-1])

        timing = child("--time")
        memory = {side: child("--memory", side) for side in ("baseline", "ours")}
        size_mb = path.stat().st_size / 1e6

    base = {"ms": timing["baseline"], **memory["baseline"]}
    mine = {"ms": timing["ours"], **memory["ours"]}
    ratio = base["ms"] / mine["ms"]
    print(f"Media pipeline on a generated 4000x3000 JPEG ({size_mb:.1f} MB), filter {FILTER},")
    print("8 variants + pHash + blurhash. Time: median of interleaved runs in one process;")
    print("peak RSS: each side alone in a fresh process with Django set up, as in a worker")
    print(f"{'':<10}{'ms/image':>10}{'peak RSS MB':>14}{'runs':>6}")
    print(f"{'baseline':<10}{base['ms']:>10.1f}{base['peak_rss_mb']:>14.1f}{RUNS['baseline']:>6}")
    print(f"{'ours':<10}{mine['ms']:>10.1f}{mine['peak_rss_mb']:>14.1f}{RUNS['ours']:>6}")
    print(f"speed-up: {ratio:.2f}x (target >= {TARGET_RATIO:.0f}x)")
    print(f"ours peak RSS: {mine['peak_rss_mb']:.1f} MB (target <= {TARGET_RSS_MB} MB)")
    ok = ratio >= TARGET_RATIO and mine["peak_rss_mb"] <= TARGET_RSS_MB
    print("targets met" if ok else "TARGETS MISSED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
