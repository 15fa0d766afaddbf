"""Every app's API under /api/v1/; anything else under /api/ answers a JSON 404."""

from django.urls import include, path, re_path

from instagram.errors import api_not_found

urlpatterns: list = [
    re_path(r"", include("feed.api.urls")),  # first: the hottest route resolves fastest
    path("media/", include("media.api.urls")),
    re_path(r"", include("accounts.api.urls")),
    re_path(r"", include("posts.api.urls")),
    re_path(r"^.*$", api_not_found),
]
