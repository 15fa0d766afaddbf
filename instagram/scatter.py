"""Scatter-gather: one query on each of several databases, all in flight at once.

A page that reads N shards one after another waits out N round trips. `scatter` sends every
query before it awaits any answer (libpq's asynchronous calls, on the connections Django already
holds), so the page waits about one round trip however many shards it reads, and it skips the
per-query work of the cursor layers on the hottest reads. Otherwise a query behaves as a
cursor's would:
- outside a transaction it is prepared once per connection and then only bound and run, unless
  DB_PREPARE_THRESHOLD is 0 (a transaction pooler that cannot keep prepared statements). psycopg
  deallocates every prepared statement on a rollback, so a statement found missing is prepared
  and run again;
- inside a transaction (`atomic`) it runs in that transaction, which it opens if nothing has,
  unprepared: there a missing statement would abort the transaction, past retrying;
- an error is raised as Django's database error, once every other answer has been read, so every
  connection stays usable;
- Django's query log (DEBUG, CaptureQueriesContext) and execute wrappers (the shard guard) see
  every query;
- rows come back as tuples, loaded by psycopg's own loaders, from answers in the binary format
  (cheaper to write and to load than text: a feed page's followee array alone is ~150 int8).
Parameters are ints, strs or None, sent as text: cast each placeholder in the SQL
(`%(ids)s::int8[]`), as the server cannot infer its type otherwise.
"""

from __future__ import annotations

import functools
import hashlib
import re
import select
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import psycopg
from django.conf import settings
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg import pq
from psycopg.adapt import Transformer
from psycopg.errors import error_from_result

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


@dataclass(frozen=True)
class _Statement:
    text: bytes  # with $1, $2... for the named placeholders, in order of first use
    names: tuple[str, ...]
    prepared_name: bytes


@functools.lru_cache(maxsize=256)
def _statement(sql: str) -> _Statement:
    names: list[str] = []

    def number(match: re.Match) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    text = _PLACEHOLDER.sub(number, sql).replace("%%", "%").encode()
    digest = hashlib.sha1(text, usedforsecurity=False).hexdigest()[:20]
    return _Statement(text, tuple(names), f"scatter_{digest}".encode())


# The statements prepared on each (psycopg) connection: a new connection starts with none.
_prepared: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _value(value: int | str | None) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"scatter takes int, str or None parameters, not {type(value).__name__}")
    text = str(value)
    if "\x00" in text:  # libpq would cut a text parameter there
        raise ValueError("a text parameter cannot hold a NUL character")
    return text.encode()


@dataclass
class _InFlight:
    alias: str
    wrapper: BaseDatabaseWrapper  # connections[alias], looked up once
    sql: str
    params: Mapping[str, int | str | None]
    connection: psycopg.Connection
    started: float
    prepared: bool


def _failure(result: pq.abc.PGresult, connection: psycopg.Connection) -> psycopg.Error:
    return error_from_result(result, encoding=connection.info.encoding)


def _begin(connection: psycopg.Connection) -> None:
    """Open the transaction an atomic block expects, with the connection's options, as psycopg
    does before a cursor's first query (libpq's blocking call: it is answered before the query
    is sent)."""
    command = [b"BEGIN"]
    if connection.isolation_level is not None:
        level = psycopg.IsolationLevel(connection.isolation_level).name.replace("_", " ")
        command.append(b"ISOLATION LEVEL " + level.encode())
    if connection.read_only is not None:
        command.append(b"READ ONLY" if connection.read_only else b"READ WRITE")
    if connection.deferrable is not None:
        command.append(b"DEFERRABLE" if connection.deferrable else b"NOT DEFERRABLE")
    result = connection.pgconn.exec_(b" ".join(command))
    if result.status != pq.ExecStatus.COMMAND_OK:
        raise _failure(result, connection)


def _sqlstate(result: pq.abc.PGresult) -> bytes | None:
    return result.error_field(pq.DiagnosticField.SQLSTATE)


def _abandon(alias: str) -> None:
    """A query whose answer cannot be read to the end (the connection broke, or the read was
    interrupted): close the connection, so nothing later meets its unread answer."""
    connections[alias].close()


