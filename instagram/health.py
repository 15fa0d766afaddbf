"""Liveness, readiness and metrics endpoints for load balancers and Prometheus."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from django.conf import settings
from django.db import connections
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from kombu import Connection

from instagram.observability import metrics_payload
from instagram.redis import get_redis


def _check_database(alias: str) -> None:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_redis() -> None:
    get_redis().ping()


def _check_broker() -> None:
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=2) as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


def readiness() -> dict[str, str]:
    checks: dict[str, Callable[[], None]] = {
        f"database:{alias}": partial(_check_database, alias) for alias in settings.DATABASES
    }
    checks["redis"] = _check_redis
    checks["broker"] = _check_broker
    results = {}
    for name, check in checks.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # every failure is reported, none is fatal here
            results[name] = f"down: {type(exc).__name__}"
    return results


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
