import datetime as dt
import time
from unittest.mock import patch

import pytest
from django.utils import timezone

from accounts.models import AuthToken, User
from accounts.services.auth import LOGIN_WINDOW, hash_token
from instagram.ratelimit import rate_limit_count
from tests.accounts import hashers

ALL = "__all__"
PASSWORD = "correct horse battery staple"

pytestmark = pytest.mark.django_db(databases=ALL)


def _register(api, **body):
    return api.post("/api/v1/accounts/register", {"password": PASSWORD, **body}, format="json")


def test_register_returns_a_token_that_authenticates(api, redis_client):
    response = _register(api, username="Alice_1", email="a@example.com", full_name="Alice")

    body = response.json()
    user = User.objects.get()
    assert response.status_code == 201
    assert body == {"user_id": str(user.id), "username": "alice_1", "token": body["token"]}
    assert AuthToken.objects.get().key_hash == hash_token(body["token"])
    assert body["token"] not in AuthToken.objects.values_list("key_hash", flat=True)
    me = api.get("/api/v1/accounts/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200
    assert me.json()["username"] == "alice_1"
    assert me.json()["full_name"] == "Alice"


def test_password_hashers_put_argon2_first_outside_tests():
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "INSTAGRAM_TESTING"}
    env.update(DEBUG="1", DJANGO_SETTINGS_MODULE="instagram.settings")
    code = "from django.conf import settings; print(settings.PASSWORD_HASHERS[0])"

    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.stdout.strip().splitlines()[-1] == (
        "django.contrib.auth.hashers.Argon2PasswordHasher"
    )


@pytest.mark.parametrize(
    ("proxies", "forwarded", "limited_as"),
    [
        (0, "203.0.113.7", "127.0.0.1"),  # no proxy: the header is the client's own words
        (1, "203.0.113.7", "203.0.113.7"),
        (1, "10.9.9.9, 203.0.113.7", "203.0.113.7"),  # the first entry is the client's
        (2, "10.9.9.9, 203.0.113.7, 192.0.2.1", "203.0.113.7"),
        (2, "203.0.113.7", "127.0.0.1"),  # one hop for two proxies: not through them
        (1, "203.0.113.7:51234", "203.0.113.7"),
        (1, "[2001:db8::7]:51234", "2001:db8::/64"),  # an IPv6 client by its network
        (1, "2001:db8::7", "2001:db8::/64"),
        (1, "::ffff:203.0.113.7", "203.0.113.7"),  # a v4 client through a v6 socket
        (1, "not-an-address", "127.0.0.1"),
        (1, "", "127.0.0.1"),
    ],
)
def test_logins_are_throttled_per_client_address_behind_trusted_proxies(
    proxies, forwarded, limited_as, api, settings, redis_client
):
    settings.TRUSTED_PROXIES = proxies
    settings.LOGIN_ATTEMPTS_PER_IP = 1
    body = {"username": "x", "password": "y"}

    first = api.post("/api/v1/accounts/login", body, format="json", HTTP_X_FORWARDED_FOR=forwarded)
    # Another client, behind the same proxies (one hop: through one proxy at most).
    other = api.post(
        "/api/v1/accounts/login", body, format="json", HTTP_X_FORWARDED_FOR="198.51.100.4"
    )

    other_as = "198.51.100.4" if proxies == 1 else "127.0.0.1"
    assert first.status_code == 401
    assert other.status_code == (429 if other_as == limited_as else 401)  # a budget each
    assert rate_limit_count(name=f"login:ip:{limited_as}", window=LOGIN_WINDOW) == (
        2 if other_as == limited_as else 1
    )


@pytest.mark.parametrize(
    ("username", "code"),
    [
        ("a" * 31, "invalid_username"),
        ("bad name", "invalid_username"),
        ("dash-name", "invalid_username"),
        ("émile", "invalid_username"),
        ("", "invalid"),
        ("admin", "username_reserved"),
        ("API", "username_reserved"),
    ],
)
def test_bad_usernames_are_refused_and_nothing_is_created(api, redis_client, username, code):
    response = _register(api, username=username)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert User.objects.count() == 0


