"""A Redis that answers nothing (packets dropped, or hung) costs one timeout, not one per call."""

import time

import pytest
import redis

from instagram.redis import _client, get_redis
from tests.conftest import accepted_count


def test_after_one_timeout_calls_fail_at_once_until_the_server_is_tried_again(
    silent_redis, settings
):
    with pytest.raises(redis.TimeoutError):
        get_redis().get("x")
    assert accepted_count(silent_redis) == 1

    for _ in range(3):
        with pytest.raises(redis.ConnectionError, match="timed out moments ago"):
            get_redis().get("x")
        with pytest.raises(redis.ConnectionError, match="timed out moments ago"):
            get_redis().pipeline().get("x").execute()
    assert accepted_count(silent_redis) == 1  # no connection tried meanwhile

    time.sleep(settings.REDIS_UNREACHABLE_SECONDS)
    with pytest.raises(redis.TimeoutError):
        get_redis().get("x")
    assert accepted_count(silent_redis) == 2


@pytest.mark.parametrize(
    ("url", "kind", "server"),
    [
        ("redis://127.0.0.1:6399/2", "_Connection", "127.0.0.1:6399"),
        ("rediss://cache.internal:6380/0", "_SSLConnection", "cache.internal:6380"),
        ("unix:///run/redis.sock?db=1", "_UnixConnection", "/run/redis.sock"),
    ],
)
def test_every_kind_of_redis_url_gets_a_connection_that_fails_fast(url, kind, server):
    connection = _client(url, False, 1.0, 1.0).connection_pool.make_connection()

    assert (type(connection).__name__, connection._server()) == (kind, server)
