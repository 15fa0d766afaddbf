from django.contrib.auth.models import AbstractUser

from instagram.ids import ShardedIDField


class User(AbstractUser):
    """A global user row; its 64-bit ID carries the user's home shard, chosen at sign-up."""

    id = ShardedIDField()

    class Meta:
        db_table = "accounts_user"
