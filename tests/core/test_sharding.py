import pytest
from django.db import connections, transaction

from accounts.models import User
from instagram.ids import compose_id
from instagram.sharding import (
    ShardMap,
    ShardRoutingError,
    alias_for_id,
    alias_for_logical_shard,
    group_by_alias,
    shard_aliases,
)
from tests.factories import id_on
from tests.shardapp.models import Note

ALL = "__all__"


def test_even_map_splits_8192_logical_shards_over_the_databases():
    shard_map = ShardMap.even(["shard_0", "shard_1", "shard_2"])

    assert shard_map.ranges == [
        (0, 2729, "shard_0"),
        (2730, 5459, "shard_1"),
        (5460, 8191, "shard_2"),
    ]
    assert shard_map.alias_for_logical(0) == "shard_0"
    assert shard_map.alias_for_logical(2730) == "shard_1"
    assert shard_map.alias_for_logical(8191) == "shard_2"


def test_parsed_map_moves_a_range_to_another_server():
    shard_map = ShardMap.parse("0-99:shard_0,100-199:shard_2,200-8191:shard_1")

    assert shard_map.alias_for_logical(99) == "shard_0"
    assert shard_map.alias_for_logical(150) == "shard_2"
    assert shard_map.alias_for_logical(200) == "shard_1"
    assert shard_map.logical_shards_of("shard_2") == [(100, 199)]


@pytest.mark.parametrize(
    "spec", ["0-4095:shard_0", "0-4095:shard_0,4097-8191:shard_1", "1-8191:shard_0"]
)
def test_map_with_a_gap_is_refused(spec):
    with pytest.raises(ValueError, match="without gaps"):
        ShardMap.parse(spec)


def test_logical_shard_out_of_range_is_refused():
    with pytest.raises(ValueError, match="out of range"):
        alias_for_logical_shard(8192)


def test_configured_shards_and_id_routing():
    assert shard_aliases() == ["shard_0", "shard_1"]
    assert alias_for_id(compose_id(ms=1_700_000_000_000, logical_shard=4095)) == "shard_0"
    assert alias_for_id(compose_id(ms=1_700_000_000_000, logical_shard=4096)) == "shard_1"


def test_group_by_alias_gives_one_bucket_per_database():
    a, b, c = id_on("shard_0"), id_on("shard_1"), id_on("shard_0", sequence=5)

    assert group_by_alias([a, b, c]) == {"shard_0": [a, c], "shard_1": [b]}


def _tables(alias: str) -> set[str]:
    with connections[alias].cursor() as cursor:
        return set(connections[alias].introspection.table_names(cursor))


@pytest.mark.django_db(databases=ALL)
def test_migrations_put_global_tables_on_default_and_sharded_tables_on_every_shard():
    default, shard_0, shard_1 = _tables("default"), _tables("shard_0"), _tables("shard_1")

    sharded = {"instagram_outboxevent", "shardapp_note", "shardapp_notecopy"}
    assert sharded <= shard_0
    assert shard_0 == shard_1
    assert not sharded & default
    assert {"accounts_user", "django_session", "shardapp_handlerswitch"} <= default
    assert not {"accounts_user", "django_session"} & shard_0


@pytest.mark.django_db(databases=ALL)
def test_every_sharded_table_keyed_by_a_sharded_id_has_its_trigger_on_every_shard():
    from django.apps import apps

    from instagram.ids import ShardedIDField
    from instagram.sharding import is_sharded

    expected = sorted(
        f"{model._meta.db_table}_assign_id_trg"
        for model in apps.get_models()
        if is_sharded(model) and isinstance(model._meta.pk, ShardedIDField)
    )
    for alias in ("shard_0", "shard_1"):
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1")
            triggers = [row[0] for row in cursor.fetchall()]
        assert triggers == expected
    assert "instagram_outboxevent_assign_id_trg" in expected
    assert "shardapp_note_assign_id_trg" in expected


@pytest.mark.django_db(databases=ALL)
def test_global_tables_keyed_by_a_sharded_id_have_their_trigger_on_default():
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1")
        triggers = [row[0] for row in cursor.fetchall()]

    assert triggers == ["accounts_user_assign_id_trg"]


@pytest.mark.django_db(databases=ALL)
def test_sharded_model_without_an_alias_is_an_error():
    with pytest.raises(ShardRoutingError, match=r"query it with \.using"):
        Note.objects.count()


@pytest.mark.django_db(databases=ALL)
def test_new_row_without_alias_goes_to_its_partition_keys_shard():
    owner = id_on("shard_1")

    note = Note(owner_id=owner, text="routed")
    note.save()

    assert note._state.db == "shard_1"
    assert Note.objects.using("shard_1").filter(id=note.id).exists()


@pytest.mark.django_db(databases=ALL)
def test_row_written_to_the_wrong_shard_is_refused_and_nothing_is_written():
    owner = id_on("shard_0")

    with pytest.raises(ShardRoutingError, match="belongs on shard_0, not shard_1"):
        Note.objects.using("shard_1").create(owner_id=owner, text="misplaced")

    assert Note.objects.using("shard_1").count() == 0
    assert Note.objects.using("shard_0").count() == 0


@pytest.mark.django_db(databases=ALL)
def test_global_table_on_a_shard_and_sharded_table_on_default_are_refused():
    with pytest.raises(ShardRoutingError, match="\"accounts_user\" used on database 'shard_0'"):
        User.objects.using("shard_0").count()
    with pytest.raises(ShardRoutingError, match="\"shardapp_note\" used on database 'default'"):
        Note.objects.using("default").count()
    with pytest.raises(ShardRoutingError, match="User is global"):
        User(username="elsewhere").save(using="shard_1")


@pytest.mark.django_db(databases=ALL)
def test_relation_across_databases_is_refused():
    user = User.objects.create(username="global")
    note = Note.objects.using("shard_0").create(owner_id=id_on("shard_0"), text="x")

    from django.db import router

    assert router.allow_relation(user, note) is False
    with transaction.atomic(using="shard_0"):
        assert router.allow_relation(note, note) is True
