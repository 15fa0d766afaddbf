from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self) -> None:
        from accounts import schema  # noqa: F401  (OpenAPI security scheme)
        from accounts.services import graph  # noqa: F401  (registers outbox handlers)
