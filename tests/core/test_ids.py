import datetime as dt
import multiprocessing
import time

import pytest
from django.db import connections

from accounts.models import User
from instagram.ids import (
    EPOCH_MS,
    LOGICAL_SHARDS,
    compose_id,
    created_at_of,
    logical_shard_of,
    sequence_of,
    timestamp_ms_of,
)
from instagram.sharding import alias_for_id
from tests.core.id_inserter import insert_notes
from tests.factories import id_on
from tests.shardapp.models import Note

ALL = "__all__"


def test_id_helpers_round_trip():
    ms = EPOCH_MS + 123_456_789
    id_value = compose_id(ms=ms, logical_shard=4242, sequence=1023)

    assert timestamp_ms_of(id_value) == ms
    assert logical_shard_of(id_value) == 4242
    assert sequence_of(id_value) == 1023
    assert created_at_of(id_value) == dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    assert id_value < 2**63


@pytest.mark.django_db(databases=ALL)
def test_next_id_encodes_shard_time_and_sequence():
    before = int(time.time() * 1000)
    with connections["shard_0"].cursor() as cursor:
        cursor.execute("SELECT next_id(4242), next_id(0), next_id(8191)")
        ids = cursor.fetchone()
    after = int(time.time() * 1000)

    assert [logical_shard_of(i) for i in ids] == [4242, 0, 8191]
    assert all(before - 5 <= timestamp_ms_of(i) <= after + 5 for i in ids)
    assert all(0 <= sequence_of(i) < 1024 for i in ids)


@pytest.mark.django_db(databases=ALL)
def test_next_id_refuses_a_shard_out_of_range():
    with pytest.raises(Exception, match="out of range"), connections["shard_0"].cursor() as cursor:
        cursor.execute("SELECT next_id(%s)", [LOGICAL_SHARDS])


@pytest.mark.django_db(databases=ALL)
def test_row_id_carries_the_partition_keys_shard_and_routes_to_its_database():
    owner_0, owner_1 = id_on("shard_0"), id_on("shard_1")

    note_0 = Note.objects.using("shard_0").create(owner_id=owner_0, text="a")
    note_1 = Note.objects.using("shard_1").create(owner_id=owner_1, text="b")

    assert logical_shard_of(note_0.id) == logical_shard_of(owner_0)
    assert logical_shard_of(note_1.id) == logical_shard_of(owner_1)
    assert alias_for_id(note_0.id) == "shard_0"
    assert alias_for_id(note_1.id) == "shard_1"
    assert list(Note.objects.using("shard_0").values_list("id", flat=True)) == [note_0.id]
    assert list(Note.objects.using("shard_1").values_list("id", flat=True)) == [note_1.id]


@pytest.mark.django_db(databases=ALL)
def test_ids_sort_by_creation_time():
    owner = id_on("shard_1")
    notes = []
    for index in range(5):
        notes.append(Note.objects.using("shard_1").create(owner_id=owner, text=str(index)))
        time.sleep(0.002)

    ids = [note.id for note in notes]
    assert ids == sorted(ids)
    assert [timestamp_ms_of(i) for i in ids] == sorted(timestamp_ms_of(i) for i in ids)


@pytest.mark.django_db(databases=ALL)
def test_users_get_ids_on_random_home_shards_spread_over_every_database():
    users = User.objects.bulk_create(User(username=f"spread{n}") for n in range(64))

    shards = {logical_shard_of(user.id) for user in users}
    aliases = {alias_for_id(user.id) for user in users}
    assert all(user.id is not None for user in users)
    assert len(shards) > 32  # 64 draws from 8192 shards: collisions are rare
    assert aliases == {"shard_0", "shard_1"}


@pytest.mark.django_db(databases=ALL, transaction=True)
def test_four_processes_inserting_on_one_shard_get_no_duplicate_id():
    params = connections["shard_0"].get_connection_params()
    params = {k: v for k, v in params.items() if k not in ("cursor_factory", "context")}
    owner = id_on("shard_0")
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [
        context.Process(target=insert_notes, args=(params, owner, 4, queue)) for _ in range(4)
    ]

    for worker in workers:
        worker.start()
    results = [queue.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)

    ids = [i for batch in results for i in batch]
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    assert len(ids) == 8000
    assert len(set(ids)) == 8000
    assert Note.objects.using("shard_0").count() == 8000
    assert {logical_shard_of(i) for i in ids} == {logical_shard_of(owner)}
    assert {alias_for_id(i) for i in ids} == {"shard_0"}
