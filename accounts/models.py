"""Users and credentials (global, `default`), and the social graph (sharded).

Graph placement (DESIGN.md): `following` rows on the follower's shard, `followers` rows on the
followee's shard, kept in step by the outbox; follow requests on the target's shard (the
approver lists them); blocks and close friends on the owner's shard. Counts live in
`UserCounters` on the user's own shard, changed in the same transaction as the rows they count.
"""

from __future__ import annotations

import re

from django.contrib.auth.models import AbstractUser, UserManager
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from instagram.ids import ShardedIDField
from instagram.sharding import ShardedModel, alias_for_id

USERNAME_RE = re.compile(r"^[a-z0-9._]{1,30}$")
# Refused (as on Instagram): an all-digit username would read as a user ID in
# `/users/{username_or_id}`.
USERNAME_ALL_DIGITS_RE = re.compile(r"^[0-9]+$")
USERNAME_ALL_DIGITS_MESSAGE = "Usernames cannot be only digits."
# Refused for new names too (as on Instagram; checked by the services and the admin forms, not
# the model, so a name made before the rule stays editable): a name that starts or ends with
# '.' or holds '..' cannot be mentioned (a sentence's full stop ends a mention), and '.' or
# '..' as a path segment is read by clients as "this" or "up" (`/users/..`).
USERNAME_DOTS_RE = re.compile(r"^\.|\.$|\.\.")
USERNAME_DOTS_MESSAGE = "Usernames cannot start or end with '.', nor hold '..'."
RESERVED_USERNAMES = frozenset(
    {
        "about", "accounts", "admin", "administrator", "api", "app", "direct", "explore",
        "feed", "help", "inbox", "instagram", "login", "logout", "me", "media", "metrics",
        "notifications", "p", "post", "posts", "privacy", "readyz", "healthz", "register",
        "reels", "root", "search", "security", "settings", "signup", "static", "stories",
        "support", "system", "tags", "terms", "user", "users", "www",
    }
)  # fmt: skip


class User(AbstractUser):
    """A global user row; its 64-bit ID carries the user's home shard, drawn at sign-up."""

    id = ShardedIDField()
    username = models.CharField(
        max_length=30,
        unique=True,
        validators=[
            RegexValidator(USERNAME_RE, "1-30 characters of a-z, 0-9, '.' and '_'."),
            RegexValidator(USERNAME_ALL_DIGITS_RE, USERNAME_ALL_DIGITS_MESSAGE, inverse_match=True),
        ],
        error_messages={"unique": "That username is taken."},
    )
    email = models.EmailField(max_length=254, blank=True)
    full_name = models.CharField(max_length=150, blank=True)
    bio = models.CharField(max_length=150, blank=True)
    is_private = models.BooleanField(default=False)
    is_verified = models.BooleanField(default=False)
    profile_pic_media_id = models.BigIntegerField(null=True, blank=True)
    profile_pic_url = models.CharField(max_length=500, blank=True)
    # Fan-out skips followers inactive for a while; touched at most once an hour. Not indexed:
    # fan-out reads it by primary key, and an index here lures the planner into scanning it.
    last_active_at = models.DateTimeField(default=timezone.now)

    objects = UserManager()  # type: ignore[misc]  # the stubs declare it a ClassVar

    class Meta:
        db_table = "accounts_user"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(username=Lower("username")), name="username_is_lowercase"
            ),
        ]

    def __str__(self) -> str:
        return self.username

    def shard_alias(self) -> str:
        """The alias of the user's home shard, where their sharded rows live."""
        return alias_for_id(self.id)

    def refresh_from_db(self, using=None, fields=None, from_queryset=None) -> None:
        # A request's user from the token cache carries only what authentication needs; the
        # first use of any other field loads all of them in one query, not one per field.
        deferred = self.get_deferred_fields()
        if fields is not None and deferred and set(fields) <= deferred:
            fields = list(deferred)
        super().refresh_from_db(using=using, fields=fields, from_queryset=from_queryset)


