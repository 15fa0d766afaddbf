"""User changes in the admin do what the same change through the API does."""

import pytest

from accounts.models import Follower, FollowRequest, User, UserCounters
from accounts.services.auth import REVOKED, hash_token, token_cache_key
from accounts.services.graph import block_create

ALL = "__all__"
pytestmark = pytest.mark.django_db(databases=ALL)


def _change_form(user: User, **changes) -> dict:
    """The user's admin change form as a browser posts it (an unchecked box is left out)."""
    fields = {
        "username": user.username,
        "full_name": user.full_name,
        "email": user.email,
        "bio": user.bio,
        "profile_pic_url": user.profile_pic_url,
        "is_private": user.is_private,
        "is_verified": user.is_verified,
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        **changes,
    }
    data = {name: ("on" if value is True else value) for name, value in fields.items()}
    data = {name: value for name, value in data.items() if value is not False}
    for name in ("last_active_at", "date_joined"):
        moment = getattr(user, name)
        data[f"{name}_0"], data[f"{name}_1"] = f"{moment:%Y-%m-%d}", f"{moment:%H:%M:%S}"
    data["last_login_0"] = data["last_login_1"] = ""
    return data


def _counts(user: User) -> tuple[int, int]:
    row = UserCounters.objects.using(user.shard_alias()).get(user_id=user.id)
    return row.follower_count, row.following_count


def _pending(user: User) -> int:
    return (
        FollowRequest.objects.using(user.shard_alias())
        .filter(target_id=user.id, approved_at__isnull=True)
        .count()
    )


def test_unchecking_private_in_the_admin_approves_every_pending_request_once_it_commits(
    admin_client_all,
    make_user,
    client_for,
    settle,
    redis_client,
    django_capture_on_commit_callbacks,
):
    pia = make_user("pia", shard="shard_1", private=True)
    ann = make_user("ann", shard="shard_0")
    ben = make_user("ben", shard="shard_1")
    cat = make_user("cat", shard="shard_0")
    for requester in (ann, ben, cat):
        client_for(requester).post(f"/api/v1/users/{pia.id}/follow")
    client_for(pia).post(f"/api/v1/accounts/me/follow_requests/{cat.id}/approve")
    settle()

    with django_capture_on_commit_callbacks(using="default") as callbacks:
        saved = admin_client_all.post(
            f"/admin/accounts/user/{pia.pk}/change/", _change_form(pia, is_private=False)
        )
    pending_before_commit = _pending(pia)
    for callback in callbacks:
        callback()
    settle()

    pia.refresh_from_db()
    assert saved.status_code == 302
    assert pia.is_private is False
    assert pending_before_commit == 2
    assert _pending(pia) == 0
    followers = Follower.objects.using("shard_1").filter(followee_id=pia.id)
    assert sorted(followers.values_list("follower_id", flat=True)) == sorted(
        [ann.id, ben.id, cat.id]
    )
    assert _counts(pia) == (3, 0)
    assert _counts(ann) == _counts(ben) == _counts(cat) == (0, 1)


def test_reactivating_from_the_inactive_list_forgets_the_revoked_marks_of_those_selected(
    admin_client_all, make_user, client_for, redis_client, django_capture_on_commit_callbacks
):
    ann = make_user("ann")
    bob = make_user("bob")
    with django_capture_on_commit_callbacks(using="default", execute=True):
        for user in (ann, bob):  # deactivated in the change form: tokens kept, marked revoked
            admin_client_all.post(
                f"/admin/accounts/user/{user.pk}/change/", _change_form(user, is_active=False)
            )
    assert client_for(ann).get("/api/v1/accounts/me").status_code == 401

    with django_capture_on_commit_callbacks(using="default", execute=True):
        reactivated = admin_client_all.post(
            "/admin/accounts/user/?is_active__exact=0",
            {"action": "reactivate", "_selected_action": [ann.pk]},
        )

    assert reactivated.status_code == 302
    assert redis_client.get(token_cache_key(hash_token(ann.token))) is None
    assert client_for(ann).get("/api/v1/accounts/me").status_code == 200
    assert redis_client.get(token_cache_key(hash_token(bob.token))) == REVOKED
    assert client_for(bob).get("/api/v1/accounts/me").status_code == 401
    assert User.objects.get(pk=bob.pk).is_active is False


