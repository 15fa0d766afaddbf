"""ID generation rate on one shard: INSERT rows/s with `next_id` vs `bigserial`, in one run.

    make bench            (or: python -m instagram.devstack exec -- python bench/ids.py)

Three tables on shard_0: a bigserial key (the baseline), a key defaulting to next_id(n), and a
key set by the per-table trigger the project uses (shard taken from the partition column).
Each is filled by server-side batches (INSERT ... SELECT generate_series) and by single-row
INSERTs from the client; the figures and the ratios to bigserial are printed.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "instagram.settings")
os.environ.setdefault("DEBUG", "1")

import django

django.setup()

import psycopg  # noqa: E402
from django.db import connections  # noqa: E402

from instagram.ids import shard_of_id_sql  # noqa: E402

BULK_ROWS = int(os.environ.get("BENCH_BULK_ROWS", "200000"))
SINGLE_ROWS = int(os.environ.get("BENCH_SINGLE_ROWS", "5000"))
BATCH = 10000
OWNER = 5 << 10  # an ID on logical shard 5

TABLES = {
    "bigserial": "CREATE UNLOGGED TABLE bench_serial (id bigserial PRIMARY KEY, owner_id bigint)",
    "next_id default": (
        "CREATE UNLOGGED TABLE bench_default (id bigint PRIMARY KEY DEFAULT next_id(5), "
        "owner_id bigint)"
    ),
    "next_id trigger": f"""
        CREATE UNLOGGED TABLE bench_trigger (id bigint PRIMARY KEY, owner_id bigint);
        CREATE FUNCTION bench_trigger_assign_id() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.id IS NULL THEN NEW.id := next_id({shard_of_id_sql("owner_id")}); END IF;
            RETURN NEW;
        END; $$;
        CREATE TRIGGER bench_trigger_assign_id_trg BEFORE INSERT ON bench_trigger
            FOR EACH ROW EXECUTE FUNCTION bench_trigger_assign_id();
    """,
}
NAMES = {
    "bigserial": "bench_serial",
    "next_id default": "bench_default",
    "next_id trigger": "bench_trigger",
}


def connect() -> psycopg.Connection:
    params = connections["shard_0"].get_connection_params()
    params = {k: v for k, v in params.items() if k not in ("cursor_factory", "context")}
    return psycopg.connect(**params, autocommit=True)


def drop(conn) -> None:
    conn.execute(
        "DROP TABLE IF EXISTS bench_serial, bench_default, bench_trigger;"
        "DROP FUNCTION IF EXISTS bench_trigger_assign_id();"
    )


def bulk_rate(conn, table: str) -> float:
    started = time.perf_counter()
    for _ in range(BULK_ROWS // BATCH):
        conn.execute(
            f"INSERT INTO {table} (owner_id) SELECT %s FROM generate_series(1, %s)",
            [OWNER, BATCH],
        )
    return BULK_ROWS / (time.perf_counter() - started)


def single_rate(conn, table: str) -> float:
    started = time.perf_counter()
    with conn.cursor() as cursor:
        for _ in range(SINGLE_ROWS):
            cursor.execute(f"INSERT INTO {table} (owner_id) VALUES (%s) RETURNING id", [OWNER])
            cursor.fetchone()
    return SINGLE_ROWS / (time.perf_counter() - started)


def main() -> None:
    with connect() as conn:
        drop(conn)
        for ddl in TABLES.values():
            conn.execute(ddl)
        try:
            results = {}
            for label, table in NAMES.items():
                single_rate(conn, table)  # warm-up: plan caches, function compile
                results[label] = (bulk_rate(conn, table), single_rate(conn, table))
            distinct = conn.execute(
                "SELECT count(*), count(DISTINCT id) FROM bench_trigger"
            ).fetchone()
        finally:
            drop(conn)

    base_bulk, base_single = results["bigserial"]
    print(
        f"ID generation on shard_0 ({BULK_ROWS} rows in batches of {BATCH}; "
        f"{SINGLE_ROWS} single-row INSERTs)"
    )
    print(
        f"{'key':<18}{'bulk rows/s':>14}{'vs bigserial':>14}{'single rows/s':>16}"
        f"{'vs bigserial':>14}"
    )
    for label, (bulk, single) in results.items():
        print(
            f"{label:<18}{bulk:>14,.0f}{bulk / base_bulk:>14.2f}{single:>16,.0f}"
            f"{single / base_single:>14.2f}"
        )
    print(f"trigger table: {distinct[0]} rows, {distinct[1]} distinct ids")


if __name__ == "__main__":
    main()
