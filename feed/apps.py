from django.apps import AppConfig
from django.core import checks


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
        checks.register(_set_sizes_check)


def _set_sizes_check(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """A first page reads its candidates (a ranked window's, or the largest page's, and a few
    more) from every set at once: a set shorter than that would run out on every first page
    and send it to the database."""
    from django.conf import settings

    from feed.selectors import CANDIDATE_SLACK

    page = max(settings.FEED_RANKED_WINDOW, settings.PAGINATION_MAX_LIMIT + 1)
    needed = page + CANDIDATE_SLACK + 1
    return [
        checks.Error(
            f"{name} is {getattr(settings, name)}: it must be at least {needed} (the larger of "
            f"FEED_RANKED_WINDOW and PAGINATION_MAX_LIMIT + 1, and {CANDIDATE_SLACK + 1}).",
            id="feed.E001",
        )
        for name in ("FEED_TIMELINE_LENGTH", "FEED_CELEBRITY_POSTS")
        if getattr(settings, name) < needed
    ]
