"""Liveness, readiness and metrics endpoints for load balancers and Prometheus."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from functools import partial

from django.conf import settings
from django.db import connections
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from kombu import Connection

from instagram.observability import metrics_payload
from instagram.redis import get_redis
from instagram.sharding import configured_shard_map, shard_map_verify


def _check_database(alias: str) -> None:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_shard_map() -> None:
    if settings.SHARD_MAP_CHECK:
        shard_map_verify(configured_shard_map())


def _check_redis() -> None:
    get_redis().ping()


def _check_broker() -> None:
    with Connection(
        settings.CELERY_BROKER_URL,
        connect_timeout=2,
        transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
    ) as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


READINESS_SECONDS = 5.0  # a check still running then is reported down


def readiness() -> dict[str, str]:
    """Every check at once, each on a thread (and connections) of its own, reported within
    READINESS_SECONDS: a service that accepts connections and never answers is `down: timeout`
    rather than a probe that hangs."""
    checks: dict[str, Callable[[], None]] = {
        f"database:{alias}": partial(_check_database, alias) for alias in settings.DATABASES
    }
    checks["shard_map"] = _check_shard_map
    checks["redis"] = _check_redis
    checks["broker"] = _check_broker
    pool = ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="readyz")
    futures = {name: pool.submit(_on_own_connections, check) for name, check in checks.items()}
    wait(futures.values(), timeout=READINESS_SECONDS)
    pool.shutdown(wait=False)  # one still stuck ends with its own timeouts
    results = {}
    for name, future in futures.items():
        if not future.done():
            results[name] = "down: timeout"
        elif (exc := future.exception()) is not None:  # reported, none is fatal here
            results[name] = f"down: {type(exc).__name__}"
        else:
            results[name] = "ok"
    return results


def _on_own_connections(check: Callable[[], None]) -> None:
    try:
        check()
    finally:
        connections.close_all()  # this thread's, opened by the check


@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request):
    results = readiness()
    down = sorted(name for name, state in results.items() if state != "ok")
    body = {"status": "ok" if not down else "unavailable", "checks": results, "down": down}
    return JsonResponse(body, status=200 if not down else 503)


@require_GET
def metrics(request):
    payload, content_type = metrics_payload()
    return HttpResponse(payload, content_type=content_type)
