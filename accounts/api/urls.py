from django.urls import path

from accounts.api import views

urlpatterns = [
    path("accounts/register", views.RegisterApi.as_view(), name="register"),
    path("accounts/login", views.LoginApi.as_view(), name="login"),
    path("accounts/logout", views.LogoutApi.as_view(), name="logout"),
    path("accounts/me", views.MeApi.as_view(), name="me"),
    path("accounts/me/profile_pic", views.ProfilePictureApi.as_view(), name="profile-pic"),
    path("accounts/me/password", views.PasswordChangeApi.as_view(), name="password-change"),
    path("accounts/me/follow_requests", views.FollowRequestsApi.as_view(), name="follow-requests"),
    path(
        "accounts/me/follow_requests/<str:user_id>/approve",
        views.FollowRequestApproveApi.as_view(),
        name="follow-request-approve",
    ),
    path(
        "accounts/me/follow_requests/<str:user_id>/deny",
        views.FollowRequestDenyApi.as_view(),
        name="follow-request-deny",
    ),
    path("users/<str:user_id>/follow", views.FollowApi.as_view(), name="follow"),
    path("users/<str:user_id>/followers", views.FollowersApi.as_view(), name="followers"),
    path("users/<str:user_id>/following", views.FollowingApi.as_view(), name="following"),
    path("users/<str:user_id>/block", views.BlockApi.as_view(), name="block"),
    path("users/<str:user_id>/close_friend", views.CloseFriendApi.as_view(), name="close-friend"),
    path("users/<str:handle>", views.UserDetailApi.as_view(), name="user-detail"),
]
