"""Migration operations for large sharded tables."""

from __future__ import annotations

from django.contrib.postgres.operations import AddIndexConcurrently


class AddIndexConcurrentlyResumable(AddIndexConcurrently):
    """`CREATE INDEX CONCURRENTLY` (writes go on while it builds), in a migration that is not
    atomic: a run cut short (cancelled, a deadlock, a deploy killed) leaves an invalid index of
    that name, or a valid one the migration was not yet recorded for, and every later run would
    fail with "already exists". Run again, it drops an invalid leftover and builds the index
    again, and takes a valid one as built."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            name = schema_editor.quote_name(self.index.name)
            with schema_editor.connection.cursor() as cursor:
                cursor.execute(
                    "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", [name]
                )
                found = cursor.fetchone()
                if found is not None and found[0]:
                    return  # built by a run cut short before the migration was recorded
                if found is not None:
                    cursor.execute(f"DROP INDEX CONCURRENTLY {name}")
        super().database_forwards(app_label, schema_editor, from_state, to_state)