def test_an_account_added_in_the_admin_shows_a_pending_request_and_a_block(
    admin_client_all, make_user, client_for, redis_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(using="default", execute=True):
        added = admin_client_all.post(
            "/admin/accounts/user/add/",
            {"username": "owner", "password1": "pw-Owner-123456", "password2": "pw-Owner-123456"},
        )
    assert added.status_code == 302
    owner = User.objects.get(username="owner")
    assert _counts(owner) == (0, 0)  # the counters row, on the owner's shard, as sign-up makes
    User.objects.filter(pk=owner.pk).update(is_private=True)
    viewer, blocked = make_user("viewer"), make_user("blocked")
    assert client_for(viewer).post(f"/api/v1/users/{owner.id}/follow").json() == {
        "status": "requested"
    }
    UserCounters.objects.using(owner.shard_alias()).filter(user_id=owner.id).delete()
    # Even with the row lost, the owner's side of the relationship is read.
    profile = client_for(viewer).get(f"/api/v1/users/{owner.id}").json()
    assert (profile["follow_requested_by_viewer"], profile["follower_count"]) == (True, 0)
    block_create(blocker=owner, blocked_id=blocked.id)
    UserCounters.objects.using(owner.shard_alias()).filter(user_id=owner.id).delete()
    for path in (f"/api/v1/users/{owner.id}", f"/api/v1/users/{owner.id}/followers"):
        response = client_for(blocked).get(path)
        assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")


def test_accounts_are_deactivated_never_deleted_in_the_admin(admin_client_all, make_user):
    ann = make_user("ann")

    page = admin_client_all.get(f"/admin/accounts/user/{ann.pk}/delete/")
    listed = admin_client_all.get("/admin/accounts/user/")

    assert page.status_code == 403
    assert b"delete_selected" not in listed.content
    assert User.objects.filter(pk=ann.pk).exists()


def test_the_admin_refuses_a_reserved_username_but_keeps_one_made_before_the_rule(
    admin_client_all, make_user, redis_client
):
    added = admin_client_all.post(
        "/admin/accounts/user/add/",
        {"username": "me", "password1": "pw-Owner-123456", "password2": "pw-Owner-123456"},
    )
    ann = make_user("ann")
    renamed = admin_client_all.post(
        f"/admin/accounts/user/{ann.pk}/change/", _change_form(ann, username="admin")
    )
    legacy = User.objects.create_user(username="support", password="pw-12345678")
    kept = admin_client_all.post(
        f"/admin/accounts/user/{legacy.pk}/change/", _change_form(legacy, full_name="Help desk")
    )

    assert added.status_code == renamed.status_code == 200  # the form again, with the error
    assert added.context["adminform"].form.errors["username"] == ["That username is reserved."]
    assert renamed.context["adminform"].form.errors["username"] == ["That username is reserved."]
    assert not User.objects.filter(username__in=["me", "admin"]).exists()
    assert kept.status_code == 302
    assert User.objects.get(pk=legacy.pk).full_name == "Help desk"


def test_the_admin_refuses_a_new_dotted_username_but_keeps_one_made_before_the_rule(
    admin_client_all, make_user, redis_client
):
    message = "Usernames cannot start or end with '.', nor hold '..'."
    added = admin_client_all.post(
        "/admin/accounts/user/add/",
        {"username": "ann.", "password1": "pw-Owner-123456", "password2": "pw-Owner-123456"},
    )
    ben = make_user("ben")
    renamed = admin_client_all.post(
        f"/admin/accounts/user/{ben.pk}/change/", _change_form(ben, username="b..en")
    )
    legacy = make_user("john.")  # made before the rule
    kept = admin_client_all.post(
        f"/admin/accounts/user/{legacy.pk}/change/", _change_form(legacy, is_verified=True)
    )

    assert added.context["adminform"].form.errors["username"] == [message]
    assert renamed.context["adminform"].form.errors["username"] == [message]
    assert kept.status_code == 302
    assert User.objects.get(pk=legacy.pk).is_verified is True
    assert sorted(User.objects.values_list("username", flat=True)) == ["ben", "john.", "root"]


@pytest.mark.django_db(databases=ALL, transaction=True)
def test_a_login_racing_the_deactivate_action_keeps_no_token(admin_client_all, make_user):
    import datetime as dt
    import time
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections
    from django.utils import timezone

    from accounts.models import AuthToken
    from tests.locks import lock_waiters, own_connections

    ann = make_user("ann")
    AuthToken.objects.filter(user=ann).delete()
    # A login between its check of the account (a share lock on the row) and its token's
    # commit, while the action runs.
    login = connections.create_connection("default")
    login.set_autocommit(False)
    try:
        with login.cursor() as cursor:
            cursor.execute("SELECT is_active FROM accounts_user WHERE id = %s FOR SHARE", [ann.pk])
            assert cursor.fetchone() == (True,)
            with ThreadPoolExecutor(1) as pool:
                action = pool.submit(
                    own_connections(
                        lambda: admin_client_all.post(
                            "/admin/accounts/user/",
                            {"action": "deactivate", "_selected_action": [ann.pk]},
                        )
                    )
                )
                deadline = time.monotonic() + 30
                while lock_waiters("default") < 1 and not action.done():
                    assert time.monotonic() < deadline, "the action never waited"
                    time.sleep(0.02)
                cursor.execute(
                    "INSERT INTO accounts_authtoken (user_id, key_hash, device, created_at, "
                    "expires_at) VALUES (%s, %s, '', %s, %s)",
                    [ann.pk, "f" * 64, timezone.now(), timezone.now() + dt.timedelta(days=1)],
                )
                login.commit()
                assert action.result().status_code == 302
    finally:
        login.close()

    assert User.objects.get(pk=ann.pk).is_active is False
    assert not AuthToken.objects.filter(user_id=ann.pk).exists()


@pytest.mark.django_db(databases=ALL, transaction=True)
def test_making_an_account_private_in_the_admin_waits_for_an_approval_batch_in_flight(
    admin_client_all, redis_client, switch_during_an_approval_batch
):
    """As the API's switch: the admin's save commits under the lock a batch of approvals
    holds, so when the admin answers, the batch made while the account was public is
    committed, and none comes after."""
    saved, approved_when_answered, cat = switch_during_an_approval_batch(
        lambda cat: admin_client_all.post(
            f"/admin/accounts/user/{cat.pk}/change/",
            _change_form(User.objects.get(pk=cat.pk), is_private=True),
        )
    )

    assert (saved.status_code, approved_when_answered) == (302, 1)
    assert User.objects.get(pk=cat.pk).is_private is True
