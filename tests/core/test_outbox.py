import datetime as dt
import threading
import time

import pytest
from django.db import connections, transaction
from django.utils import timezone

from instagram.celery import app as celery_app
from instagram.models import OutboxEvent, OutboxStatus
from instagram.outbox import (
    OutboxError,
    ShardsUnavailable,
    outbox_enqueue,
    outbox_event_process,
    outbox_sweep,
)
from tests.factories import id_on
from tests.shardapp.handlers import NoteKind, apply_note_shared, note_share
from tests.shardapp.models import HandlerSwitch, Note, NoteCopy

ALL = "__all__"


def _later(seconds: float) -> dt.datetime:
    return timezone.now() + dt.timedelta(seconds=seconds)


@pytest.fixture
def owner_and_reader():
    return id_on("shard_0"), id_on("shard_1")


@pytest.mark.django_db(databases=ALL)
def test_enqueue_outside_a_transaction_is_refused(owner_and_reader):
    owner, _ = owner_and_reader

    with pytest.raises(OutboxError, match=r"inside transaction\.atomic"):
        outbox_enqueue(partition_id=owner, kind=NoteKind.NOTE_SHARED, payload={})

    assert OutboxEvent.objects.using("shard_0").count() == 0


@pytest.mark.django_db(databases=ALL)
def test_event_is_written_with_the_primary_row_and_relayed_only_after_commit(
    owner_and_reader, django_capture_on_commit_callbacks
):
    owner, reader = owner_and_reader

    with django_capture_on_commit_callbacks(using="shard_0") as callbacks:
        note = note_share(owner_id=owner, reader_id=reader, text="hello")

    event = OutboxEvent.objects.using("shard_0").get()
    assert len(callbacks) == 1
    assert event.partition_id == owner
    assert event.kind == "test.note_shared"
    assert event.payload == {"note_id": note.id, "reader_id": reader, "text": "hello"}
    assert event.status == OutboxStatus.PENDING
    assert NoteCopy.objects.using("shard_1").count() == 0


@pytest.mark.django_db(databases=ALL)
def test_rolled_back_primary_write_leaves_no_event(owner_and_reader):
    owner, reader = owner_and_reader

    with pytest.raises(RuntimeError), transaction.atomic(using="shard_0"):
        note_share(owner_id=owner, reader_id=reader, text="doomed")
        raise RuntimeError("crash before commit")

    assert OutboxEvent.objects.using("shard_0").count() == 0


@pytest.mark.django_db(databases=ALL)
def test_process_dies_before_the_relay_then_the_sweep_applies_the_other_side(
    owner_and_reader, django_capture_on_commit_callbacks
):
    owner, reader = owner_and_reader
    # Commit happens, the after-commit relay never runs: as if the process died right then.
    with django_capture_on_commit_callbacks(using="shard_0", execute=False):
        note = note_share(owner_id=owner, reader_id=reader, text="survives")

    assert outbox_sweep() == 0  # still inside the relay's grace period
    applied = outbox_sweep(now=_later(11))

    copy = NoteCopy.objects.using("shard_1").get()
    event = OutboxEvent.objects.using("shard_0").get()
    assert applied == 1
    assert (copy.reader_id, copy.note_id, copy.text) == (reader, note.id, "survives")
    assert event.status == OutboxStatus.DONE
    assert event.attempts == 1
    assert event.processed_at is not None


@pytest.mark.django_db(databases=ALL)
def test_relay_running_twice_applies_once(owner_and_reader, django_capture_on_commit_callbacks):
    owner, reader = owner_and_reader
    with django_capture_on_commit_callbacks(using="shard_0", execute=False):
        note_share(owner_id=owner, reader_id=reader, text="once")
    event = OutboxEvent.objects.using("shard_0").get()

    first = outbox_event_process(using="shard_0", event_id=event.id)
    second = outbox_event_process(using="shard_0", event_id=event.id)

    assert (first, second) == (True, False)
    assert NoteCopy.objects.using("shard_1").count() == 1
    assert OutboxEvent.objects.using("shard_0").get().attempts == 1


