"""The token cache: a checked token is trusted from Redis, and every revocation is at once."""

import datetime as dt

import pytest
from django.contrib import admin
from django.utils import timezone

from accounts.admin import UserAdmin
from accounts.models import AuthToken, User
from accounts.services.auth import REVOKED, hash_token, token_cache_key, tokens_mark_revoked

ALL = "__all__"
pytestmark = pytest.mark.django_db(databases=ALL)


def _entry(redis_client, user) -> bytes | None:
    return redis_client.get(token_cache_key(hash_token(user.token)))


def test_a_checked_token_is_cached_with_its_user_and_expiry(make_user, client_for, redis_client):
    user = make_user("ann")
    token = AuthToken.objects.get(user=user)

    response = client_for(user).get("/api/v1/accounts/me")

    assert response.status_code == 200
    user_id, token_id, expires, _ = _entry(redis_client, user).split()
    assert (int(user_id), int(token_id)) == (user.id, token.id)
    assert int(expires) == int(token.expires_at.timestamp() * 1_000_000)
    ttl = redis_client.ttl(token_cache_key(hash_token(user.token)))
    assert 590 <= ttl <= 600


def test_a_cached_user_loads_its_row_whole_on_first_use(
    make_user, client_for, redis_client, queries
):
    user = make_user("bea", full_name="Bea Ortiz")
    client_for(user).get("/api/v1/accounts/me")

    with queries(2):  # the user's row, once for all its fields; their counters
        body = client_for(user).get("/api/v1/accounts/me").json()

    assert (body["username"], body["full_name"]) == ("bea", "Bea Ortiz")


def test_a_revoked_mark_is_final_even_while_the_database_still_has_the_token(
    make_user, client_for, redis_client, django_capture_on_commit_callbacks
):
    # As for a request that read the token just before its revocation committed.
    user = make_user("cal")
    with django_capture_on_commit_callbacks(using="default", execute=True):
        tokens_mark_revoked(key_hashes=[hash_token(user.token)])

    response = client_for(user).get("/api/v1/accounts/me")

    assert response.status_code == 401
    assert _entry(redis_client, user) == REVOKED
    assert AuthToken.objects.filter(user=user).count() == 1


@pytest.mark.parametrize("how", ["action", "change_form"])
def test_admin_deactivation_stops_a_cached_token_at_once(
    how, make_user, client_for, redis_client, django_capture_on_commit_callbacks
):
    user = make_user("dan")
    assert client_for(user).get("/api/v1/accounts/me").status_code == 200
    user_admin = UserAdmin(User, admin.site)

    with django_capture_on_commit_callbacks(using="default", execute=True):
        if how == "action":
            user_admin.deactivate(None, User.objects.filter(pk=user.pk))
        else:
            user.is_active = False
            user_admin.save_model(None, user, None, True)

    response = client_for(user).get("/api/v1/accounts/me")
    assert (response.status_code, response.json()["error"]["code"]) == (401, "invalid_token")
    assert _entry(redis_client, user) == REVOKED


def test_admin_reactivation_lets_the_kept_token_in_again(
    make_user, client_for, redis_client, django_capture_on_commit_callbacks
):
    user = make_user("eve")
    user_admin = UserAdmin(User, admin.site)
    with django_capture_on_commit_callbacks(using="default", execute=True):
        user.is_active = False
        user_admin.save_model(None, user, None, True)
    assert client_for(user).get("/api/v1/accounts/me").status_code == 401

    with django_capture_on_commit_callbacks(using="default", execute=True):
        user.is_active = True
        user_admin.save_model(None, user, None, True)

    assert client_for(user).get("/api/v1/accounts/me").status_code == 200


def test_an_entry_this_release_cannot_read_falls_back_to_the_database(
    make_user, client_for, redis_client
):
    user = make_user("gus")
    redis_client.set(token_cache_key(hash_token(user.token)), b"not an entry")

    response = client_for(user).get("/api/v1/accounts/me")

    assert response.status_code == 200
    assert _entry(redis_client, user) == b"not an entry"  # marks and entries are never clobbered


def test_without_redis_tokens_are_checked_in_the_database(make_user, client_for, settings):
    user = make_user("hal")
    settings.REDIS_URL = "redis://127.0.0.1:9/0"  # nothing listens there

    assert client_for(user).get("/api/v1/accounts/me").status_code == 200


def test_the_hourly_activity_touch_updates_the_cached_entry(make_user, client_for, redis_client):
    user = make_user("ivo")
    hours_ago = timezone.now() - dt.timedelta(hours=2)
    User.objects.filter(pk=user.pk).update(last_active_at=hours_ago)
    client_for(user).get("/api/v1/accounts/me")  # cached with the old time, then touched

    *_, last_active = _entry(redis_client, user).split()

    touched = User.objects.get(pk=user.pk).last_active_at
    assert touched > hours_ago + dt.timedelta(hours=1)
    assert int(last_active) == int(touched.timestamp() * 1_000_000)


def test_an_entry_with_impossible_times_falls_back_to_the_database(
    make_user, client_for, redis_client
):
    user = make_user("jon")
    entry = b"%d 1 %d 1" % (user.id, 10**25)
    redis_client.set(token_cache_key(hash_token(user.token)), entry)

    assert client_for(user).get("/api/v1/accounts/me").status_code == 200


def test_a_logout_that_cannot_be_marked_is_refused_and_changes_nothing(
    make_user, client_for, settings
):
    user = make_user("kay")
    settings.REDIS_URL = "redis://127.0.0.1:9/0"  # nothing listens there

    response = client_for(user).post("/api/v1/accounts/logout")

    assert (response.status_code, response.json()["error"]["code"]) == (503, "unavailable")
    assert response["Retry-After"] == "5"
    assert AuthToken.objects.filter(user=user).count() == 1


def test_a_profile_edit_from_a_cached_token_writes_only_the_edited_fields(
    make_user, client_for, redis_client
):
    user = make_user("lou")
    assert client_for(user).get("/api/v1/accounts/me").status_code == 200  # now cached
    User.objects.filter(pk=user.pk).update(is_active=False)  # changed behind the cache's back

    empty = client_for(user).patch("/api/v1/accounts/me", {}, format="json")
    edited = client_for(user).patch("/api/v1/accounts/me", {"bio": "hello"}, format="json")

    assert (empty.status_code, edited.status_code) == (200, 200)
    assert User.objects.filter(pk=user.pk).values_list("is_active", "bio").get() == (
        False,
        "hello",
    )
