import datetime as dt
import itertools

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services.auth import token_issue, user_counters_ensure
from instagram.outbox import outbox_sweep
from instagram.redis import get_redis
from tests.factories import id_on

ALL = "__all__"


@pytest.fixture
def redis_client():
    client = get_redis()
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def api():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def queries():
    """Counts queries on every database: `with queries(4): ...` fails on any other number."""
    from contextlib import ExitStack, contextmanager

    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    @contextmanager
    def expect(count: int):
        with ExitStack() as stack:
            captured = {
                alias: stack.enter_context(CaptureQueriesContext(connections[alias]))
                for alias in connections
            }
            yield captured
        executed = [(alias, q["sql"]) for alias, c in captured.items() for q in c.captured_queries]
        listing = "\n".join(f"{alias}: {sql}" for alias, sql in executed)
        assert len(executed) == count, f"{len(executed)} queries, expected {count}:\n{listing}"

    return expect


_sequence = itertools.count(1)


@pytest.fixture
def make_user():
    """A user on a chosen shard (deterministic query counts), with counters and a token."""

    def make(username: str, *, shard: str = "shard_0", private: bool = False, **fields) -> User:
        user = User.objects.create_user(
            id=id_on(shard, sequence=next(_sequence) % 1024),
            username=username,
            password="correct horse battery staple",
            is_private=private,
            **fields,
        )
        user_counters_ensure(user_id=user.id)
        user.token = token_issue(user=user).token
        return user

    return make


@pytest.fixture
def client_for():
    def client(user: User | None) -> APIClient:
        api = APIClient()
        if user is not None:
            api.credentials(HTTP_AUTHORIZATION=f"Bearer {user.token}")
        return api

    return client


@pytest.fixture
def settle():
    """Apply every pending outbox event, as the relay or the sweep would."""

    def run() -> int:
        total = 0
        while applied := outbox_sweep(now=timezone.now() + dt.timedelta(hours=1)):
            total += applied
        return total

    return run
