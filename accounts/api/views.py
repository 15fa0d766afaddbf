"""Accounts and social graph API (API.md). Thin: parse, call one service or selector, render."""

from __future__ import annotations

from django.contrib.auth import logout as django_logout
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors
from accounts.api import serializers as s
from accounts.services import auth, graph, profile
from instagram.api import PAGE_PARAMETERS, client_ip, error_responses, not_found
from instagram.pagination import parse_page_request
from media.api.views import StreamedUploadMixin
from media.throttles import MediaUploadThrottle


def _viewer_id(request) -> int | None:
    return request.user.id if request.user.is_authenticated else None


def _user_id(raw: str) -> int:
    user_id = selectors.parse_user_id(raw)
    if user_id is None:
        raise not_found("User not found.")
    return user_id


def _token_body(issued: auth.IssuedToken) -> dict:
    return {
        "user_id": str(issued.user.id),
        "username": issued.user.username,
        "token": issued.token,
    }


class RegisterApi(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        request=s.RegisterInputSerializer,
        responses={201: s.TokenSerializer, **error_responses(400, 409, 429)},
    )
    def post(self, request):
        data = s.RegisterInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        issued = auth.user_register(**data.validated_data, client_ip=client_ip(request))
        return Response(_token_body(issued), status=201)


class LoginApi(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        request=s.LoginInputSerializer,
        responses={200: s.TokenSerializer, **error_responses(400, 401, 429)},
    )
    def post(self, request):
        data = s.LoginInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        issued = auth.user_login(**data.validated_data, client_ip=client_ip(request))
        return Response(_token_body(issued))


class LogoutApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: None, **error_responses(401, 503)})
    def post(self, request):
        token = getattr(request, "auth_token", None)
        if token is not None:
            auth.token_revoke(token=token)  # first: a revocation refused (503) ends nothing
        # A browser client signs in with a session cookie, not a token: end that session too
        # (its row is deleted, so a copy of the cookie stops working as well).
        django_logout(request._request)
        return Response(status=204)


class PasswordChangeApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=s.PasswordChangeInputSerializer,
        responses={200: s.TokenSerializer, **error_responses(400, 401, 429, 503)},
    )
    def post(self, request):
        data = s.PasswordChangeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        issued = auth.password_change(user=request.user, **data.validated_data)
        return Response(_token_body(issued))


class MeApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: s.ProfileSerializer, **error_responses(401)})
    def get(self, request):
        user = request.user
        return Response(selectors.profile_body(user, selectors.relationship(user.id, user.id)))

    @extend_schema(
        request=s.ProfileUpdateInputSerializer,
        responses={200: s.ProfileSerializer, **error_responses(400, 401)},
    )
    def patch(self, request):
        data = s.ProfileUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = profile.profile_update(user=request.user, **data.validated_data)
        return Response(selectors.profile_body(user, selectors.relationship(user.id, user.id)))


class ProfilePictureApi(StreamedUploadMixin, APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [MediaUploadThrottle]  # rendered at once: counted as any upload
    max_upload_bytes_setting = "PROFILE_PIC_MAX_BYTES"

    @extend_schema(
        request={"multipart/form-data": s.ProfilePictureInputSerializer},
        responses={200: s.ProfileSerializer, **error_responses(400, 401, 413, 415, 429)},
    )
    def post(self, request):
        data = s.ProfilePictureInputSerializer(data=self.upload_data(request))
        data.is_valid(raise_exception=True)
        user = profile.profile_picture_set(user=request.user, file=data.validated_data["file"])
        return Response(selectors.profile_body(user, selectors.relationship(user.id, user.id)))


class UserDetailApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses={200: s.ProfileSerializer, **error_responses(404)})
    def get(self, request, handle: str):
        body = selectors.profile_for_viewer(viewer_id=_viewer_id(request), handle=handle)
        if body is None:
            raise not_found("User not found.")
        return Response(body)


class FollowApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=None,
        responses={200: s.FollowStatusSerializer, **error_responses(400, 401, 404, 429)},
    )
    def post(self, request, user_id: str):
        status = graph.follow_create(follower=request.user, followee_id=_user_id(user_id))
        return Response({"status": str(status)})

    @extend_schema(request=None, responses={204: None, **error_responses(400, 401, 404)})
    def delete(self, request, user_id: str):
        graph.follow_delete(follower=request.user, followee_id=_user_id(user_id))
        return Response(status=204)


class GraphListApi(APIView):
    permission_classes = [AllowAny]
    direction = "followers"

    @extend_schema(
        parameters=PAGE_PARAMETERS,
        responses={200: s.UserListSerializer, **error_responses(400, 404)},
    )
    def get(self, request, user_id: str):
        owner_id = _user_id(user_id)
        page = parse_page_request(request.query_params)
        body = selectors.graph_list_for_viewer(
            viewer_id=_viewer_id(request), owner_id=owner_id, direction=self.direction, page=page
        )
        if body is None:
            raise not_found("User not found.")
        return Response(body)


class FollowersApi(GraphListApi):
    direction = "followers"


class FollowingApi(GraphListApi):
    direction = "following"


class FollowRequestsApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=PAGE_PARAMETERS,
        responses={200: s.UserListSerializer, **error_responses(400, 401)},
    )
    def get(self, request):
        page = parse_page_request(request.query_params)
        return Response(selectors.follow_requests_page(user_id=request.user.id, page=page))


class FollowRequestApproveApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=None,
        responses={204: None, **error_responses(401, 404, 409)},
        description="409 `requester_at_following_limit`: the requester follows as many "
        "accounts as anyone may; the request stays pending.",
    )
    def post(self, request, user_id: str):
        graph.follow_request_approve(target=request.user, requester_id=_user_id(user_id))
        return Response(status=204)


class FollowRequestDenyApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: None, **error_responses(401, 404)})
    def post(self, request, user_id: str):
        graph.follow_request_deny(target=request.user, requester_id=_user_id(user_id))
        return Response(status=204)


class BlockApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: None, **error_responses(400, 401, 404)})
    def post(self, request, user_id: str):
        graph.block_create(blocker=request.user, blocked_id=_user_id(user_id))
        return Response(status=204)

    @extend_schema(
        request=None,
        responses={204: None, **error_responses(401, 404)},
        description="Idempotent: 204 whoever the user is (404 only for a malformed ID).",
    )
    def delete(self, request, user_id: str):
        graph.block_delete(blocker=request.user, blocked_id=_user_id(user_id))
        return Response(status=204)


class CloseFriendApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: None, **error_responses(400, 401, 404)})
    def post(self, request, user_id: str):
        graph.close_friend_add(owner=request.user, friend_id=_user_id(user_id))
        return Response(status=204)

    @extend_schema(request=None, responses={204: None, **error_responses(401, 404)})
    def delete(self, request, user_id: str):
        graph.close_friend_remove(owner=request.user, friend_id=_user_id(user_id))
        return Response(status=204)
