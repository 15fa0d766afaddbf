from django.apps import AppConfig


class PostsConfig(AppConfig):
    name = "posts"

    def ready(self) -> None:
        from accounts.services.graph import block_started_hooks
        from media.services.processing import media_processed_hooks
        from posts.services import likes  # noqa: F401  (registers outbox handlers)
        from posts.services.blocking import block_interactions_remove
        from posts.services.posts import posts_publish_for_media

        if posts_publish_for_media not in media_processed_hooks:
            media_processed_hooks.append(posts_publish_for_media)
        if block_interactions_remove not in block_started_hooks:
            block_started_hooks.append(block_interactions_remove)
