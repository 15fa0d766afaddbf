"""Posts and everything hanging off them.

On the author's shard (the post ID carries it): posts, their media links, hashtag, mention and
tag rows, likes, comments and comment likes, so a post and its counters change in one
transaction. On the acting user's shard: saves and the liker's "liked posts" index (the latter
through the outbox). Global (`default`): the hashtag and location directories.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from instagram.ids import ShardedIDField
from instagram.sharding import ShardedModel

CAPTION_MAX = 2200
COMMENT_MAX = 2200
ALT_TEXT_MAX = 1000
MAX_MEDIA = 10
MAX_HASHTAGS = 30
MAX_MENTIONS = 20
MAX_TAGGED = 20


class Location(models.Model):
    """A place posts can name; global so every shard can refer to it by ID."""

    name = models.CharField(max_length=100)
    name_normalized = models.CharField(max_length=100, db_index=True)
    lat = models.FloatField()
    lng = models.FloatField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class Hashtag(models.Model):
    """The global directory of hashtags (search, counts); posts index them per shard."""

    name = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"#{self.name}"


class Post(ShardedModel):
    partition_key = "author_id"

    id = ShardedIDField()
    author_id = models.BigIntegerField()
    caption = models.CharField(max_length=CAPTION_MAX, blank=True)
    location_id = models.BigIntegerField(null=True, blank=True)
    # Rendering copies of the parsed caption; the index rows below serve the queries.
    hashtags = models.JSONField(default=list, blank=True)
    mentions = models.JSONField(default=list, blank=True)  # [{"user_id": "..", "username": ..}]
    like_count = models.BigIntegerField(default=0)
    comment_count = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # Set when every media item is ready: only then do followers see the post.
    published_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["author_id", "-id"],
                name="post_by_author",
                condition=models.Q(deleted_at__isnull=True),
            ),
            models.Index(
                fields=["location_id", "-id"],
                name="post_by_location",
                condition=models.Q(deleted_at__isnull=True, location_id__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"post {self.id}"


class PostMedia(ShardedModel):
    """One item of a carousel; the media row is on the same shard (the author uploaded it)."""

    partition_key = "post_id"

    id = ShardedIDField()
    post_id = models.BigIntegerField()
    media_id = models.BigIntegerField()
    position = models.PositiveSmallIntegerField()
    alt_text = models.CharField(max_length=ALT_TEXT_MAX, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["post_id", "position"], name="post_media_position"),
            models.UniqueConstraint(fields=["post_id", "media_id"], name="post_media_once"),
        ]

    def __str__(self) -> str:
        return f"{self.post_id}[{self.position}]"


class PostHashtag(ShardedModel):
    """The per-shard hashtag index: a tag page is one indexed query per shard."""

    partition_key = "post_id"

    id = ShardedIDField()
    post_id = models.BigIntegerField()
    tag = models.CharField(max_length=100)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["post_id", "tag"], name="post_hashtag_once"),
        ]
        indexes = [models.Index(fields=["tag", "-post_id"], name="post_hashtag_by_tag")]

    def __str__(self) -> str:
        return f"#{self.tag} on {self.post_id}"


class PostMention(ShardedModel):
    """A user mentioned (`@name`) in a caption or comment."""

    partition_key = "post_id"

    id = ShardedIDField()
    post_id = models.BigIntegerField()
    comment_id = models.BigIntegerField(null=True, blank=True)
    user_id = models.BigIntegerField()

    def __str__(self) -> str:
        return f"@{self.user_id} in {self.post_id}"


class PostTag(ShardedModel):
    """A user tagged in the photo."""

    partition_key = "post_id"

    id = ShardedIDField()
    post_id = models.BigIntegerField()
    user_id = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["post_id", "user_id"], name="tag_once")]

    def __str__(self) -> str:
        return f"{self.user_id} tagged in {self.post_id}"


class Like(ShardedModel):
    partition_key = "post_id"

    id = ShardedIDField()
    post_id = models.BigIntegerField()
    user_id = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["post_id", "user_id"], name="like_once")]
        indexes = [models.Index(fields=["post_id", "-id"], name="like_by_post")]

    def __str__(self) -> str:
        return f"{self.user_id} likes {self.post_id}"


class LikedPost(ShardedModel):
    """The liker's own index of liked posts, on the liker's shard, kept by the outbox."""

    partition_key = "user_id"

    id = ShardedIDField()
    user_id = models.BigIntegerField()
    post_id = models.BigIntegerField()
    liked_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user_id", "post_id"], name="liked_post_once")
        ]
        indexes = [models.Index(fields=["user_id", "-liked_at", "-id"], name="liked_by_recent")]

    def __str__(self) -> str:
        return f"{self.user_id} liked {self.post_id}"


class Comment(ShardedModel):
    partition_key = "post_id"

    id = ShardedIDField()
    post_id = models.BigIntegerField()
    author_id = models.BigIntegerField()
    parent_id = models.BigIntegerField(null=True, blank=True)
    text = models.CharField(max_length=COMMENT_MAX)
    like_count = models.BigIntegerField(default=0)
    reply_count = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["post_id", "id"],
                name="comment_by_post",
                condition=models.Q(deleted_at__isnull=True, parent_id__isnull=True),
            ),
            models.Index(
                fields=["parent_id", "id"],
                name="comment_replies",
                condition=models.Q(deleted_at__isnull=True, parent_id__isnull=False),
            ),
            # A user's comments on this shard's posts (a block takes theirs off the blocker's).
            models.Index(
                fields=["author_id", "post_id"],
                name="comment_by_author",
                condition=models.Q(deleted_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"comment {self.id} on {self.post_id}"


class CommentLike(ShardedModel):
    partition_key = "comment_id"

    id = ShardedIDField()
    comment_id = models.BigIntegerField()
    user_id = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["comment_id", "user_id"], name="comment_like_once")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} likes comment {self.comment_id}"


class Save(ShardedModel):
    """A post saved by a user, on the saver's shard."""

    partition_key = "user_id"

    id = ShardedIDField()
    user_id = models.BigIntegerField()
    post_id = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user_id", "post_id"], name="save_once")]
        indexes = [models.Index(fields=["user_id", "-created_at", "-id"], name="save_by_recent")]

    def __str__(self) -> str:
        return f"{self.user_id} saved {self.post_id}"