@pytest.mark.django_db(databases=ALL)
def test_handler_applied_again_after_a_crash_before_marking_done_duplicates_nothing(
    owner_and_reader,
):
    _, reader = owner_and_reader
    payload = {"note_id": 99, "reader_id": reader, "text": "again"}

    apply_note_shared(payload)
    apply_note_shared(payload)

    assert NoteCopy.objects.using("shard_1").count() == 1


@pytest.mark.django_db(databases=ALL)
def test_failing_relay_is_retried_later_with_backoff(
    owner_and_reader, django_capture_on_commit_callbacks
):
    owner, reader = owner_and_reader
    HandlerSwitch.objects.create(name="note", failures_left=2)
    with django_capture_on_commit_callbacks(using="shard_0", execute=False):
        note_share(owner_id=owner, reader_id=reader, text="eventually")
    event_id = OutboxEvent.objects.using("shard_0").get().id

    started = timezone.now()
    assert outbox_event_process(using="shard_0", event_id=event_id) is False
    event = OutboxEvent.objects.using("shard_0").get()
    assert (event.status, event.attempts) == (OutboxStatus.PENDING, 1)
    assert event.last_error == "ConnectionError: reader shard unavailable"
    assert 5 <= (event.available_at - started).total_seconds() < 6  # base backoff 5 s

    assert outbox_sweep(now=started + dt.timedelta(seconds=4)) == 0  # not due yet
    assert outbox_sweep(now=started + dt.timedelta(seconds=6)) == 0  # due, fails again
    event = OutboxEvent.objects.using("shard_0").get()
    assert event.attempts == 2
    assert 10 <= (event.available_at - started).total_seconds() < 17  # then 10 s

    assert outbox_sweep(now=started + dt.timedelta(seconds=30)) == 1
    event = OutboxEvent.objects.using("shard_0").get()
    assert (event.status, event.attempts) == (OutboxStatus.DONE, 3)
    assert NoteCopy.objects.using("shard_1").count() == 1


@pytest.mark.django_db(databases=ALL)
def test_event_that_keeps_failing_ends_dead_and_is_kept(
    owner_and_reader, settings, django_capture_on_commit_callbacks
):
    settings.OUTBOX_MAX_ATTEMPTS = 3
    owner, reader = owner_and_reader
    HandlerSwitch.objects.create(name="note", failures_left=100)
    with django_capture_on_commit_callbacks(using="shard_0", execute=False):
        note_share(owner_id=owner, reader_id=reader, text="never")
    event_id = OutboxEvent.objects.using("shard_0").get().id

    results = [outbox_event_process(using="shard_0", event_id=event_id) for _ in range(4)]

    event = OutboxEvent.objects.using("shard_0").get()
    assert results == [False, False, False, False]
    assert (event.status, event.attempts) == (OutboxStatus.DEAD, 3)
    assert NoteCopy.objects.using("shard_1").count() == 0


