import io
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.http import Http404
from django.test import RequestFactory
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.exceptions import PermissionDenied, Throttled

from instagram import errors
from instagram.errors import ApiError
from instagram.observability import RequestIdFilter, request_id_var
from instagram.redis import _client

ALL = "__all__"
ROOT = Path(__file__).resolve().parents[2]


class _Echo(serializers.Serializer):
    caption = serializers.CharField(max_length=10)


@api_view(["POST"])
def _validating_view(request):
    _Echo(data=request.data).is_valid(raise_exception=True)
    return None


@api_view(["GET"])
def _raising_view(request, kind):
    raise {
        "api": ApiError(429, "rate_limited", "Slow down.", retry_after=30),
        "forbidden": PermissionDenied(),
        "missing": Http404("gone"),
        "throttled": Throttled(wait=12),
    }[kind]


@pytest.mark.parametrize(
    ("kind", "status", "code", "message", "retry_after"),
    [
        ("api", 429, "rate_limited", "Slow down.", "30"),
        (
            "forbidden",
            403,
            "permission_denied",
            "You do not have permission to perform this action.",
            None,
        ),
        ("missing", 404, "not_found", "Not found.", None),
        (
            "throttled",
            429,
            "rate_limited",
            "Request was throttled. Expected available in 12 seconds.",
            "12",
        ),
    ],
)
def test_every_api_error_uses_the_envelope(kind, status, code, message, retry_after):
    response = _raising_view(RequestFactory().get("/api/v1/x"), kind=kind)

    assert response.status_code == status
    assert response.data == {"error": {"code": code, "message": message}}
    assert response.get("Retry-After") == retry_after


def test_validation_error_names_the_field_in_the_envelope():
    request = RequestFactory().post(
        "/api/v1/x", data={"caption": "x" * 11}, content_type="application/json"
    )

    response = _validating_view(request)

    assert response.status_code == 400
    assert response.data["error"]["code"] == "invalid"
    assert response.data["error"]["message"] == (
        "caption: Ensure this field has no more than 10 characters."
    )


def test_malformed_json_body_is_a_400_in_the_envelope():
    request = RequestFactory().post("/api/v1/x", data=b"{nope", content_type="application/json")

    response = _validating_view(request)

    assert response.status_code == 400
    assert response.data["error"]["code"] == "parse_error"
    assert response.data["error"]["message"].startswith("JSON parse error")


def test_unknown_api_path_is_a_json_404(client):
    response = client.get("/api/v1/no/such/thing")

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Not found."}}


def test_server_error_under_api_is_json():
    response = errors.handler500(RequestFactory().get("/api/v1/posts"))

    assert response.status_code == 500
    assert response.content == (
        b'{"error": {"code": "server_error", "message": "Internal server error."}}'
    )


def test_healthz(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db(databases=ALL)
def test_readyz_checks_every_database_redis_and_the_broker(client):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {
            "database:default": "ok",
            "database:shard_0": "ok",
            "database:shard_1": "ok",
            "shard_map": "ok",
            "redis": "ok",
            "broker": "ok",
        },
        "down": [],
    }


@pytest.mark.django_db(databases=ALL)
def test_readyz_is_503_naming_what_is_down(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/1"
    _client.cache_clear()
    try:
        response = client.get("/readyz")
    finally:
        _client.cache_clear()

    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "unavailable"
    assert body["down"] == ["broker", "redis"]
    assert body["checks"]["database:shard_1"] == "ok"
    assert body["checks"]["redis"] == "down: ConnectionError"


def test_metrics_count_requests_by_route(client):
    client.get("/healthz")

    response = client.get("/metrics")

    text = response.content.decode()
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert 'http_requests_total{method="GET",route="healthz",status="200"}' in text
    assert "http_request_duration_seconds_bucket" in text


def test_request_id_is_echoed_or_made(client):
    given = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    made = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})

    assert given["X-Request-ID"] == "abc-123"
    assert len(made["X-Request-ID"]) == 32
    assert made["X-Request-ID"] != "bad id with spaces"


def test_log_records_carry_the_request_id():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    token = request_id_var.set("req-42")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id_var.reset(token)

    assert record.request_id == "req-42"


def test_openapi_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/", headers={"Accept": "application/vnd.oai.openapi+json"})
    docs = client.get("/api/docs/")

    assert schema.status_code == 200
    assert schema.json()["openapi"].startswith("3.")
    assert schema.json()["info"]["title"] == "Instagram API"
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content


