"""A login racing a password change or a deactivation, interleaved deterministically: the change
runs in a transaction held open until the login, which checked the old password meanwhile, is
waiting for a lock (or has finished); then the change commits and the login goes on."""

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from accounts.models import AuthToken, User
from accounts.services.auth import password_change
from tests.locks import lock_waiters, own_connections

ALL = "__all__"
PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "another long passphrase"

pytestmark = pytest.mark.django_db(databases=ALL, transaction=True)


def _wait_until_blocked_or_done(future: Future) -> None:
    """Until a session of this database waits for a lock, or `future` finished without one."""
    deadline = time.monotonic() + 30
    while not future.done():
        if lock_waiters("default") >= 1:
            return
        assert time.monotonic() < deadline, "the login neither waits for a lock nor finished"
        time.sleep(0.02)


def _change_password(user: User) -> None:
    password_change(user=user, old_password=PASSWORD, new_password=NEW_PASSWORD)


def _deactivate(user: User) -> None:
    User.objects.filter(pk=user.pk).update(is_active=False)


@pytest.mark.parametrize(
    ("change", "tokens_left"),
    [
        (_change_password, ["password-change"]),  # the change's own token, and only it
        (_deactivate, [""]),  # the fixture's token: refused while inactive, and no other
    ],
)
def test_a_login_that_checked_the_password_before_a_change_commits_gets_no_token(
    make_user, redis_client, change, tokens_left
):
    user = make_user("olga")
    changed, commit = threading.Event(), threading.Event()

    def change_held_open() -> None:
        with transaction.atomic(using="default"):
            change(User.objects.get(pk=user.pk))
            changed.set()
            assert commit.wait(timeout=30)

    def login():
        return APIClient().post(
            "/api/v1/accounts/login",
            {"username": "olga", "password": PASSWORD, "device": "racing login"},
            format="json",
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        changing = pool.submit(own_connections(change_held_open))
        assert changed.wait(timeout=30)
        logging_in = pool.submit(own_connections(login))
        _wait_until_blocked_or_done(logging_in)
        commit.set()
        changing.result(timeout=60)
        raced = logging_in.result(timeout=60)

    assert raced.status_code == 401
    assert raced.json() == {
        "error": {"code": "invalid_credentials", "message": "Wrong username or password."}
    }
    assert list(AuthToken.objects.filter(user=user).values_list("device", flat=True)) == (
        tokens_left
    )
