"""Migration operations for large sharded tables."""

from __future__ import annotations

from django.contrib.postgres.operations import AddIndexConcurrently


class AddIndexConcurrentlyResumable(AddIndexConcurrently):
    """`CREATE INDEX CONCURRENTLY` (writes go on while it builds), which a build cut short
    (cancelled, a deadlock, a deploy killed) leaves behind as an invalid index of that name: every
    later run would then fail with "already exists". A leftover invalid index is dropped first,
    so running the migration again finishes it."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            with schema_editor.connection.cursor() as cursor:
                cursor.execute(
                    "SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(%s) AND NOT indisvalid",
                    [schema_editor.quote_name(self.index.name)],
                )
                if cursor.fetchone():
                    cursor.execute(
                        f"DROP INDEX CONCURRENTLY {schema_editor.quote_name(self.index.name)}"
                    )
        super().database_forwards(app_label, schema_editor, from_state, to_state)
