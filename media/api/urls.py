from django.urls import path

from media.api import views

urlpatterns = [
    path("upload", views.MediaUploadApi.as_view(), name="media-upload"),
    path("filters", views.MediaFilterListApi.as_view(), name="media-filters"),
    path("<str:media_id>", views.MediaDetailApi.as_view(), name="media-detail"),
]
