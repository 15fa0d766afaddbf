"""Media and posts API (API.md, "Media and posts"). Thin: parse, call one service or selector."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.serializers import UserListSerializer
from instagram.api import PAGE_PARAMETERS, error_responses, not_found, parse_id
from instagram.pagination import parse_page_request
from posts import selectors
from posts.api import serializers as s
from posts.parsing import hashtag_normalize
from posts.services import comments, likes, locations, posts, saves


def _viewer_id(request) -> int | None:
    return request.user.id if request.user.is_authenticated else None


def _post_id(raw: str) -> int:
    return parse_id(raw, "Post not found.")


def _like_body(state) -> dict:
    return {"like_count": state.like_count, "viewer_has_liked": state.viewer_has_liked}


def _or_404(body, message: str = "Post not found."):
    if body is None:
        raise not_found(message)
    return Response(body)


class PostCreateApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=s.PostCreateInputSerializer,
        responses={201: s.PostCreatedSerializer, **error_responses(400, 401, 403, 429)},
    )
    def post(self, request):
        data = s.PostCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        alt = values.get("alt_text")
        media_ids = values["media_ids"]
        if alt is not None and len(alt) == 1 and len(media_ids) > 1:
            alt = alt * len(media_ids)
        post = posts.post_create(
            author=request.user,
            media_ids=media_ids,
            caption=values["caption"],
            alt_text=alt,
            tagged_user_ids=values.get("tagged_users"),
            location_id=values.get("location_id"),
        )
        body = {
            "post_id": str(post.id),
            "permalink": selectors.permalink(post.id),
            "created_at": post.created_at,
        }
        return Response(body, status=201)


class PostDetailApi(APIView):
    def get_permissions(self):
        return [AllowAny()] if self.request.method == "GET" else [IsAuthenticated()]

    @extend_schema(responses={200: s.PostSerializer, **error_responses(404)})
    def get(self, request, post_id: str):
        return _or_404(
            selectors.post_detail(viewer_id=_viewer_id(request), post_id=_post_id(post_id))
        )

    @extend_schema(
        request=s.PostUpdateInputSerializer,
        responses={200: s.PostSerializer, **error_responses(400, 401, 403, 404)},
    )
    def patch(self, request, post_id: str):
        data = s.PostUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        post = posts.post_update(
            author=request.user, post_id=_post_id(post_id), **data.validated_data
        )
        return _or_404(selectors.post_detail(viewer_id=request.user.id, post_id=post.id))

    @extend_schema(responses={204: None, **error_responses(401, 403, 404)})
    def delete(self, request, post_id: str):
        posts.post_delete(author=request.user, post_id=_post_id(post_id))
        return Response(status=204)


class PostLikeApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=None, responses={200: s.LikeStateSerializer, **error_responses(401, 404)}
    )
    def post(self, request, post_id: str):
        state = likes.post_like(user=request.user, post_id=_post_id(post_id))
        return Response(_like_body(state))

    @extend_schema(
        request=None, responses={200: s.LikeStateSerializer, **error_responses(401, 404)}
    )
    def delete(self, request, post_id: str):
        state = likes.post_unlike(user=request.user, post_id=_post_id(post_id))
        return Response(_like_body(state))


class PostLikersApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        parameters=PAGE_PARAMETERS, responses={200: UserListSerializer, **error_responses(400, 404)}
    )
    def get(self, request, post_id: str):
        page = parse_page_request(request.query_params)
        return _or_404(
            selectors.likers_page(
                viewer_id=_viewer_id(request), post_id=_post_id(post_id), page=page
            )
        )


class PostCommentsApi(APIView):
    def get_permissions(self):
        return [AllowAny()] if self.request.method == "GET" else [IsAuthenticated()]

    @extend_schema(
        parameters=PAGE_PARAMETERS,
        responses={200: s.CommentListSerializer, **error_responses(400, 404)},
    )
    def get(self, request, post_id: str):
        page = parse_page_request(request.query_params)
        return _or_404(
            selectors.comments_page(
                viewer_id=_viewer_id(request), post_id=_post_id(post_id), page=page
            )
        )

    @extend_schema(
        request=s.CommentInputSerializer,
        responses={201: s.CommentSerializer, **error_responses(400, 401, 403, 404)},
    )
    def post(self, request, post_id: str):
        data = s.CommentInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        comment = comments.comment_create(
            author=request.user,
            post_id=_post_id(post_id),
            text=data.validated_data["text"],
            parent_id=data.validated_data.get("parent_id"),
        )
        return Response(selectors.comments_render(request.user.id, [comment])[0], status=201)


class CommentApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={204: None, **error_responses(401, 403, 404)})
    def delete(self, request, comment_id: str):
        comments.comment_delete(user=request.user, comment_id=parse_id(comment_id))
        return Response(status=204)


class CommentRepliesApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        parameters=PAGE_PARAMETERS,
        responses={200: s.CommentListSerializer, **error_responses(400, 404)},
    )
    def get(self, request, comment_id: str):
        page = parse_page_request(request.query_params)
        return _or_404(
            selectors.replies_page(
                viewer_id=_viewer_id(request),
                comment_id=parse_id(comment_id, "Comment not found."),
                page=page,
            ),
            "Comment not found.",
        )


class CommentLikeApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=None, responses={200: s.LikeStateSerializer, **error_responses(401, 404)}
    )
    def post(self, request, comment_id: str):
        state = likes.comment_like(user=request.user, comment_id=parse_id(comment_id))
        return Response(_like_body(state))

    @extend_schema(
        request=None, responses={200: s.LikeStateSerializer, **error_responses(401, 404)}
    )
    def delete(self, request, comment_id: str):
        state = likes.comment_unlike(user=request.user, comment_id=parse_id(comment_id))
        return Response(_like_body(state))


class PostSaveApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: None, **error_responses(401, 404)})
    def post(self, request, post_id: str):
        saves.post_save(user=request.user, post_id=_post_id(post_id))
        return Response(status=204)

    @extend_schema(request=None, responses={204: None, **error_responses(401, 404)})
    def delete(self, request, post_id: str):
        saves.post_unsave(user=request.user, post_id=_post_id(post_id))
        return Response(status=204)


class SavedPostsApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=PAGE_PARAMETERS,
        responses={200: s.PostListSerializer, **error_responses(400, 401)},
    )
    def get(self, request):
        page = parse_page_request(request.query_params)
        return Response(selectors.saved_posts_page(viewer_id=request.user.id, page=page))


class UserPostsApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        parameters=PAGE_PARAMETERS,
        responses={200: s.PostListSerializer, **error_responses(400, 404)},
    )
    def get(self, request, user_id: str):
        page = parse_page_request(request.query_params)
        body = selectors.user_posts_page(
            viewer_id=_viewer_id(request), owner_id=parse_id(user_id, "User not found."), page=page
        )
        return _or_404(body, "User not found.")


class TagPostsApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        parameters=PAGE_PARAMETERS,
        responses={200: s.PostListSerializer, **error_responses(400, 404)},
    )
    def get(self, request, name: str):
        tag = hashtag_normalize(name.lstrip("#"))
        if tag is None:
            raise not_found("Hashtag not found.")
        page = parse_page_request(request.query_params)
        return Response(selectors.tag_posts_page(viewer_id=_viewer_id(request), tag=tag, page=page))


class LocationsApi(APIView):
    def get_permissions(self):
        return [AllowAny()] if self.request.method == "GET" else [IsAuthenticated()]

    @extend_schema(
        parameters=[OpenApiParameter("q", str, description="Name prefix.")],
        responses={200: s.LocationListSerializer},
    )
    def get(self, request):
        query = request.query_params.get("q", "")[:100].replace("\x00", "")
        return Response({"locations": selectors.locations_search(query=query)})

    @extend_schema(
        request=s.LocationInputSerializer,
        responses={
            201: s.LocationSerializer,
            200: s.LocationSerializer,
            **error_responses(400, 401),
        },
    )
    def post(self, request):
        data = s.LocationInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = locations.location_create(**data.validated_data)
        place = result.location
        body = {
            "location_id": str(place.id),
            "name": place.name,
            "lat": place.lat,
            "lng": place.lng,
        }
        return Response(body, status=201 if result.created else 200)


class LocationPostsApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        parameters=PAGE_PARAMETERS,
        responses={200: s.PostListSerializer, **error_responses(400, 404)},
    )
    def get(self, request, location_id: str):
        page = parse_page_request(request.query_params)
        body = selectors.location_posts_page(
            viewer_id=_viewer_id(request),
            location_id=parse_id(location_id, "Location not found."),
            page=page,
        )
        if body is None:
            raise not_found("Location not found.")
        return Response(body)
