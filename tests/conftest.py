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
