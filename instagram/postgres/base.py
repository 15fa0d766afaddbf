"""Django's PostgreSQL backend with a connection health check that costs no round trip.

Django checks a persistent connection at the start of each request with `SELECT 1`: one round
trip per database a request touches. Here a connection outside any transaction with nothing to
read is taken as healthy; any other (the server closed it or sent a notice while it was idle,
or it is inside a transaction, perhaps a failed one) gets Django's full check, so a dead
connection is still replaced before a request uses it.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base
from psycopg.pq import TransactionStatus


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        if connection.info.transaction_status != TransactionStatus.IDLE:
            return super().is_usable()
        try:
            poller = select.poll()
            poller.register(connection.fileno(), select.POLLIN)
            idle = not poller.poll(0)
        except (OSError, ValueError):
            return False
        return idle or super().is_usable()
