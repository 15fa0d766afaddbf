from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts.admin import admin_password_change
from instagram import health
from media.serving import serve_media

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
    # Ahead of the stock page (Django takes no form for it): a new password signs out the API.
    path("admin/password_change/", admin.site.admin_view(admin_password_change, cacheable=True)),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/v1/", include("instagram.api_urls")),
]

if settings.STORAGE_BACKEND == "local":
    # Local development storage; production serves media from S3 behind the CDN.
    # Variants carry one-year immutable cache headers; originals are never served.
    urlpatterns.append(re_path(r"^media/(?P<path>.*)$", serve_media))

handler400 = "instagram.errors.handler400"
handler403 = "instagram.errors.handler403"
handler404 = "instagram.errors.handler404"
handler500 = "instagram.errors.handler500"
