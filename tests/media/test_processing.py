"""Real images through upload and processing: sizes, orientation, metadata, filters, hashes."""

import base64
import datetime as dt
import hashlib
import io

import blurhash
import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.utils import timezone

from media import processing
from media.filters import FILTERS, apply_color
from media.models import Media, MediaStatus
from media.processing import POST_VARIANTS, render
from media.services import media_process
from media.validation import JPEG
from tests.media import images
from tests.media.conftest import jpeg_segments, open_image, stored_files, upload

ALL = "__all__"
VARIANT_FILES = [
    "1080.jpg",
    "1080_square.jpg",
    "150.jpg",
    "150_square.jpg",
    "320.jpg",
    "320_square.jpg",
    "640.jpg",
    "640_square.jpg",
    "metadata.json",
]


def _process(authed, data, *, shard_commits, **fields):
    with shard_commits() as callbacks:
        response = upload(authed, data, **fields)
    assert response.status_code == 200, response.content
    assert len(callbacks) == 1  # the worker is only asked after commit
    media_id = int(response.json()["media_id"])
    media_process(media_id=media_id)
    return response.json(), Media.objects.using(_alias(media_id)).get(id=media_id)


def _alias(media_id):
    from instagram.sharding import alias_for_id

    return alias_for_id(media_id)


def _variant(root, media, name) -> bytes:
    return (root / media.storage_prefix / f"{name}.jpg").read_bytes()


def _sizes(root, media) -> dict[str, tuple[int, int]]:
    return {v.name: open_image(_variant(root, media, v.name)).size for v in POST_VARIANTS}


@pytest.mark.django_db(databases=ALL)
def test_upload_answers_the_contract_object_and_stores_only_the_private_original(
    authed, user, media_root, shard_commits
):
    before = timezone.now()
    with shard_commits() as callbacks:
        response = upload(authed, images.small_jpeg(), filter_id="juno")

    body = response.json()
    media = Media.objects.using(_alias(int(body["media_id"]))).get()
    prefix = f"{user.id}/{media.id}"
    assert response.status_code == 200
    assert len(callbacks) == 1
    assert body["media_id"] == str(media.id)
    assert body["status"] == "processing"
    assert body["urls"] == {
        size: f"/media/{prefix}/{size}.jpg" for size in ("1080", "640", "320", "150")
    }
    assert body["square_urls"]["1080"] == f"/media/{prefix}/1080_square.jpg"
    assert body["blur_placeholder"] is None
    assert body["filter_id"] == "juno"
    expires = dt.datetime.fromisoformat(body["expires_at"])
    assert before + dt.timedelta(hours=24) <= expires <= timezone.now() + dt.timedelta(hours=24)
    assert (media.uploader_id, media.status, media.source_format) == (user.id, "processing", "jpeg")
    assert media.sha256 == hashlib.sha256(images.small_jpeg()).hexdigest()
    assert stored_files(media_root) == [f"{prefix}/original.jpg"]