@pytest.mark.parametrize("username", ["12345", "007", "0", "1" * 30])
def test_all_digit_usernames_are_refused_and_nothing_is_created(api, redis_client, username):
    response = _register(api, username=username)

    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": "invalid_username", "message": "Usernames cannot be only digits."}
    }
    assert User.objects.count() == 0
    assert AuthToken.objects.count() == 0


def test_username_taken_in_another_case_is_a_conflict(api, redis_client):
    assert _register(api, username="bob").status_code == 201

    response = _register(api, username="BOB")

    assert response.status_code == 409
    assert response.json() == {
        "error": {"code": "username_taken", "message": "That username is taken."}
    }
    assert User.objects.count() == 1


def test_weak_password_is_refused(api, redis_client):
    response = _register(api, username="carol", password="123")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_password"
    assert User.objects.count() == 0


def test_overlong_fields_are_a_400(api, redis_client):
    response = _register(api, username="dave", full_name="x" * 151)

    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "full_name: Ensure this field has no more than 150 characters."
    )
    assert User.objects.count() == 0


def test_a_name_that_reads_backwards_is_a_400(api, redis_client):
    response = _register(api, username="dave", full_name="evaD\u202e")

    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "full_name: Cannot hold control or reordering marks."
    )
    assert User.objects.count() == 0


def test_login_with_right_and_wrong_credentials(api, make_user, redis_client):
    make_user("erin")

    good = api.post(
        "/api/v1/accounts/login", {"username": "ERIN", "password": PASSWORD}, format="json"
    )
    wrong = api.post(
        "/api/v1/accounts/login", {"username": "erin", "password": "nope"}, format="json"
    )
    unknown = api.post(
        "/api/v1/accounts/login", {"username": "nobody", "password": "nope"}, format="json"
    )

    assert good.status_code == 200
    assert good.json()["username"] == "erin"
    assert wrong.status_code == unknown.status_code == 401
    assert (
        wrong.json()
        == unknown.json()
        == {"error": {"code": "invalid_credentials", "message": "Wrong username or password."}}
    )


def test_unknown_and_known_users_cost_the_same_hashing(api, make_user, settings, redis_client):
    settings.PASSWORD_HASHERS = ["tests.accounts.hashers.CountingHasher"]
    User.objects.create_user(username="frank", password=PASSWORD)
    body = {"password": "wrong password"}

    hashers.calls.clear()
    api.post("/api/v1/accounts/login", {**body, "username": "frank"}, format="json")
    known = len(hashers.calls)
    hashers.calls.clear()
    api.post("/api/v1/accounts/login", {**body, "username": "ghost"}, format="json")
    unknown = len(hashers.calls)

    assert known == unknown == 1


def test_failed_logins_are_throttled_per_account(api, make_user, settings, redis_client):
    settings.LOGIN_FAILURES_PER_ACCOUNT = 3
    make_user("gina")
    wrong = {"username": "gina", "password": "nope"}

    statuses = [
        api.post("/api/v1/accounts/login", wrong, format="json").status_code for _ in range(3)
    ]
    blocked = api.post(
        "/api/v1/accounts/login", {"username": "gina", "password": PASSWORD}, format="json"
    )

    assert statuses == [401, 401, 401]
    assert blocked.status_code == 429
    assert blocked.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(blocked["Retry-After"]) <= 900
    assert AuthToken.objects.filter(user__username="gina").count() == 1  # the fixture's only


def test_logins_are_throttled_per_ip(api, settings, redis_client):
    settings.LOGIN_ATTEMPTS_PER_IP = 2
    body = {"username": "x", "password": "y"}

    statuses = [
        api.post("/api/v1/accounts/login", body, format="json").status_code for _ in range(3)
    ]

    assert statuses == [401, 401, 429]


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "not_authenticated"),
        ("Bearer", "invalid_token"),
        ("Bearer not-a-real-token", "invalid_token"),
        ("Bearer a b", "invalid_token"),
        ("Bearer " + "x" * 300, "invalid_token"),
    ],
)
def test_missing_or_bad_token_is_a_401(api, header, code):
    headers = {"Authorization": header} if header else {}

    response = api.get("/api/v1/accounts/me", headers=headers)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == code
    assert response["WWW-Authenticate"] == "Bearer"


