import time

import pytest
from django.db import connections
from django.db.backends.postgresql import base as django_postgres


@pytest.fixture
def fresh():
    """A connection of its own to shard_0 (the test's connections stay in their transaction)."""
    wrapper = connections.create_connection("shard_0")
    wrapper.health_check_enabled = True
    yield wrapper
    wrapper.close()


@pytest.fixture
def select_one_checks(monkeypatch):
    """Each call of Django's own check (a `SELECT 1` round trip), with its answer."""
    calls: list[bool] = []
    original = django_postgres.DatabaseWrapper.is_usable

    def spy(self):
        calls.append(original(self))
        return calls[-1]

    monkeypatch.setattr(django_postgres.DatabaseWrapper, "is_usable", spy)
    return calls


def _backend_pid(wrapper) -> int:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _new_request(wrapper) -> None:
    wrapper.health_check_done = False  # what Django does when a request starts


@pytest.mark.django_db(databases="__all__")
def test_a_healthy_connection_is_checked_without_a_round_trip(fresh, select_one_checks):
    pid = _backend_pid(fresh)
    _new_request(fresh)

    fresh.close_if_health_check_failed()

    assert select_one_checks == []
    assert _backend_pid(fresh) == pid


@pytest.mark.django_db(databases="__all__")
def test_a_connection_the_server_closed_is_replaced_before_use(fresh, select_one_checks):
    pid = _backend_pid(fresh)
    with connections["shard_0"].cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    time.sleep(0.2)
    _new_request(fresh)

    fresh.close_if_health_check_failed()

    assert select_one_checks == [False]
    assert fresh.connection is None
    assert _backend_pid(fresh) != pid


@pytest.mark.django_db(databases="__all__")
def test_a_connection_in_a_failed_transaction_is_not_usable(fresh, select_one_checks):
    fresh.ensure_connection()
    fresh.connection.execute("BEGIN")
    with pytest.raises(Exception, match="division by zero"):
        fresh.connection.execute("SELECT 1 / 0")

    assert fresh.is_usable() is False
    assert select_one_checks == [False]


@pytest.mark.django_db(databases="__all__")
def test_a_connection_not_verified_lately_gets_the_full_check(fresh, select_one_checks):
    from instagram.postgres.base import VERIFIED_FOR

    pid = _backend_pid(fresh)
    fresh.verified_at -= VERIFIED_FOR + 1
    _new_request(fresh)

    fresh.close_if_health_check_failed()
    _new_request(fresh)
    fresh.close_if_health_check_failed()  # verified again: no second round trip

    assert select_one_checks == [True]
    assert _backend_pid(fresh) == pid


def _index_migration_run_again(alias: str) -> None:
    """The comment index's migration run again on a shard (as `migrate_all` would, unrecorded)."""
    from django.db.migrations.loader import MigrationLoader

    from instagram.postgres.operations import AddIndexConcurrentlyResumable

    connection = connections[alias]
    loader = MigrationLoader(connection)
    operation = loader.get_migration("posts", "0002_comment_by_author").operations[0]
    assert isinstance(operation, AddIndexConcurrentlyResumable)
    before = loader.project_state(("posts", "0001_initial"))
    after = before.clone()
    operation.state_forwards("posts", after)
    with connection.schema_editor(atomic=False) as editor:
        operation.database_forwards("posts", editor, before, after)


@pytest.mark.django_db(databases="__all__", transaction=True)
@pytest.mark.parametrize("left", ["invalid", "valid"])
def test_an_index_build_cut_short_is_finished_by_the_migration_run_again(left):
    index = "indexrelid = 'comment_by_author'::regclass"
    if left == "invalid":  # what a cancelled CREATE INDEX CONCURRENTLY leaves
        with connections["shard_1"].cursor() as cursor:
            cursor.execute(f"UPDATE pg_index SET indisvalid = false WHERE {index}")
    # (valid: built, and the run cut short before it recorded the migration)

    _index_migration_run_again("shard_1")

    with connections["shard_1"].cursor() as cursor:
        cursor.execute(f"SELECT indisvalid FROM pg_index WHERE {index}")
        assert cursor.fetchall() == [(True,)]