@pytest.mark.django_db(databases=ALL, transaction=True)
def test_two_relays_at_once_apply_the_event_once(owner_and_reader):
    owner, reader = owner_and_reader
    # Written directly, without the after-commit relay, so only the two threads below race.
    with transaction.atomic(using="shard_0"):
        note_id = Note.objects.using("shard_0").create(owner_id=owner, text="race").id
        event = OutboxEvent.objects.using("shard_0").create(
            partition_id=owner,
            kind=str(NoteKind.NOTE_SHARED),
            payload={"note_id": note_id, "reader_id": reader, "text": "race"},
        )
    results = []
    barrier = threading.Barrier(2)

    def relay():
        barrier.wait()
        results.append(outbox_event_process(using="shard_0", event_id=event.id))
        connections.close_all()

    threads = [threading.Thread(target=relay) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(results) == [False, True]
    assert NoteCopy.objects.using("shard_1").count() == 1
    assert OutboxEvent.objects.using("shard_0").get().status == OutboxStatus.DONE


@pytest.mark.django_db(databases=ALL, transaction=True)
def test_real_celery_worker_delivers_the_other_side_after_commit(owner_and_reader):
    from celery.contrib.testing.worker import start_worker

    owner, reader = owner_and_reader
    with celery_app.connection_for_write() as conn:
        conn.default_channel.client.flushdb()  # stale messages of earlier runs
    with start_worker(
        celery_app,
        pool="solo",
        perform_ping_check=False,
        queues=["maintenance", "default"],
        shutdown_timeout=30,
    ):
        note = note_share(owner_id=owner, reader_id=reader, text="delivered")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if NoteCopy.objects.using("shard_1").filter(note_id=note.id).exists():
                break
            time.sleep(0.1)

    copy = NoteCopy.objects.using("shard_1").get()
    event = OutboxEvent.objects.using("shard_0").get()
    assert (copy.reader_id, copy.note_id, copy.text) == (reader, note.id, "delivered")
    assert event.status == OutboxStatus.DONE


@pytest.mark.django_db(databases=ALL)
def test_operator_sees_and_requeues_dead_events(
    owner_and_reader, settings, django_capture_on_commit_callbacks
):
    from io import StringIO

    from django.core.management import call_command

    settings.OUTBOX_MAX_ATTEMPTS = 1
    owner, reader = owner_and_reader
    HandlerSwitch.objects.create(name="note", failures_left=1)
    with django_capture_on_commit_callbacks(using="shard_0", execute=False):
        note_share(owner_id=owner, reader_id=reader, text="rescued")
    outbox_sweep(now=_later(11))
    stats, retried = StringIO(), StringIO()

    call_command("outbox", "stats", stdout=stats)
    call_command("outbox", "retry-dead", stdout=retried)
    applied = outbox_sweep(now=_later(11))

    assert stats.getvalue() == (
        "shard_0: pending=0 done=0 dead=1\nshard_1: pending=0 done=0 dead=0\n"
    )
    assert retried.getvalue() == (
        "shard_0: re-queued 1 dead events\nshard_1: re-queued 0 dead events\n"
    )
    assert applied == 1
    assert NoteCopy.objects.using("shard_1").count() == 1


@pytest.mark.django_db(databases=ALL, transaction=True)
def test_a_shard_that_is_down_does_not_hold_up_the_sweep_of_the_others(
    django_capture_on_commit_callbacks,
):
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    owner, reader = id_on("shard_1"), id_on("shard_1", sequence=1)
    with django_capture_on_commit_callbacks(using="shard_1", execute=False):
        note_share(owner_id=owner, reader_id=reader, text="delivered")
    shard_0 = connections["shard_0"]
    shard_0.close()
    port = shard_0.settings_dict["PORT"]
    shard_0.settings_dict["PORT"] = 1  # nothing listens there: refused
    try:
        with pytest.raises(ShardsUnavailable) as caught:
            outbox_sweep(now=_later(11))
        with pytest.raises(CommandError, match="unavailable: shard_0: OperationalError"):
            call_command("outbox", "sweep", stdout=StringIO())
        stats = StringIO()
        with pytest.raises(CommandError, match=r"^unavailable: shard_0$"):
            call_command("outbox", "stats", stdout=stats)
    finally:
        shard_0.close()
        shard_0.settings_dict["PORT"] = port

    assert list(caught.value.errors) == ["shard_0"]
    assert stats.getvalue().startswith("shard_0: unavailable (")
    assert stats.getvalue().endswith(")\nshard_1: pending=0 done=1 dead=0\n")
    assert NoteCopy.objects.using("shard_1").get().text == "delivered"
    assert OutboxEvent.objects.using("shard_1").get().status == OutboxStatus.DONE


@pytest.mark.django_db(databases=ALL, transaction=True)
@pytest.mark.parametrize("command", [["graph_recount"], ["media_tier"], ["rebuild_timelines"]])
def test_an_operators_command_meeting_a_shard_that_is_down_stops_with_a_message(
    command, redis_client
):
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    shard_0 = connections["shard_0"]
    shard_0.close()
    port = shard_0.settings_dict["PORT"]
    shard_0.settings_dict["PORT"] = 1  # nothing listens there: refused
    try:
        with pytest.raises(CommandError) as stopped:
            call_command(*command, stdout=StringIO())
    finally:
        shard_0.close()
        shard_0.settings_dict["PORT"] = port

    assert str(stopped.value).startswith("stopped: a database is unavailable (connection")
    assert str(stopped.value).endswith("); run it again once it is back")
