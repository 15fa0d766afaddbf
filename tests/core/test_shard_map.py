"""The shard map the rows were placed by is recorded at the first migrate_all; a configuration
that maps any logical shard elsewhere (a shard URL added without pinning SHARD_MAP, a changed
SHARD_COUNT) fails closed everywhere until the rows are moved and the new map recorded."""

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

from instagram.management.commands.migrate_all import Command as MigrateAll
from instagram.models import ShardMapRecord
from instagram.sharding import ShardMapChanged, alias_for_id, configured_shard_map

ALL = "__all__"
EVEN = "0-4095:shard_0,4096-8191:shard_1"
MOVED = "0-2047:shard_0,2048-8191:shard_1"
ID_IN_3000 = 3000 << 10  # an ID of logical shard 3000: shard_0 by EVEN, shard_1 by MOVED


@pytest.mark.django_db(databases=ALL)
def test_the_first_migrate_records_the_map_and_a_later_one_refuses_another(settings, capsys):
    MigrateAll()._shard_map_pin()
    settings.SHARD_MAP = MOVED

    with pytest.raises(CommandError) as refused:
        MigrateAll()._shard_map_pin()

    assert list(ShardMapRecord.objects.values_list("spec", flat=True)) == [EVEN]
    assert f"Set SHARD_MAP={EVEN}" in str(refused.value)


@pytest.mark.django_db(databases=ALL, transaction=True)  # /readyz checks on connections of its own
def test_a_process_under_another_map_routes_nothing_until_it_is_recorded(
    settings, client, capsys, redis_client
):
    ShardMapRecord.objects.create(spec=EVEN)
    settings.SHARD_MAP_CHECK = True
    assert alias_for_id(ID_IN_3000) == "shard_0"
    settings.SHARD_MAP = MOVED

    with pytest.raises(ShardMapChanged):
        alias_for_id(ID_IN_3000)
    ready = client.get("/readyz")
    with pytest.raises(CommandError):
        call_command("shard_map")
    call_command("shard_map", "--record")  # the rows of 2048-4095 were moved meanwhile

    assert (ready.status_code, ready.json()["checks"]["shard_map"]) == (
        503,
        "down: ShardMapChanged",
    )
    assert alias_for_id(ID_IN_3000) == "shard_1"
    assert list(ShardMapRecord.objects.order_by("id").values_list("spec", flat=True)) == [
        EVEN,
        MOVED,
    ]
    assert client.get("/readyz").json()["checks"]["shard_map"] == "ok"
    assert configured_shard_map().spec() == MOVED


@pytest.mark.parametrize("spec", ["garbage", "0-100:shard_0", "0-8191:shard_9"])
def test_a_shard_map_that_cannot_be_read_stops_the_process_at_start(settings, spec):
    settings.SHARD_MAP = spec

    with pytest.raises(ImproperlyConfigured) as refused:
        apps.get_app_config("instagram").ready()

    assert str(refused.value).startswith("SHARD_MAP: ")


@pytest.mark.parametrize(("broker", "refused"), [(None, True), ("redis://127.0.0.1:6379/1", False)])
def test_a_cluster_is_refused_as_the_celery_broker(broker, refused):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"}
    env.update(REDIS_URL="redis://127.0.0.1:6379/0", REDIS_CLUSTER="1", DEBUG="1")
    if broker:
        env["CELERY_BROKER_URL"] = broker
    loaded = subprocess.run(
        [sys.executable, "-c", "import instagram.settings"], env=env, capture_output=True,
        text=True, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )  # fmt: skip

    assert (loaded.returncode != 0) is refused
    assert ("set CELERY_BROKER_URL to a standalone Redis" in loaded.stderr) is refused


@pytest.mark.django_db(databases=ALL)
def test_an_upgrades_first_migrate_refuses_a_map_the_rows_were_not_placed_by(settings):
    from accounts.models import UserCounters

    UserCounters.objects.using("shard_0").create(user_id=ID_IN_3000)  # placed by EVEN
    settings.SHARD_MAP = MOVED

    with pytest.raises(CommandError) as refused:
        MigrateAll()._shard_map_pin()
    settings.SHARD_MAP = ""
    MigrateAll()._shard_map_pin()

    assert "routes elsewhere (shard_0: 1, at least)" in str(refused.value)
    assert list(ShardMapRecord.objects.values_list("spec", flat=True)) == [EVEN]


@pytest.mark.django_db(databases=ALL)
def test_a_process_that_routed_before_any_record_checks_again(settings, monkeypatch):
    from instagram import sharding

    settings.SHARD_MAP_CHECK = True
    settings.SHARD_MAP = MOVED
    assert alias_for_id(ID_IN_3000) == "shard_1"  # nothing recorded yet
    ShardMapRecord.objects.create(spec=EVEN)
    assert alias_for_id(ID_IN_3000) == "shard_1"  # until it looks again
    monkeypatch.setattr(sharding, "RECHECK", 0.0)

    with pytest.raises(ShardMapChanged):
        alias_for_id(ID_IN_3000)


@pytest.mark.django_db(databases=ALL)
def test_the_same_placement_written_in_more_ranges_is_the_same_map(settings, capsys):
    ShardMapRecord.objects.create(spec="0-4095:shard_0,4096-8191:shard_1")
    settings.SHARD_MAP_CHECK = True
    settings.SHARD_MAP = "0-2047:shard_0,2048-4095:shard_0,4096-8191:shard_1"

    assert alias_for_id(ID_IN_3000) == "shard_0"
    call_command("shard_map")
    assert capsys.readouterr().out == (
        "recorded:   0-4095:shard_0,4096-8191:shard_1\n"
        "configured: 0-4095:shard_0,4096-8191:shard_1\n"
    )


def test_migrate_all_on_databases_that_do_not_exist_yet_records_the_map():
    """A fresh install: the shard databases are made in the same run, before the map is
    checked against their rows and recorded."""
    import os
    import subprocess
    import sys
    import uuid
    from pathlib import Path
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    base = urlsplit(os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/x"))
    name = f"fresh_{uuid.uuid4().hex[:8]}"
    names = [name, f"{name}_shard_0", f"{name}_shard_1"]
    urls = [urlunsplit(base._replace(path=f"/{n}")) for n in names]
    env = {k: v for k, v in os.environ.items() if k != "INSTAGRAM_TESTING"}
    env.update(DEBUG="1", DATABASE_URL=urls[0], SHARD_DATABASE_URLS=",".join(urls[1:]))
    try:
        ran = subprocess.run(
            [sys.executable, "manage.py", "migrate_all", "--noinput"], env=env,
            capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2],
        )  # fmt: skip
    finally:
        admin = urlunsplit(base._replace(path="/postgres"))
        with psycopg.connect(admin, autocommit=True) as conn:
            for n in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{n}"')

    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "Recorded the shard map 0-4095:shard_0,4096-8191:shard_1\n" in ran.stdout