def test_expired_token_is_a_401(client_for, make_user):
    user = make_user("hank")
    AuthToken.objects.filter(user=user).update(expires_at=timezone.now() - dt.timedelta(seconds=1))

    response = client_for(user).get("/api/v1/accounts/me")

    assert response.status_code == 401
    assert response.json()["error"] == {
        "code": "token_expired",
        "message": "The token has expired.",
    }


def test_logout_revokes_only_that_token(
    api, client_for, make_user, redis_client, django_capture_on_commit_callbacks
):
    user = make_user("ivy")
    other_device = api.post(
        "/api/v1/accounts/login", {"username": "ivy", "password": PASSWORD}, format="json"
    ).json()["token"]
    assert client_for(user).get("/api/v1/accounts/me").status_code == 200  # now cached

    with django_capture_on_commit_callbacks(using="default", execute=True):
        logout = client_for(user).post("/api/v1/accounts/logout")

    assert logout.status_code == 204
    assert client_for(user).get("/api/v1/accounts/me").status_code == 401
    other = api.get("/api/v1/accounts/me", headers={"Authorization": f"Bearer {other_device}"})
    assert other.status_code == 200


def test_password_change_revokes_every_token_and_issues_one(
    api, client_for, make_user, redis_client, django_capture_on_commit_callbacks
):
    user = make_user("jack")
    token_issue_count = AuthToken.objects.filter(user=user).count()

    wrong = client_for(user).post(
        "/api/v1/accounts/me/password",
        {"old_password": "nope", "new_password": "another long passphrase"},
        format="json",
    )
    with django_capture_on_commit_callbacks(using="default", execute=True):
        changed = client_for(user).post(
            "/api/v1/accounts/me/password",
            {"old_password": PASSWORD, "new_password": "another long passphrase"},
            format="json",
        )

    assert token_issue_count == 1
    assert wrong.status_code == 400
    assert changed.status_code == 200
    assert client_for(user).get("/api/v1/accounts/me").status_code == 401
    new = api.get(
        "/api/v1/accounts/me", headers={"Authorization": f"Bearer {changed.json()['token']}"}
    )
    assert new.status_code == 200
    assert AuthToken.objects.filter(user=user).count() == 1


def test_wrong_current_passwords_count_against_the_accounts_login_failure_limit(
    api, client_for, make_user, settings, redis_client
):
    settings.LOGIN_FAILURES_PER_ACCOUNT = 3
    user = make_user("judy")
    wrong = {"old_password": "nope", "new_password": "another long passphrase"}
    right = {"old_password": PASSWORD, "new_password": "another long passphrase"}

    guesses = [
        client_for(user).post("/api/v1/accounts/me/password", wrong, format="json")
        for _ in range(3)
    ]
    refused = client_for(user).post("/api/v1/accounts/me/password", right, format="json")
    login = api.post(
        "/api/v1/accounts/login", {"username": "judy", "password": PASSWORD}, format="json"
    )

    assert [guess.status_code for guess in guesses] == [400, 400, 400]
    assert guesses[-1].json() == {
        "error": {"code": "invalid_password", "message": "The current password is wrong."}
    }
    assert refused.status_code == 429
    assert refused.json() == {
        "error": {
            "code": "rate_limited",
            "message": "Too many wrong passwords for this account; try again later.",
        }
    }
    assert 1 <= int(refused["Retry-After"]) <= LOGIN_WINDOW
    assert login.status_code == 429  # one budget for the account, however the guesses came
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert list(AuthToken.objects.filter(user=user).values_list("key_hash", flat=True)) == [
        hash_token(user.token)
    ]


def test_a_failed_login_counts_against_the_password_change_too(
    api, client_for, make_user, settings, redis_client
):
    settings.LOGIN_FAILURES_PER_ACCOUNT = 1
    user = make_user("kate")
    api.post("/api/v1/accounts/login", {"username": "KATE", "password": "nope"}, format="json")

    refused = client_for(user).post(
        "/api/v1/accounts/me/password",
        {"old_password": PASSWORD, "new_password": "another long passphrase"},
        format="json",
    )

    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert AuthToken.objects.filter(user=user).count() == 1


def test_inactive_user_token_stops_working(client_for, make_user):
    user = make_user("kim")
    User.objects.filter(pk=user.pk).update(is_active=False)

    assert client_for(user).get("/api/v1/accounts/me").status_code == 401


