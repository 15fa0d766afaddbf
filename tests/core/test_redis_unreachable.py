"""A Redis that answers nothing (packets dropped, or hung) costs one timeout, not one per call."""

import time

import pytest
import redis

from instagram.redis import get_redis
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
