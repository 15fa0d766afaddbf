from django.apps import AppConfig


class FeedConfig(AppConfig):
    name = "feed"

    def ready(self) -> None:
        from accounts.services.graph import follow_ended_hooks, follow_started_hooks
        from feed import hooks
        from posts.services.posts import post_deleted_hooks, post_published_hooks

        for registry, hook in (
            (post_published_hooks, hooks.on_post_published),
            (post_deleted_hooks, hooks.on_post_deleted),
            (follow_started_hooks, hooks.on_follow_started),
            (follow_ended_hooks, hooks.on_follow_ended),
        ):
            if hook not in registry:
                registry.append(hook)
