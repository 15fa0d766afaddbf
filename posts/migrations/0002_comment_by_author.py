from django.db import migrations, models

from instagram.postgres.operations import AddIndexConcurrentlyResumable


class Migration(migrations.Migration):
    # Built without locking out writes (comments are a large table on every shard), and
    # finished by a run again if a run is cut short.
    atomic = False

    dependencies = [
        ("posts", "0001_initial"),
    ]

    operations = [
        AddIndexConcurrentlyResumable(
            model_name="comment",
            index=models.Index(
                condition=models.Q(("deleted_at__isnull", True)),
                fields=["author_id", "post_id"],
                name="comment_by_author",
            ),
        ),
    ]
