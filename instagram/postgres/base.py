"""Django's PostgreSQL backend with a connection health check that costs no round trip.

Django checks a persistent connection at the start of each request with `SELECT 1`: one round
trip per database a request touches. Here a connection outside any transaction, with nothing to
read, that passed a full check in the last VERIFIED_FOR seconds is taken as healthy. Any other
(the server closed it or sent a notice while it was idle, it is inside a transaction, perhaps a
failed one, or it has not been verified lately) gets Django's full check, so a dead connection
is still replaced before a request uses it, and a busy one is verified every VERIFIED_FOR
seconds rather than on every request.
"""

from __future__ import annotations

import select
import time

from django.db.backends.postgresql import base
from psycopg.pq import TransactionStatus

VERIFIED_FOR = 30.0


class DatabaseWrapper(base.DatabaseWrapper):
    verified_at = 0.0

    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        self.verified_at = time.monotonic()
        return connection

    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        fresh = time.monotonic() - self.verified_at < VERIFIED_FOR
        if fresh and connection.info.transaction_status == TransactionStatus.IDLE:
            try:
                poller = select.poll()
                poller.register(connection.fileno(), select.POLLIN)
                if not poller.poll(0):
                    return True
            except (OSError, ValueError):
                return False
        usable = super().is_usable()
        if usable:
            self.verified_at = time.monotonic()
        return usable
