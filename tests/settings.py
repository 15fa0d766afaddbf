"""Test settings: the real settings with testing on and Redis on databases of their own."""

import os
from urllib.parse import urlsplit, urlunsplit

os.environ.setdefault("INSTAGRAM_TESTING", "1")


def _redis_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{db}")) if parts.scheme.startswith("redis") else url


# Keep test keys away from a developer's data on a shared Redis.
os.environ["REDIS_URL"] = _redis_db(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), 15)
os.environ["CELERY_BROKER_URL"] = _redis_db(
    os.environ.get("CELERY_BROKER_URL") or os.environ["REDIS_URL"], 14
)

from instagram.settings import *  # noqa: E402,F403

MEDIA_VIEW_SAMPLE = 1  # every answer counts its media's views: exact counts in the tests
