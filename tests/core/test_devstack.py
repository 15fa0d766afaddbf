"""The development stack starts what the environment does not name, and keeps what it does."""

from contextlib import ExitStack

import pytest

from instagram import devstack


@pytest.mark.parametrize("broker", ["", "amqp://guest:guest@127.0.0.1:5672//"])
def test_an_embedded_redis_leaves_a_broker_the_environment_names(monkeypatch, tmp_path, broker):
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("CELERY_BROKER_URL", broker)
    with ExitStack() as stack:
        started = devstack.services(stack, tmp_path, persistent_redis=False)

    assert sorted(started) == (["REDIS_URL"] if broker else ["CELERY_BROKER_URL", "REDIS_URL"])
    assert started["REDIS_URL"].startswith("redis://127.0.0.1:")
