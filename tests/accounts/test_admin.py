import pytest

from accounts.models import AuthToken, User

ALL = "__all__"
pytestmark = pytest.mark.django_db(databases=ALL)


def test_admin_searches_verifies_and_deactivates_users(admin_client_all, make_user):
    ann = make_user("ann")
    make_user("bob")

    found = admin_client_all.get("/admin/accounts/user/?q=ann")
    verified = admin_client_all.post(
        "/admin/accounts/user/", {"action": "verify", "_selected_action": [ann.pk]}
    )
    deactivated = admin_client_all.post(
        "/admin/accounts/user/", {"action": "deactivate", "_selected_action": [ann.pk]}
    )

    ann.refresh_from_db()
    assert found.status_code == 200
    assert b"ann" in found.content and b">bob<" not in found.content
    assert verified.status_code == deactivated.status_code == 302
    assert (ann.is_verified, ann.is_active) == (True, False)
    assert AuthToken.objects.filter(user=ann).count() == 0


def test_admin_lists_and_opens_graph_rows_per_shard(
    admin_client_all, make_user, client_for, settle, redis_client
):
    ann = make_user("ann", shard="shard_0")
    ben = make_user("ben", shard="shard_1")
    client_for(ann).post(f"/api/v1/users/{ben.id}/follow")
    settle()
    from accounts.models import Following

    edge = Following.objects.using("shard_0").get()

    shard_0 = admin_client_all.get("/admin/accounts/following/?shard=shard_0")
    shard_1 = admin_client_all.get("/admin/accounts/following/?shard=shard_1")
    detail = admin_client_all.get(f"/admin/accounts/following/{edge.id}/change/")
    followers = admin_client_all.get("/admin/accounts/follower/?shard=shard_1")

    assert shard_0.status_code == shard_1.status_code == detail.status_code == 200
    assert str(edge.id).encode() in shard_0.content
    assert str(edge.id).encode() not in shard_1.content
    assert str(ben.id).encode() in detail.content
    assert b"1 follower" in followers.content


def test_admin_setting_a_password_revokes_the_users_tokens_at_once(
    admin_client_all, make_user, client_for, redis_client
):
    ann = make_user("ann")
    app = client_for(ann)
    assert app.get("/api/v1/accounts/me").status_code == 200  # the token is cached now

    changed = admin_client_all.post(
        f"/admin/accounts/user/{ann.pk}/password/",
        {"password1": "a-new-pass-9876", "password2": "a-new-pass-9876"},
    )

    assert changed.status_code == 302
    assert AuthToken.objects.filter(user=ann).count() == 0
    answer = app.get("/api/v1/accounts/me")
    assert (answer.status_code, answer.json()["error"]["code"]) == (401, "invalid_token")
    ann.refresh_from_db()
    assert ann.check_password("a-new-pass-9876")


def test_admin_refuses_an_all_digit_username_on_add_and_on_change(admin_client_all, make_user):
    ann = make_user("ann")
    password = {"password1": "a-new-pass-9876", "password2": "a-new-pass-9876"}

    added = admin_client_all.post("/admin/accounts/user/add/", {"username": "12345", **password})
    when = {"0": "2026-01-01", "1": "00:00:00"}
    renamed = admin_client_all.post(
        f"/admin/accounts/user/{ann.pk}/change/",
        {
            "username": "007",
            "is_active": "on",
            **{f"last_active_at_{part}": value for part, value in when.items()},
            **{f"date_joined_{part}": value for part, value in when.items()},
        },
    )

    refused = {"username": ["Usernames cannot be only digits."]}
    assert (added.status_code, renamed.status_code) == (200, 200)  # the form again, with errors
    assert added.context["adminform"].form.errors == refused
    assert renamed.context["adminform"].form.errors == refused
    assert sorted(User.objects.values_list("username", flat=True)) == ["ann", "root"]


UNAVAILABLE = (
    "Sign-outs cannot be recorded while Redis is unreachable, so nothing was changed. "
    "Try again shortly."
)


def test_with_redis_unreachable_admin_changes_that_revoke_tokens_say_so_and_change_nothing(
    admin_client_all, make_user, request
):
    ann = make_user("ann")
    request.getfixturevalue("silent_redis")
    changes = [
        (f"/admin/accounts/user/{ann.pk}/password/",
         {"password1": "a-new-pass-9876", "password2": "a-new-pass-9876"}),
        ("/admin/accounts/user/", {"action": "deactivate", "_selected_action": [ann.pk]}),
    ]  # fmt: skip

    for path, data in changes:
        refused = admin_client_all.post(path, data)
        page = admin_client_all.get(refused["Location"])

        assert (refused.status_code, refused["Location"]) == (302, path)
        assert page.status_code == 200
        assert [str(m) for m in page.context["messages"]] == [UNAVAILABLE]
    ann.refresh_from_db()
    assert ann.is_active is True
    assert ann.check_password("correct horse battery staple")
    assert AuthToken.objects.filter(user=ann).count() == 1