def test_session_login_works_for_the_browser_with_csrf(make_user):
    from django.test import Client

    make_user("lena")
    browser = Client(enforce_csrf_checks=True)
    assert browser.login(username="lena", password=PASSWORD)

    me = browser.get("/api/v1/accounts/me")
    patch_without_csrf = browser.patch(
        "/api/v1/accounts/me", {"bio": "hi"}, content_type="application/json"
    )

    assert me.status_code == 200
    assert patch_without_csrf.status_code == 403
    assert patch_without_csrf.json()["error"]["code"] == "permission_denied"


def test_logout_ends_a_browser_session_and_a_copy_of_its_cookie_stops_working(
    make_user, client_for, settings, redis_client
):
    from django.contrib.sessions.models import Session
    from django.test import Client

    user = make_user("mona")
    browser = Client()
    browser.force_login(user)
    cookie = browser.cookies[settings.SESSION_COOKIE_NAME].value
    assert browser.get("/api/v1/accounts/me").status_code == 200

    logout = browser.post("/api/v1/accounts/logout")
    after = browser.get("/api/v1/accounts/me")
    replay = Client()
    replay.cookies[settings.SESSION_COOKIE_NAME] = cookie
    replayed = replay.get("/api/v1/accounts/me")

    assert logout.status_code == 204
    assert (after.status_code, replayed.status_code) == (401, 401)
    assert replayed.json()["error"]["code"] == "not_authenticated"
    assert Session.objects.count() == 0
    assert client_for(user).get("/api/v1/accounts/me").status_code == 200  # its token lives on
    assert AuthToken.objects.filter(user=user).count() == 1


@pytest.mark.django_db(databases=ALL, transaction=True)
def test_guesses_sent_together_get_no_more_password_checks_than_the_account_allows(
    make_user, settings, redis_client
):
    """Each guess is counted before its password is checked: twelve at once past a budget of
    three get three checks and nine 429s, not twelve checks."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from django.contrib.auth.backends import ModelBackend
    from rest_framework.test import APIClient

    from tests.locks import own_connections

    settings.LOGIN_FAILURES_PER_ACCOUNT = 3
    make_user("gina")
    start, checks, lock = threading.Barrier(12), [], threading.Lock()
    real = ModelBackend.authenticate

    def slow_check(self, request, username=None, password=None, **kwargs):
        with lock:
            checks.append(password)
        time.sleep(0.2)  # a real hash's time, so every guess is in flight at once
        return real(self, request, username=username, password=password, **kwargs)

    def guess(n: int) -> int:
        start.wait(10)
        body = {"username": "gina", "password": f"wrong-{n}"}
        return APIClient().post("/api/v1/accounts/login", body, format="json").status_code

    with patch.object(ModelBackend, "authenticate", slow_check):
        with ThreadPoolExecutor(12) as pool:
            statuses = sorted(pool.map(lambda n: own_connections(lambda: guess(n))(), range(12)))

    assert statuses == [401] * 3 + [429] * 9
    assert len(checks) == 3


@pytest.mark.parametrize("username", [".", "..", ".ann", "ann.", "a..b"])
def test_usernames_with_a_leading_trailing_or_double_dot_are_refused(api, redis_client, username):
    response = _register(api, username=username)

    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "invalid_username",
            "message": "Usernames cannot start or end with '.', nor hold '..'.",
        }
    }
    assert User.objects.count() == 0


def test_a_dot_inside_a_username_is_fine(api, redis_client):
    assert _register(api, username="ann.lee_2").status_code == 201


def test_login_attempts_from_one_ipv6_network_share_a_budget(api, settings, redis_client):
    settings.LOGIN_ATTEMPTS_PER_IP = 2
    body = {"username": "ann", "password": "guess"}

    statuses = [
        api.post(
            "/api/v1/accounts/login", body, format="json", REMOTE_ADDR=f"2001:db8:1:2::{i:x}"
        ).status_code
        for i in range(1, 5)
    ]
    elsewhere = api.post(
        "/api/v1/accounts/login", body, format="json", REMOTE_ADDR="2001:db8:1:3::1"
    )

    assert statuses == [401, 401, 429, 429]
    assert elsewhere.status_code == 401
