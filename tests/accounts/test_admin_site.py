"""The admin site's own pages: its login under the API's login limits, a staff user's own
password change signing their tokens out."""

import pytest
from django.test import Client

from accounts.models import AuthToken, User
from accounts.services.auth import LOGIN_WINDOW
from instagram.admin import UNAVAILABLE_MESSAGE
from instagram.ratelimit import rate_limit_count
from tests.accounts import hashers

ALL = "__all__"
PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a-new-pass-9876"

pytestmark = pytest.mark.django_db(databases=ALL)


def _log_in(browser: Client, username: str, password: str):
    form = {"username": username, "password": password, "next": "/admin/"}  # as the page posts
    return browser.post("/admin/login/", form)


def _errors(page) -> list[str]:
    return list(page.context["form"].non_field_errors())


def test_admin_login_past_the_account_limit_refuses_even_the_right_password_unchecked(
    settings, redis_client
):
    settings.PASSWORD_HASHERS = ["tests.accounts.hashers.CountingHasher"]
    settings.LOGIN_FAILURES_PER_ACCOUNT = 3
    User.objects.create_superuser(username="root", password=PASSWORD)
    User.objects.create_superuser(username="boss", password=PASSWORD)
    browser = Client(REMOTE_ADDR="203.0.113.7")

    wrong = [_log_in(browser, "root", "not the password") for _ in range(3)]
    hashers.calls.clear()
    refused = _log_in(browser, "root", PASSWORD)
    checked_for_refused = len(hashers.calls)
    other_account = _log_in(Client(REMOTE_ADDR="203.0.113.7"), "boss", PASSWORD)

    assert [page.status_code for page in wrong] == [200, 200, 200]
    assert all(_errors(page)[0].startswith("Please enter the correct") for page in wrong)
    assert refused.status_code == 200
    assert _errors(refused) == ["Too many failed logins for this account; try again later."]
    assert b"Too many failed logins for this account" in refused.content
    assert checked_for_refused == 0  # no password hashed for a refused attempt
    assert "_auth_user_id" not in browser.session
    assert (other_account.status_code, other_account["Location"]) == (302, "/admin/")
    # The API's budget: failures in the admin and through the API add up.
    assert rate_limit_count(name="login:user:root", window=LOGIN_WINDOW) == 3


def test_admin_login_past_the_address_limit_refuses_that_address_only(settings, redis_client):
    settings.LOGIN_ATTEMPTS_PER_IP = 2
    User.objects.create_superuser(username="root", password=PASSWORD)
    guesser = Client(REMOTE_ADDR="203.0.113.8")

    tries = [_log_in(guesser, "root", "not the password") for _ in range(2)]
    refused = _log_in(guesser, "root", PASSWORD)
    elsewhere = _log_in(Client(REMOTE_ADDR="198.51.100.4"), "root", PASSWORD)

    assert [page.status_code for page in tries] == [200, 200]
    assert refused.status_code == 200
    assert _errors(refused) == ["Too many login attempts from this address; try again later."]
    assert "_auth_user_id" not in guesser.session
    assert (elsewhere.status_code, elsewhere["Location"]) == (302, "/admin/")


def test_a_staff_users_own_new_password_in_the_admin_revokes_their_tokens(
    make_user, client_for, redis_client
):
    sam = make_user("sam", is_staff=True)
    app = client_for(sam)
    assert app.get("/api/v1/accounts/me").status_code == 200  # the token is cached now
    browser = Client()
    browser.force_login(sam)

    changed = browser.post(
        "/admin/password_change/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert (changed.status_code, changed["Location"]) == (302, "/admin/password_change/done/")
    answer = app.get("/api/v1/accounts/me")
    assert (answer.status_code, answer.json()["error"]["code"]) == (401, "invalid_token")
    assert AuthToken.objects.filter(user=sam).count() == 0
    sam.refresh_from_db()
    assert sam.check_password(NEW_PASSWORD)
    assert browser.get("/admin/").status_code == 200  # this session stays signed in


def test_with_redis_unreachable_a_staff_users_own_password_change_says_so_and_changes_nothing(
    make_user, request
):
    sam = make_user("sam", is_staff=True)
    browser = Client()
    browser.force_login(sam)
    request.getfixturevalue("silent_redis")

    refused = browser.post(
        "/admin/password_change/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    page = browser.get(refused["Location"])

    assert (refused.status_code, refused["Location"]) == (302, "/admin/password_change/")
    assert page.status_code == 200
    assert [str(m) for m in page.context["messages"]] == [UNAVAILABLE_MESSAGE]
    sam.refresh_from_db()
    assert sam.check_password(PASSWORD)
    assert AuthToken.objects.filter(user=sam).count() == 1


def test_wrong_current_passwords_on_the_admins_own_password_page_count_against_the_account(
    make_user, settings, redis_client
):
    settings.LOGIN_FAILURES_PER_ACCOUNT = 2
    sam = make_user("sam", is_staff=True)
    browser = Client()
    browser.force_login(sam)
    wrong = {"old_password": "nope", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    right = {**wrong, "old_password": PASSWORD}

    errors = [
        browser.post("/admin/password_change/", wrong).context["form"].errors["old_password"]
        for _ in range(2)
    ]
    refused = browser.post("/admin/password_change/", right)

    assert [e.as_data()[0].code for e in errors] == ["password_incorrect", "password_incorrect"]
    assert refused.status_code == 200
    assert refused.context["form"].errors["old_password"] == [
        "Too many wrong passwords for this account; try again later."
    ]
    assert rate_limit_count(name="login:user:sam", window=LOGIN_WINDOW) == 2
    sam.refresh_from_db()
    assert sam.check_password(PASSWORD)  # unchanged