def test_production_settings_pass_the_deploy_check():
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("INSTAGRAM_TESTING", "DEBUG", "DJANGO_SETTINGS_MODULE")
    }
    env.update(
        SECRET_KEY="k" * 24 + "-production-secret-key-0123456789-abcdefghij",
        ALLOWED_HOSTS="photos.example.com",
        DEBUG="0",
        DJANGO_SETTINGS_MODULE="instagram.settings",
    )

    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_production_settings_refuse_to_start_without_a_secret_key():
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("INSTAGRAM_TESTING", "DEBUG", "SECRET_KEY", "DJANGO_SETTINGS_MODULE")
    }
    env["DJANGO_SETTINGS_MODULE"] = "instagram.settings"

    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


@pytest.mark.django_db(databases=ALL)
def test_readyz_answers_in_time_when_the_broker_accepts_and_never_replies(
    client, settings, silent_redis, monkeypatch
):
    from instagram import health

    monkeypatch.setattr(health, "READINESS_SECONDS", 1.0)
    settings.CELERY_BROKER_URL = settings.REDIS_URL  # the silent server
    _client.cache_clear()
    started = time.monotonic()
    try:
        response = client.get("/readyz")
    finally:
        _client.cache_clear()

    assert time.monotonic() - started < 3
    body = response.json()
    assert response.status_code == 503
    assert body["checks"]["broker"] == "down: timeout"
    assert body["checks"]["database:shard_0"] == "ok"
    assert body["down"] == ["broker", "redis"]
    assert len(silent_redis) >= 1  # it was reached, and it said nothing


@pytest.mark.django_db(databases=ALL)
@pytest.mark.parametrize(
    ("method", "path", "query", "content_type", "status"),
    [
        ("GET", "/healthz", "limit=5", "text/plain; charset=rot13", 415),
        (
            "POST",
            "/api/v1/accounts/login",
            "",
            "application/x-www-form-urlencoded; charset=hex",
            415,
        ),
        ("POST", "/api/v1/locations", "", 'multipart/form-data; boundary=B; charset="utf-7"', 415),
        ("GET", "/api/v1/locations", "q=%5Cud800", "text/plain; charset=unicode_escape", 415),
        ("GET", "/healthz", "", "text/plain; charset=UTF-8", 200),
        ("GET", "/healthz", "", "text/plain; charset=latin-1", 200),
        ("GET", "/healthz", "", "text/plain; charset=no-such-codec", 200),
    ],
)
def test_the_server_entry_refuses_a_charset_it_must_not_decode_with(
    method, path, query, content_type, status
):
    from instagram.wsgi import application

    answered: list[str] = []
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": "0",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "HTTP_HOST": "localhost",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
        "REMOTE_ADDR": "127.0.0.1",
    }
    body = b"".join(application(environ, lambda s, headers, *rest: answered.append(s)))

    assert int(answered[0].split()[0]) == status
    if status == 415:
        assert json.loads(body) == {
            "error": {"code": "unsupported_media_type", "message": "Send UTF-8 (or no charset)."}
        }


def _wsgi(method: str, path: str, headers: dict, body: bytes = b"") -> tuple[int, bytes]:
    from instagram.wsgi import application

    answered: list[str] = []
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "HTTP_HOST": "localhost",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "REMOTE_ADDR": "127.0.0.1",
        **headers,
    }
    answer = b"".join(application(environ, lambda s, h, *rest: answered.append(s)))
    return int(answered[0].split()[0]), answer


@pytest.mark.django_db(databases=ALL)
@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"CONTENT_TYPE": "application/json", "CONTENT_LENGTH": "2621441"}, 413,
         "payload_too_large"),
        ({"CONTENT_TYPE": "application/x-www-form-urlencoded", "CONTENT_LENGTH": "30000000"}, 413,
         "payload_too_large"),
        ({"CONTENT_TYPE": "multipart/form-data; boundary=B", "CONTENT_LENGTH": "40000000"}, 413,
         "payload_too_large"),
        ({"CONTENT_TYPE": "multipart/form-data; boundary=B", "CONTENT_LENGTH": "3000000"}, 413,
         "payload_too_large"),  # a file's allowance only where files go
        ({"CONTENT_TYPE": "application/json", "CONTENT_LENGTH": "\u00b2"}, 413,
         "payload_too_large"),
        ({"CONTENT_TYPE": "application/json", "HTTP_TRANSFER_ENCODING": "chunked"}, 411,
         "length_required"),
        ({"CONTENT_TYPE": "application/json", "CONTENT_LENGTH": "2"}, 401, "not_authenticated"),
    ],
)  # fmt: skip
def test_the_server_entry_refuses_a_body_too_long_or_without_a_length(
    headers, status, code, redis_client
):
    answered, body = _wsgi("POST", "/api/v1/locations", headers, b"{}")

    assert (answered, json.loads(body)["error"]["code"]) == (status, code)


