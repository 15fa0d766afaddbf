"""Run in a separate process by the ID test: plain psycopg, no Django, so it spawns cleanly."""

import psycopg


def insert_notes(params: dict, owner_id: int, batches: int, queue) -> None:
    ids = []
    with psycopg.connect(**params, autocommit=True) as conn:
        for _ in range(batches):
            rows = conn.execute(
                "INSERT INTO shardapp_note (owner_id, text) "
                "SELECT %s, 'x' FROM generate_series(1, 500) RETURNING id",
                [owner_id],
            ).fetchall()
            ids.extend(row[0] for row in rows)
    queue.put(ids)
