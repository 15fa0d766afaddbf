from pathlib import Path
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_stack_names_every_service_and_setting():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]

    assert set(services) == {
        "postgres",
        "redis",
        "minio",
        "minio-setup",
        "mosquitto",
        "migrate",
        "web",
        "worker",
        "beat",
    }
    env = services["web"]["environment"]
    assert services["worker"]["environment"] == env == services["beat"]["environment"]
    for name in (
        "DATABASE_URL",
        "SHARD_DATABASE_URLS",
        "REDIS_URL",
        "CELERY_BROKER_URL",
        "MQTT_URL",
        "SECRET_KEY",
        "ALLOWED_HOSTS",
        "STORAGE_BACKEND",
    ):
        assert env[name], name
    shard_dbs = [urlsplit(url).path.lstrip("/") for url in env["SHARD_DATABASE_URLS"].split(",")]
    init_sql = (ROOT / "deploy" / "postgres-init.sql").read_text()
    assert shard_dbs == ["instagram_shard_0", "instagram_shard_1"]
    assert all(f"CREATE DATABASE {name};" in init_sql for name in shard_dbs)
    assert services["migrate"]["command"] == ["python", "manage.py", "migrate_all", "--noinput"]
