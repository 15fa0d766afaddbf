import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import User

ALL = "__all__"
pytestmark = pytest.mark.django_db(databases=ALL)


def test_profile_by_username_any_case_and_by_id(make_user, client_for):
    ann = make_user("ann", full_name="Ann A", bio="hello")

    by_name = client_for(None).get("/api/v1/users/ANN")
    by_id = client_for(None).get(f"/api/v1/users/{ann.id}")

    assert by_name.status_code == by_id.status_code == 200
    assert (
        by_name.json()
        == by_id.json()
        == {
            "user_id": str(ann.id),
            "username": "ann",
            "full_name": "Ann A",
            "bio": "hello",
            "profile_pic_url": None,
            "is_private": False,
            "is_verified": False,
            "follower_count": 0,
            "following_count": 0,
            "post_count": 0,
            "followed_by_viewer": False,
            "follow_requested_by_viewer": False,
            "is_blocked_by_viewer": False,
        }
    )


@pytest.mark.parametrize("handle", ["nobody", "123456789", "x" * 40, "9" * 25])
def test_unknown_profile_is_a_404(make_user, client_for, handle):
    response = client_for(None).get(f"/api/v1/users/{handle}")

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "User not found."}}


def test_deactivated_user_is_a_404(make_user, client_for):
    ann = make_user("ann")
    User.objects.filter(pk=ann.pk).update(is_active=False)

    assert client_for(None).get("/api/v1/users/ann").status_code == 404


def test_patch_me_updates_the_editable_fields(make_user, client_for):
    ann = make_user("ann")

    response = client_for(ann).patch(
        "/api/v1/accounts/me",
        {"full_name": "Ann B", "bio": "b" * 150, "is_private": True, "is_verified": True},
        format="json",
    )

    ann.refresh_from_db()
    assert response.status_code == 200
    assert response.json()["bio"] == "b" * 150
    assert (ann.full_name, ann.is_private, ann.is_verified) == ("Ann B", True, False)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"bio": "b" * 151}, "bio: Ensure this field has no more than 150 characters."),
        ({"bio": "nul\x00byte"}, "bio: Null characters are not allowed."),
        ({"email": "not-an-email"}, "email: Enter a valid email address."),
        ({"is_private": "maybe"}, "is_private: Must be a valid boolean."),
        ({"full_name": "Ann\u202eB"}, "full_name: Cannot hold control or reordering marks."),
        ({"full_name": "Ann\nB"}, "full_name: Cannot hold control or reordering marks."),
        ({"bio": "x\u2066y\u2069"}, "bio: Cannot hold control or reordering marks."),
        ({"bio": "a\u2028b"}, "bio: Cannot hold control or reordering marks."),
        ({"bio": "bell\x07"}, "bio: Cannot hold control or reordering marks."),
    ],
)
def test_bad_profile_edits_are_a_400_and_change_nothing(make_user, client_for, body, message):
    ann = make_user("ann", bio="before")

    response = client_for(ann).patch("/api/v1/accounts/me", body, format="json")

    ann.refresh_from_db()
    assert response.status_code == 400
    assert response.json()["error"]["message"] == message
    assert (ann.bio, ann.is_private, ann.email) == ("before", False, "")


def test_a_bio_keeps_its_lines_and_a_name_its_joiners(make_user, client_for):
    ann = make_user("ann", bio="before")
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"

    response = client_for(ann).patch(
        "/api/v1/accounts/me", {"bio": "line one\nline two", "full_name": family}, format="json"
    )

    ann.refresh_from_db()
    assert response.status_code == 200
    assert (ann.bio, ann.full_name) == ("line one\nline two", family)


def test_me_requires_authentication(client_for):
    response = client_for(None).patch("/api/v1/accounts/me", {"bio": "x"}, format="json")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_schema_describes_the_accounts_endpoints(client):
    schema = client.get("/api/schema/", headers={"Accept": "application/vnd.oai.openapi+json"})

    paths = schema.json()["paths"]
    assert {
        "/api/v1/accounts/register",
        "/api/v1/accounts/login",
        "/api/v1/accounts/logout",
        "/api/v1/accounts/me",
        "/api/v1/users/{handle}",
        "/api/v1/users/{user_id}/follow",
        "/api/v1/users/{user_id}/followers",
        "/api/v1/users/{user_id}/following",
        "/api/v1/accounts/me/follow_requests",
        "/api/v1/accounts/me/follow_requests/{user_id}/approve",
        "/api/v1/accounts/me/follow_requests/{user_id}/deny",
        "/api/v1/users/{user_id}/block",
        "/api/v1/users/{user_id}/close_friend",
    } <= set(paths)
    assert sorted(paths["/api/v1/users/{user_id}/follow"]) == ["delete", "post"]
    assert schema.json()["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "Token from register or login.",
    }


def _picture(colour):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (500, 400), colour).save(buffer, "PNG")
    return SimpleUploadedFile("me.png", buffer.getvalue(), content_type="image/png")


def _picture_upload(client, colour):
    return client.post(
        "/api/v1/accounts/me/profile_pic", {"file": _picture(colour)}, format="multipart"
    )


