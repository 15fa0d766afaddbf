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


def test_exec_joins_the_services_of_a_run_that_is_up_and_leaves_them_running(monkeypatch, tmp_path):
    import argparse
    import json
    import os
    import sys

    for name in devstack.SERVICE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(devstack, "ROOT", tmp_path)
    (tmp_path / "var").mkdir()
    published = {
        "DATABASE_URL": "postgresql://postgres@%2Frun/instagram",
        "REDIS_URL": "redis://127.0.0.1:6390/0",
    }
    devstack.stack_file(tmp_path / "var").write_text(
        json.dumps({"pid": os.getpid(), "env": published})  # a run that is up: this process
    )

    def no_services(*args, **kwargs):
        raise AssertionError("exec started services of its own")

    monkeypatch.setattr(devstack, "services", no_services)
    seen = tmp_path / "seen.json"
    command = [
        sys.executable,
        "-c",
        "import json, os, sys; json.dump({k: os.environ.get(k) for k in sys.argv[2:]},"
        " open(sys.argv[1], 'w'))",
        str(seen),
        "DATABASE_URL",
        "REDIS_URL",
    ]

    code = devstack.cmd_exec(argparse.Namespace(command=command))

    assert code == 0
    assert json.loads(seen.read_text()) == published


def test_a_published_stack_whose_run_is_gone_is_not_joined(tmp_path):
    import json

    devstack.stack_file(tmp_path).write_text(json.dumps({"pid": 2**22 + 17, "env": {}}))

    assert devstack.running_stack(tmp_path) is None
    assert devstack.running_stack(tmp_path / "none") is None
