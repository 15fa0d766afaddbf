import pytest

from instagram.redis import get_redis

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