@pytest.mark.django_db(databases=ALL)
def test_orientation_is_applied_and_no_output_carries_exif_gps_xmp_comment_or_icc(
    authed, media_root, shard_commits
):
    body, media = _process(
        authed,
        images.jpeg_rotated_with_gps(),
        shard_commits=shard_commits,
    )

    assert media.status == MediaStatus.READY
    assert (media.source_width, media.source_height) == (1000, 1200)
    assert (media.width, media.height) == (1000, 1200)
    for variant in POST_VARIANTS:
        data = _variant(media_root, media, variant.name)
        image = open_image(data)
        # Only JFIF (APP0), tables, frame and scan: no APP1 (EXIF/XMP), APP2 (ICC) or COM.
        assert set(jpeg_segments(data)) <= {0xE0, 0xDB, 0xC0, 0xC4, 0xDA}, variant.name
        assert b"SecretCam" not in data and b"secret-camera" not in data
        assert not image.getexif()
        assert "icc_profile" not in image.info and "comment" not in image.info
        width, height = image.size
        top, bottom = (
            image.getpixel((width // 2, height // 8)),
            image.getpixel((width // 2, height * 7 // 8)),
        )
        assert top[0] > 180 and top[2] < 80, (variant.name, top)  # red on top: rotated
        assert bottom[2] > 180 and bottom[0] < 80, (variant.name, bottom)
    metadata = (media_root / media.storage_prefix / "metadata.json").read_bytes()
    assert b"SecretCam" not in metadata and b"GPS" not in metadata
    assert body["status"] == "processing"


@pytest.mark.django_db(databases=ALL)
def test_png_alpha_is_flattened_on_white(authed, media_root, shard_commits):
    _, media = _process(
        authed,
        images.png_with_alpha(),
        name="a.png",
        shard_commits=shard_commits,
    )

    image = open_image(_variant(media_root, media, "1080"))
    assert media.source_format == "png"
    assert image.size == (500, 400)
    assert image.mode == "RGB"
    assert all(
        abs(a - b) <= 3 for a, b in zip(image.getpixel((60, 200)), images.WHITE, strict=True)
    )
    assert all(
        abs(a - b) <= 6 for a, b in zip(image.getpixel((440, 200)), images.GREEN, strict=True)
    )


@pytest.mark.django_db(databases=ALL)
@pytest.mark.parametrize(
    ("make", "fmt", "source", "sizes"),
    [
        (
            images.webp,
            "webp",
            (800, 600),
            {"1080": (800, 600), "640": (640, 480), "320": (320, 240), "150": (150, 112),
             "1080_square": (600, 600), "640_square": (600, 600), "320_square": (320, 320),
             "150_square": (150, 150)},
        ),
        (
            images.heic,
            "heic",
            (640, 480),
            {"1080": (640, 480), "640": (640, 480), "320": (320, 240), "150": (150, 112),
             "1080_square": (480, 480), "640_square": (480, 480), "320_square": (320, 320),
             "150_square": (150, 150)},
        ),
        (
            # Short side under 320: upscaled until it is 320.
            images.small_jpeg,
            "jpeg",
            (320, 200),
            {"1080": (512, 320), "640": (512, 320), "320": (320, 200), "150": (150, 94),
             "1080_square": (320, 320), "640_square": (320, 320), "320_square": (320, 320),
             "150_square": (150, 150)},
        ),
    ],
)  # fmt: skip
def test_each_accepted_format_renders_every_variant(
    authed, media_root, shard_commits, make, fmt, source, sizes
):
    _, media = _process(authed, make(), shard_commits=shard_commits)

    assert media.status == MediaStatus.READY
    assert media.source_format == fmt
    assert (media.source_width, media.source_height) == source
    assert _sizes(media_root, media) == sizes
    assert media.variants == {name: list(size) for name, size in sizes.items()}
    assert sorted(p.name for p in (media_root / media.storage_prefix).iterdir()) == sorted(
        [*VARIANT_FILES, f"original.{ {'jpeg': 'jpg'}.get(fmt, fmt) }"]
    )
    left = open_image(_variant(media_root, media, "320")).getpixel((40, 100))
    assert left[0] > 180 and left[2] < 80  # colours survive every decoder


@pytest.mark.django_db(databases=ALL)
def test_a_12_megapixel_photo_is_downscaled_to_1080_wide(
    authed, media_root, photo_12mp, shard_commits
):
    _, media = _process(authed, photo_12mp, shard_commits=shard_commits)

    assert (media.source_width, media.source_height) == (4000, 3000)
    assert _sizes(media_root, media) == {
        "1080": (1080, 810), "640": (640, 480), "320": (320, 240), "150": (150, 112),
        "1080_square": (1080, 1080), "640_square": (640, 640), "320_square": (320, 320),
        "150_square": (150, 150),
    }  # fmt: skip
    assert (media.width, media.height) == (1080, 810)


@pytest.mark.django_db(databases=ALL)
def test_aspect_ratio_is_clamped_between_4_5_and_1_91(authed, media_root, shard_commits):
    _, tall = _process(
        authed,
        images.flat((90, 90, 90), size=(600, 1200)),
        shard_commits=shard_commits,
    )
    _, wide = _process(
        authed,
        images.flat((91, 90, 90), size=(3000, 500)),
        shard_commits=shard_commits,
    )

    assert (tall.width, tall.height) == (600, 750)
    assert (wide.width, wide.height) == (955, 500)
    assert wide.variants["1080_square"] == [500, 500]


def test_filters_change_pixels_exactly_as_their_tables_say():
    source = (180, 120, 60)
    data = images.flat(source, size=(64, 64))
    seen = {}

    for filter_id in FILTERS:
        rendered = render(
            io.BytesIO(data), _png(), variants=POST_VARIANTS, filter_id=filter_id, max_pixels=10**6
        )
        pixel = open_image(rendered.variants[2].data).getpixel((100, 100))
        expected = apply_color(filter_id, source)
        assert all(abs(a - b) <= 4 for a, b in zip(pixel, expected, strict=True)), (
            filter_id,
            pixel,
            expected,
        )
        seen[filter_id] = pixel

    assert max(abs(a - b) for a, b in zip(seen["normal"], source, strict=True)) <= 2
    for filter_id, pixel in seen.items():
        if filter_id != "normal":
            assert max(abs(a - b) for a, b in zip(pixel, source, strict=True)) >= 10, filter_id
    assert max(seen["moon"]) - min(seen["moon"]) <= 2  # monochrome
    assert len(set(seen.values())) == len(FILTERS)


def _png():
    from media.validation import PNG

    return PNG


def test_placeholders_decode_to_the_image_colours():
    data = images.encode(images.halves((800, 600)), "JPEG", quality=95)

    rendered = render(
        io.BytesIO(data), JPEG, variants=POST_VARIANTS, filter_id="normal", max_pixels=10**6
    )

    header, encoded = rendered.placeholder.split(",", 1)
    preview = open_image(base64.b64decode(encoded))
    assert header == "data:image/jpeg;base64"
    assert max(preview.size) <= 16
    assert preview.getpixel((1, preview.height // 2))[0] > 150
    assert preview.getpixel((preview.width - 2, preview.height // 2))[2] > 150
    decoded = blurhash.decode(rendered.blurhash, 32, 24)  # the reference decoder
    assert len(rendered.blurhash) == 28  # 4x3 components
    assert decoded[12][2][0] > decoded[12][2][2]  # red on the left
    assert decoded[12][29][2] > decoded[12][29][0]  # blue on the right


def test_perceptual_hash_is_stable_under_recompression_and_differs_between_images():
    from media.hashes import hamming_distance

    def phash(image, quality):
        data = images.encode(image, "JPEG", quality=quality)
        return render(
            io.BytesIO(data), JPEG, variants=POST_VARIANTS, filter_id="normal", max_pixels=10**6
        ).phash

    a, b = images.textured(1), images.textured(2)

    assert hamming_distance(phash(a, 95), phash(a, 60)) <= 4
    assert hamming_distance(phash(a, 95), phash(a.resize((320, 240)), 90)) <= 4
    assert hamming_distance(phash(a, 95), phash(b, 95)) > 12


def test_the_fast_path_decodes_a_12mp_jpeg_at_reduced_scale(photo_12mp, monkeypatch):
    from PIL.JpegImagePlugin import JpegImageFile

    drafts = []
    original = JpegImageFile.draft

    def spy(self, mode, size):
        result = original(self, mode, size)
        drafts.append((size, self.size))
        return result

    monkeypatch.setattr(JpegImageFile, "draft", spy)
    rendered = render(
        io.BytesIO(photo_12mp),
        JPEG,
        variants=POST_VARIANTS,
        filter_id="clarendon",
        max_pixels=50_000_000,
    )

    assert drafts == [((1440, 1080), (2000, 1500))]
    assert (rendered.width, rendered.height) == (1080, 810)


def test_heic_orientation_is_applied_once():
    from PIL import Image

    from media.validation import HEIC

    exif = Image.Exif()
    exif[0x0112] = 6
    data = images.encode(images.halves((600, 500)), "HEIF", quality=95, exif=exif.tobytes())

    rendered = render(
        io.BytesIO(data), HEIC, variants=POST_VARIANTS, filter_id="normal", max_pixels=10**6
    )

    image = open_image(rendered.variants[0].data)
    assert image.size == (500, 600)
    assert image.getpixel((250, 20))[0] > 180  # red on top: rotated exactly once
    assert image.getpixel((250, 580))[2] > 180


@pytest.mark.parametrize("stop", [MemoryError, SoftTimeLimitExceeded])
def test_running_out_of_memory_or_time_is_not_taken_for_a_bad_file(monkeypatch, stop):
    def interrupted(*args, **kwargs):
        raise stop()

    monkeypatch.setattr(processing, "_render", interrupted)
    with pytest.raises(stop):
        render(
            io.BytesIO(images.small_jpeg()),
            JPEG,
            variants=POST_VARIANTS,
            filter_id="normal",
            max_pixels=50_000_000,
        )


def test_a_render_stuck_where_its_soft_limit_cannot_reach_is_ended_by_a_hard_one():
    from media.tasks import media_process_task

    # The hard limit replaces the worker process; the redelivered task counts an attempt.
    assert (media_process_task.soft_time_limit, media_process_task.time_limit) == (120, 180)
