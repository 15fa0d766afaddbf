"""The one way work that leaves the process is scheduled: after the transaction commits."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction

logger = logging.getLogger(__name__)


def after_commit(func: Callable[[], object], *, using: str) -> None:
    """Run `func` once the transaction on `using` commits (at once outside a transaction).

    A failure is logged, never raised into the request: whatever it carried is either
    recoverable from the database (the outbox sweep, timeline regeneration) or best effort.
    """
    transaction.on_commit(func, using=using, robust=True)
