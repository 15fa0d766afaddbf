from django.urls import path

from posts.api import views

urlpatterns = [
    path("posts", views.PostCreateApi.as_view(), name="post-create"),
    path("posts/<str:post_id>", views.PostDetailApi.as_view(), name="post-detail"),
    path("posts/<str:post_id>/like", views.PostLikeApi.as_view(), name="post-like"),
    path("posts/<str:post_id>/likers", views.PostLikersApi.as_view(), name="post-likers"),
    path("posts/<str:post_id>/comments", views.PostCommentsApi.as_view(), name="post-comments"),
    path("posts/<str:post_id>/save", views.PostSaveApi.as_view(), name="post-save"),
    path("comments/<str:comment_id>", views.CommentApi.as_view(), name="comment"),
    path("comments/<str:comment_id>/like", views.CommentLikeApi.as_view(), name="comment-like"),
    path(
        "comments/<str:comment_id>/replies",
        views.CommentRepliesApi.as_view(),
        name="comment-replies",
    ),
    path("accounts/me/saved", views.SavedPostsApi.as_view(), name="saved-posts"),
    path("users/<str:user_id>/posts", views.UserPostsApi.as_view(), name="user-posts"),
    path("tags/<str:name>/posts", views.TagPostsApi.as_view(), name="tag-posts"),
    path("locations", views.LocationsApi.as_view(), name="locations"),
    path(
        "locations/<str:location_id>/posts",
        views.LocationPostsApi.as_view(),
        name="location-posts",
    ),
]
