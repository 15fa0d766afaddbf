"""Scatter-gather on real shard databases: answers, transactions, errors, logging, preparing."""

import psycopg
import pytest
from django.db import DataError, connections, transaction
from django.test.utils import CaptureQueriesContext
from psycopg import pq

from instagram.scatter import scatter
from instagram.sharding import ShardRoutingError
from posts.models import Location

ALL = "__all__"
pytestmark = pytest.mark.django_db(databases=ALL)


def _prepared_on(alias: str) -> list[str]:
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT statement FROM pg_prepared_statements WHERE name LIKE 'scatter%%' "
            "ORDER BY statement"
        )
        return [row[0] for row in cursor.fetchall()]


def test_every_database_answers_in_the_order_given_with_typed_rows():
    rows = scatter(
        [
            ("shard_1", "SELECT %(n)s::int8 * 2, %(t)s::text, ARRAY[1, %(n)s::int8], "
                        "%(none)s::bool, true", {"n": 21, "t": "x", "none": None}),
            ("shard_0", "SELECT generate_series(1, %(k)s::int4)", {"k": 3}),
            ("default", "SELECT %(t)s::text WHERE false", {"t": "nothing"}),
        ]
    )  # fmt: skip

    assert rows == [[(42, "x", [1, 21], None, True)], [(1,), (2,), (3,)], []]


def test_a_query_runs_in_the_transaction_it_is_called_in():
    place = Location.objects.create(name="Uncommitted", name_normalized="uncommitted", lat=1, lng=2)

    with transaction.atomic(using="shard_0"):
        rows = scatter(
            [
                ("default", "SELECT name FROM posts_location WHERE id = %(id)s", {"id": place.id}),
                ("shard_0", "SELECT 1", {}),
            ]
        )
        status = connections["shard_0"].connection.pgconn.transaction_status

    assert rows == [[("Uncommitted",)], [(1,)]]
    assert status == pq.TransactionStatus.INTRANS  # it opened the atomic block's transaction


def test_an_error_is_djangos_and_raised_once_every_answer_is_read():
    with pytest.raises(DataError, match="division by zero"):
        with transaction.atomic(using="shard_0"):
            scatter(
                [
                    ("shard_0", "SELECT 1 / %(zero)s::int4", {"zero": 0}),
                    ("shard_1", "SELECT %(n)s::int4", {"n": 7}),
                ]
            )

    # Neither connection has an answer left unread: both take the next query.
    assert scatter([("shard_0", "SELECT 2", {}), ("shard_1", "SELECT 3", {})]) == [[(2,)], [(3,)]]


@pytest.mark.django_db(databases=ALL, transaction=True)
def test_outside_a_transaction_each_query_is_logged_and_prepared_once_per_connection():
    sql = "SELECT %(a)s::int4 + %(b)s::int4, %(a)s::int4"

    with CaptureQueriesContext(connections["shard_0"]) as logged:
        first = scatter([("shard_0", sql, {"a": 1, "b": 2})])
        second = scatter([("shard_0", sql, {"a": 5, "b": 5})])

    assert (first, second) == ([[(3, 1)]], [[(10, 5)]])
    assert [q["sql"] for q in logged.captured_queries] == [
        f"{sql} -- {{'a': 1, 'b': 2}}",
        f"{sql} -- {{'a': 5, 'b': 5}}",
    ]
    assert _prepared_on("shard_0").count("SELECT $1::int4 + $2::int4, $1::int4") == 1


@pytest.mark.django_db(databases=ALL, transaction=True)
def test_a_statement_deallocated_meanwhile_is_prepared_and_run_again():
    sql = "SELECT %(a)s::int4 * 7 AS again"
    assert scatter([("shard_1", sql, {"a": 1})]) == [[(7,)]]
    with connections["shard_1"].cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # as psycopg does on every rollback

    with CaptureQueriesContext(connections["shard_1"]) as logged:
        rows = scatter([("shard_1", sql, {"a": 2})])

    assert rows == [[(14,)]]
    assert len(logged.captured_queries) == 1
    assert _prepared_on("shard_1").count("SELECT $1::int4 * 7 AS again") == 1


@pytest.mark.django_db(databases=ALL, transaction=True)
def test_a_statement_prepared_by_an_interrupted_call_is_used():
    from instagram import scatter as module

    sql = "SELECT %(a)s::int4 * 11 AS interrupted"
    assert scatter([("shard_0", sql, {"a": 1})]) == [[(11,)]]
    module._prepared.clear()  # as if the call was interrupted before it noted the statement

    assert scatter([("shard_0", sql, {"a": 2})]) == [[(22,)]]


@pytest.mark.django_db(databases=ALL, transaction=True)
def test_the_transaction_it_opens_has_the_connections_options():
    shard = connections["shard_0"]
    shard.ensure_connection()
    shard.connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    try:
        with transaction.atomic(using="shard_0"):
            rows = scatter([("shard_0", "SELECT current_setting('transaction_isolation')", {})])
    finally:
        shard.connection.isolation_level = None

    assert rows == [[("repeatable read",)]]


def test_text_parameters_and_percent_signs_are_sent_as_written():
    rows = scatter([("shard_0", "SELECT '5%%'::text || %(x)s::text", {"x": "é!"})])

    assert rows == [[("5%é!",)]]
    with pytest.raises(ValueError, match="NUL"):
        scatter([("shard_0", "SELECT %(x)s::text", {"x": "a\x00b"})])


def test_inside_a_transaction_nothing_is_prepared():
    assert scatter([("shard_0", "SELECT %(a)s::int4 * 5 AS in_tx", {"a": 2})]) == [[(10,)]]
    assert "SELECT $1::int4 * 5 AS in_tx" not in _prepared_on("shard_0")


@pytest.mark.django_db(databases=ALL, transaction=True)
def test_with_preparing_off_nothing_is_prepared(settings):
    settings.DB_PREPARE_THRESHOLD = 0

    assert scatter([("shard_1", "SELECT %(a)s::int4 * 3 AS unprepared", {"a": 4})]) == [[(12,)]]
    assert "SELECT $1::int4 * 3 AS unprepared" not in _prepared_on("shard_1")


def test_the_shard_guard_sees_every_scattered_query():
    with pytest.raises(ShardRoutingError, match="\"accounts_user\" used on database 'shard_0'"):
        scatter([("shard_0", 'SELECT 1 FROM "accounts_user"', {})])


@pytest.mark.parametrize(
    "queries, error",
    [
        ([("shard_0", "SELECT 1", {}), ("shard_0", "SELECT 2", {})], ValueError),
        ([("shard_0", "SELECT %(x)s::float8", {"x": 1.5})], TypeError),
        ([("shard_0", "SELECT %(x)s::bool", {"x": True})], TypeError),
    ],
)
def test_refuses_two_queries_on_one_database_and_parameters_it_cannot_send(queries, error):
    with pytest.raises(error):
        scatter(queries)