@pytest.mark.django_db(databases=ALL)
def test_a_multipart_upload_up_to_the_file_limit_is_let_through(redis_client, settings):
    length = settings.MEDIA_MAX_UPLOAD_BYTES + 1000
    headers = {"CONTENT_TYPE": "multipart/form-data; boundary=B", "CONTENT_LENGTH": str(length)}

    answered, body = _wsgi("POST", "/api/v1/media/upload", headers)

    assert (answered, json.loads(body)["error"]["code"]) == (401, "not_authenticated")


@pytest.mark.django_db(databases=ALL)
def test_an_unsafe_method_on_no_endpoint_is_a_json_404_and_csrf_failures_are_json(
    make_user, redis_client
):
    from django.test import Client, RequestFactory

    from instagram.errors import csrf_failure

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(make_user("ann"))

    missing = [browser.post("/api/v1/posts/"), browser.delete("/api/v1/stories/1")]
    factory = RequestFactory()
    api_refused = csrf_failure(factory.post("/api/v1/anything"), reason="no token")
    admin_refused = csrf_failure(factory.post("/admin/login/"), reason="no token")

    assert [(r.status_code, r.json()["error"]["code"]) for r in missing] == [
        (404, "not_found"),
        (404, "not_found"),
    ]
    assert api_refused.status_code == admin_refused.status_code == 403
    assert json.loads(api_refused.content)["error"]["code"] == "csrf_failed"
    assert admin_refused["Content-Type"].startswith("text/html")


@pytest.mark.django_db(databases=ALL)
@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"CONTENT_TYPE": "application/json", "CONTENT_LENGTH": "30000000"}, b"413"),
        ({"CONTENT_TYPE": "application/json", "HTTP_TRANSFER_ENCODING": "chunked"}, b"411"),
    ],
)
def test_the_entrys_refusals_are_valid_wsgi_answers(headers, status, redis_client):
    """Served by wsgiref (which `runserver` is built on), which checks what an application
    may send: no hop-by-hop header."""
    from wsgiref.handlers import SimpleHandler

    from instagram.wsgi import application

    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/api/v1/locations", "QUERY_STRING": "",
        "SERVER_NAME": "localhost", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "localhost", "REMOTE_ADDR": "127.0.0.1", **headers,
    }  # fmt: skip
    out, errors = io.BytesIO(), io.StringIO()
    SimpleHandler(io.BytesIO(b"{}"), out, errors, environ).run(application)

    head, _, body = out.getvalue().partition(b"\r\n\r\n")
    assert (head.split(b"\r\n")[0].split()[1], errors.getvalue()) == (status, "")
    assert json.loads(body)["error"]["code"] in ("payload_too_large", "length_required")


@pytest.mark.parametrize(
    ("accept", "query"),
    [
        (None, ""),
        ("*/*", ""),
        ("application/json", ""),
        ("application/json; indent=4", ""),
        ("text/html, application/json;q=0.9", ""),
        ("application/*", ""),
        ("*/*", "format=json"),
    ],
)
def test_content_negotiation_chooses_as_drf_does(accept, query):
    from rest_framework.negotiation import DefaultContentNegotiation
    from rest_framework.request import Request

    from instagram.renderers import ContentNegotiation, ORJSONRenderer

    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(RequestFactory().get(f"/api/v1/feed?{query}", **headers))
    renderers = [ORJSONRenderer()]

    chosen = ContentNegotiation().select_renderer(request, renderers)

    assert chosen == DefaultContentNegotiation().select_renderer(request, renderers)
    assert chosen[0] is renderers[0]


@pytest.mark.parametrize(
    ("accept", "query", "status", "body"),
    [
        (
            "text/html",
            "",
            406,
            {"code": "not_acceptable", "message": "Could not satisfy the request Accept header."},
        ),
        ("*/*", "format=xml", 404, {"code": "not_found", "message": "Not found."}),
    ],
)
def test_an_api_call_asking_for_what_it_cannot_render_is_refused_in_the_envelope(
    client, accept, query, status, body, redis_client
):
    response = client.get(f"/api/v1/accounts/me?{query}", HTTP_ACCEPT=accept)

    assert response.status_code == status
    assert response.json() == {"error": body}
