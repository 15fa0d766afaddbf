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


def test_the_compose_bucket_lets_anyone_read_every_variant_and_metadata_but_no_original():
    import json
    import re

    from media.processing import POST_VARIANTS, PROFILE_VARIANTS

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    setup = compose["services"]["minio-setup"]
    assert "./deploy/minio-public-media.json:/policy.json:ro" in setup["volumes"]
    assert "mc anonymous set-json /policy.json local/instagram-media" in setup["entrypoint"]
    policy = json.loads((ROOT / "deploy" / "minio-public-media.json").read_text())
    [statement] = policy["Statement"]
    assert (statement["Effect"], statement["Action"]) == ("Allow", ["s3:GetObject"])
    patterns = [re.compile(re.escape(r).replace(r"\*", "[^ ]*")) for r in statement["Resource"]]

    def readable(name: str) -> bool:
        return any(p.fullmatch(f"arn:aws:s3:::instagram-media/{name}") for p in patterns)

    for variant in {v.name for v in POST_VARIANTS + PROFILE_VARIANTS}:
        assert readable(f"12/34/{variant}.jpg"), variant
    assert readable("12/34/metadata.json")
    for ext in ("jpg", "png", "webp", "heic"):
        assert not readable(f"12/34/original.{ext}")