def test_profile_picture_upload_renders_squares_and_replaces_the_old_one(
    make_user, client_for, settings, tmp_path, redis_client
):
    from PIL import Image

    from media.models import Media

    settings.MEDIA_ROOT = tmp_path
    ann = make_user("ann")

    first = _picture_upload(client_for(ann), (200, 10, 10))
    second = _picture_upload(client_for(ann), (10, 200, 10))

    rows = {m.id: m for m in Media.objects.using("shard_0").filter(uploader_id=ann.id)}
    ann.refresh_from_db()
    current = rows[ann.profile_pic_media_id]
    assert first.status_code == second.status_code == 200
    assert second.json()["profile_pic_url"] == ann.profile_pic_url
    assert ann.profile_pic_url.endswith(f"{current.storage_prefix}/320_square.jpg")
    assert (current.status, current.kind) == ("ready", "profile")
    assert (current.attached_at is not None, current.expires_at) == (True, None)
    assert Image.open(tmp_path / current.storage_prefix / "320_square.jpg").size == (320, 320)
    assert Image.open(tmp_path / current.storage_prefix / "150_square.jpg").size == (150, 150)
    old = [m for m in rows.values() if m.id != current.id]
    assert len(old) == 1 and old[0].expires_at is not None


def test_two_profile_pictures_at_once_leave_only_the_last_attached(
    make_user, settings, tmp_path, redis_client
):
    """Both requests loaded the user before either saved (a double tap): the second still
    releases the picture the first set, not the one both saw."""
    import io

    from PIL import Image

    from accounts.services.profile import profile_picture_set
    from media.models import Media

    settings.MEDIA_ROOT = tmp_path
    ann = make_user("ann")

    def picture(colour):
        buffer = io.BytesIO()
        Image.new("RGB", (500, 400), colour).save(buffer, "PNG")
        return SimpleUploadedFile("me.png", buffer.getvalue(), content_type="image/png")

    first_request, second_request = User.objects.get(pk=ann.pk), User.objects.get(pk=ann.pk)
    profile_picture_set(user=first_request, file=picture((200, 10, 10)))
    profile_picture_set(user=second_request, file=picture((10, 200, 10)))

    ann.refresh_from_db()
    rows = Media.objects.using("shard_0").filter(uploader_id=ann.id).order_by("id")
    assert [(m.id == ann.profile_pic_media_id, m.attached_at is None) for m in rows] == [
        (False, True),
        (True, False),
    ]


@pytest.fixture
def with_a_picture(make_user, settings, tmp_path, redis_client):
    """ann, with a profile picture set (and its media ID)."""
    from accounts.services import profile

    settings.MEDIA_ROOT = tmp_path
    ann = make_user("ann", shard="shard_0")
    profile.profile_picture_set(user=User.objects.get(pk=ann.pk), file=_picture((200, 10, 10)))
    return ann, User.objects.get(pk=ann.pk).profile_pic_media_id


def test_a_crash_once_a_new_profile_picture_is_set_still_frees_the_old_one(
    with_a_picture, settle, monkeypatch
):
    import datetime as dt

    from django.utils import timezone

    from accounts.services import profile
    from media import services as media_services
    from media.models import Media

    ann, old = with_a_picture

    def killed(**kwargs):
        raise SystemExit("killed")

    with monkeypatch.context() as patched:  # the process dies once the new one is set
        patched.setattr(media_services, "media_release", killed)
        with pytest.raises(SystemExit):
            profile.profile_picture_set(
                user=User.objects.get(pk=ann.pk), file=_picture((10, 200, 10))
            )
    settle()  # the sweep, once the net's grace has passed
    media_services.media_expire(now=timezone.now() + dt.timedelta(days=365))

    new = User.objects.get(pk=ann.pk).profile_pic_media_id
    assert new != old
    assert list(Media.objects.using("shard_0").values_list("id", flat=True)) == [new]


def test_a_new_profile_picture_that_never_commits_leaves_the_old_one_attached(
    with_a_picture, settle, monkeypatch
):
    from django.db import DatabaseError

    from accounts.services import profile
    from media.models import Media

    ann, old = with_a_picture

    def fail(*args, **kwargs):
        raise DatabaseError("the default database went away")

    monkeypatch.setattr(User, "save", fail)
    with pytest.raises(DatabaseError):
        profile.profile_picture_set(user=User.objects.get(pk=ann.pk), file=_picture((10, 200, 10)))
    monkeypatch.undo()
    settle()  # the net too, which finds the old picture still in use

    assert User.objects.get(pk=ann.pk).profile_pic_media_id == old
    assert Media.objects.using("shard_0").get(id=old).attached_at is not None


def test_profile_pictures_count_against_the_upload_rate_limit(
    make_user, client_for, settings, tmp_path, redis_client
):
    from media.models import Media

    settings.MEDIA_ROOT = tmp_path
    settings.MEDIA_UPLOAD_RATE_LIMIT = 2
    ann = make_user("ann")

    answers = [_picture_upload(client_for(ann), (40 * n, 9, 9)) for n in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 429, 429]
    assert answers[2].json()["error"]["code"] == "rate_limited"
    assert Media.objects.using("shard_0").filter(uploader_id=ann.id).count() == 2


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b"", 400, "invalid_image"),
        (b"just some text", 415, "unsupported_media_type"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", 415, "unsupported_media_type"),
    ],
)
def test_bad_profile_pictures_are_refused(
    make_user, client_for, settings, tmp_path, redis_client, content, status, code
):
    import io

    settings.MEDIA_ROOT = tmp_path
    ann = make_user("ann")
    file = io.BytesIO(content)
    file.name = "me.jpg"

    response = client_for(ann).post(
        "/api/v1/accounts/me/profile_pic", {"file": file}, format="multipart"
    )

    ann.refresh_from_db()
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert (ann.profile_pic_media_id, ann.profile_pic_url) == (None, "")
    assert list(tmp_path.rglob("*.*")) == []
