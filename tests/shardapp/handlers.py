from enum import StrEnum

from django.db import transaction
from django.db.models import F

from instagram.outbox import outbox_enqueue, outbox_handler
from instagram.sharding import alias_for_id
from tests.shardapp.models import HandlerSwitch, Note, NoteCopy


class NoteKind(StrEnum):
    NOTE_SHARED = "test.note_shared"


def note_share(*, owner_id: int, reader_id: int, text: str) -> Note:
    using = alias_for_id(owner_id)
    with transaction.atomic(using=using):
        note = Note.objects.using(using).create(owner_id=owner_id, text=text)
        outbox_enqueue(
            partition_id=owner_id,
            kind=NoteKind.NOTE_SHARED,
            payload={"note_id": note.id, "reader_id": reader_id, "text": text},
        )
    return note


@outbox_handler(NoteKind.NOTE_SHARED)
def apply_note_shared(payload: dict) -> None:
    switched = HandlerSwitch.objects.filter(name="note", failures_left__gt=0).update(
        failures_left=F("failures_left") - 1
    )
    if switched:
        raise ConnectionError("reader shard unavailable")
    reader_id = payload["reader_id"]
    NoteCopy.objects.using(alias_for_id(reader_id)).bulk_create(
        [NoteCopy(reader_id=reader_id, note_id=payload["note_id"], text=payload["text"])],
        ignore_conflicts=True,
    )