class AuthToken(models.Model):
    """A bearer token for one device; only its SHA-256 is stored, the token is shown once."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="auth_tokens")
    key_hash = models.CharField(max_length=64, unique=True)
    device = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"token of {self.user_id} ({self.device or 'device'})"


class UserCounters(ShardedModel):
    """Exact counts of a user's rows, on the user's shard, updated with the rows."""

    partition_key = "user_id"

    user_id = models.BigIntegerField(primary_key=True)
    follower_count = models.BigIntegerField(default=0)
    following_count = models.BigIntegerField(default=0)
    post_count = models.BigIntegerField(default=0)
    # Set when a post of the user is fanned out with the user over FEED_FANOUT_THRESHOLD
    # followers, and kept: rebuilt timelines and new follows leave such an account's posts to
    # be merged at read, so its later posts must be too, whatever its count does.
    merged_at_read = models.BooleanField(default=False, db_default=False)

    def __str__(self) -> str:
        return f"counters of {self.user_id}"


class Following(ShardedModel):
    """`follower` follows `followee`; the source of truth of an edge, on the follower's shard."""

    partition_key = "follower_id"

    id = ShardedIDField()
    follower_id = models.BigIntegerField()
    followee_id = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["follower_id", "followee_id"], name="following_once"),
        ]
        indexes = [
            models.Index(fields=["follower_id", "-created_at", "-id"], name="following_by_recent")
        ]

    def __str__(self) -> str:
        return f"{self.follower_id} -> {self.followee_id}"


class Follower(ShardedModel):
    """The followee's copy of an edge, on the followee's shard, applied by the outbox.

    `created_at` is the follow's own time (copied from `Following`), so lists order by when the
    follow happened, not when the copy was applied.
    """

    partition_key = "followee_id"

    id = ShardedIDField()
    followee_id = models.BigIntegerField()
    follower_id = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["followee_id", "follower_id"], name="follower_once"),
        ]
        indexes = [
            models.Index(fields=["followee_id", "-created_at", "-id"], name="follower_by_recent"),
            # Fan-out reads a followee's followers in ID batches: an index-only scan.
            models.Index(
                fields=["followee_id", "id"], include=["follower_id"], name="follower_fanout"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.follower_id} -> {self.followee_id}"


class FollowRequest(ShardedModel):
    """A request to follow a private account, on the target's shard.

    Approving marks it (`approved_at`) and the outbox then creates the follow on the
    requester's shard and removes the row; until then the marker makes a repeated follow answer
    "following", and a withdrawal (unfollow) deletes it so the late approval does nothing.
    """

    partition_key = "target_id"

    id = ShardedIDField()
    target_id = models.BigIntegerField()
    requester_id = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    approved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["target_id", "requester_id"], name="request_once"),
        ]
        indexes = [
            models.Index(fields=["target_id", "-created_at", "-id"], name="request_by_recent")
        ]

    def __str__(self) -> str:
        return f"{self.requester_id} asks {self.target_id}"


class Block(ShardedModel):
    """`blocker` blocked `blocked`, on the blocker's shard."""

    partition_key = "blocker_id"

    id = ShardedIDField()
    blocker_id = models.BigIntegerField()
    blocked_id = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["blocker_id", "blocked_id"], name="block_once"),
        ]

    def __str__(self) -> str:
        return f"{self.blocker_id} blocks {self.blocked_id}"


class CloseFriend(ShardedModel):
    """`friend` is on `owner`'s close friends list (stories audience), on the owner's shard."""

    partition_key = "owner_id"

    id = ShardedIDField()
    owner_id = models.BigIntegerField()
    friend_id = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner_id", "friend_id"], name="close_friend_once"),
        ]

    def __str__(self) -> str:
        return f"{self.friend_id} close to {self.owner_id}"
