from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # Built without locking out writes: comments are a large table on every shard.
    atomic = False

    dependencies = [
        ("posts", "0001_initial"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="comment",
            index=models.Index(
                condition=models.Q(("deleted_at__isnull", True)),
                fields=["author_id", "post_id"],
                name="comment_by_author",
            ),
        ),
    ]
