from django.apps import AppConfig


class MediaConfig(AppConfig):
    name = "media"

    def ready(self) -> None:
        from media.services import processing  # noqa: F401  (registers outbox handlers)
