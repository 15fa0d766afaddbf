from django.urls import path

from feed.api.views import FeedApi

urlpatterns = [path("feed", FeedApi.as_view(), name="feed")]