def _send(alias: str, sql: str, params: Mapping[str, int | str | None]) -> _InFlight:
    wrapper = connections[alias]
    wrapper.validate_thread_sharing()
    wrapper.close_if_health_check_failed()
    wrapper.ensure_connection()
    wrapper.validate_no_broken_transaction()
    _run_execute_wrappers(wrapper, sql, params)
    connection = wrapper.connection
    pgconn = connection.pgconn
    statement = _statement(sql)
    values = [_value(params[name]) for name in statement.names]
    prepare = bool(settings.DB_PREPARE_THRESHOLD) and connection.autocommit
    with wrapper.wrap_database_errors:
        if not connection.autocommit and pgconn.transaction_status == pq.TransactionStatus.IDLE:
            _begin(connection)
        if prepare:
            prepared = _prepared.setdefault(connection, set())
            if statement.prepared_name not in prepared:
                result = pgconn.prepare(statement.prepared_name, statement.text)
                # "already exists": prepared by an earlier call that was interrupted before it
                # could note it here
                if result.status != pq.ExecStatus.COMMAND_OK and _sqlstate(result) != b"42P05":
                    raise _failure(result, connection)
                prepared.add(statement.prepared_name)
            pgconn.send_query_prepared(statement.prepared_name, values, result_format=1)
        else:
            pgconn.send_query_params(statement.text, values, result_format=1)
        try:
            _flush(pgconn)
        except BaseException:
            _abandon(alias)
            raise
    return _InFlight(alias, wrapper, sql, params, connection, time.monotonic(), prepare)


def _wait(pgconn: pq.abc.PGconn, event: int) -> None:
    """Until the connection's socket is ready (poll: one system call, no descriptor limit)."""
    poller = select.poll()
    poller.register(pgconn.socket, event)
    poller.poll()


def _flush(pgconn: pq.abc.PGconn) -> None:
    """The connection is non-blocking: write out what libpq buffered, waiting as needed."""
    while pgconn.flush() == 1:
        _wait(pgconn, select.POLLOUT)


def _run_execute_wrappers(wrapper, sql: str, params) -> None:
    """What `connection.execute_wrapper` installed (the shard guard) sees every query; the
    innermost call, which would run it, does nothing here."""
    if not wrapper.execute_wrappers:
        return

    def nothing(*args) -> None:
        return None

    executor = nothing
    for wrap in reversed(wrapper.execute_wrappers):
        executor = functools.partial(wrap, executor)
    executor(sql, params, False, {"connection": wrapper, "cursor": None})


def _gather(flight: _InFlight) -> tuple[pq.abc.PGresult | None, list[tuple]]:
    """Every result of one query (waiting for the socket as needed), read to the end before any
    is loaded: its rows, or the failed result to raise once the other queries are read too."""
    pgconn = flight.connection.pgconn
    try:
        with flight.wrapper.wrap_database_errors:
            pgconn.consume_input()
            while pgconn.is_busy():
                _wait(pgconn, select.POLLIN)
                pgconn.consume_input()
            results = []
            while (result := pgconn.get_result()) is not None:
                results.append(result)
    except BaseException:
        _abandon(flight.alias)
        raise
    failed, rows = None, []
    for result in results:
        if result.status == pq.ExecStatus.TUPLES_OK:
            loader = Transformer.from_context(flight.connection)
            loader.set_pgresult(result)
            with flight.wrapper.wrap_database_errors:
                rows = loader.load_rows(0, result.ntuples, tuple)
        elif failed is None:
            failed = result
    return failed, rows


def _missing_statement(result: pq.abc.PGresult) -> bool:
    return _sqlstate(result) == b"26000"  # invalid statement name


def scatter(queries: Sequence[tuple[str, str, Mapping[str, int | str | None]]]) -> list[list]:
    """Run each (database alias, SQL with %(name)s placeholders, parameters) at once; returns
    each one's rows, in the order given. At most one query per database."""
    aliases = [alias for alias, _, _ in queries]
    if len(set(aliases)) != len(aliases):
        raise ValueError("scatter runs at most one query per database")
    in_flight: list[_InFlight] = []
    gathered: list[tuple[pq.abc.PGresult | None, list[tuple]]] = []
    try:
        for alias, sql, params in queries:
            in_flight.append(_send(alias, sql, params))
    finally:
        # Every query sent is read to the end (or its connection closed), whatever happens.
        unread: BaseException | None = None
        for flight in in_flight:
            try:
                gathered.append(_gather(flight))
            except BaseException as error:  # raised below, once every query is read
                unread = unread or error
                gathered.append((None, []))
        if unread is not None:
            raise unread
    answers, failures = [], []
    for flight, (failed, rows) in zip(in_flight, gathered, strict=True):
        if failed is not None and flight.prepared and _missing_statement(failed):
            _prepared.pop(flight.connection, None)  # psycopg deallocated them all (a rollback)
            failed, rows = _gather(_send(flight.alias, flight.sql, flight.params))
        wrapper = flight.wrapper
        if wrapper.queries_logged:
            wrapper.queries_log.append(
                {
                    "sql": f"{flight.sql} -- {dict(flight.params)}",
                    "time": f"{time.monotonic() - flight.started:.3f}",
                }
            )
        if failed is not None:
            failures.append((wrapper, _failure(failed, flight.connection)))
        answers.append(rows)
    for wrapper, _ in failures[1:]:
        wrapper.errors_occurred = True  # as raising its error through the wrapper would have
    if failures:
        wrapper, failure = failures[0]
        with wrapper.wrap_database_errors:
            raise failure
    return answers
