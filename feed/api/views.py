import logging

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from redis.exceptions import RedisError
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import authenticated_by_entry, bearer_key_hash
from accounts.services.auth import token_cache_key
from feed.selectors import RANKED_CURSOR, feed_first_read, feed_home_page
from instagram.api import PAGE_PARAMETERS, error_responses
from instagram.errors import ApiError
from instagram.pagination import parse_page_request
from posts.api.serializers import PostListSerializer

logger = logging.getLogger(__name__)

_RANKED = {"0": False, "1": True, "false": False, "true": True}


class FeedApi(APIView):
    """The home feed. A bearer token's check and the page's first Redis read are one call on a
    single Redis (its hottest path): anything the entry alone does not settle (no entry, a
    revoked or expired token, activity to record, a cluster, a session) authenticates as every
    other endpoint does, and the page is read after."""

    permission_classes = [IsAuthenticated]
    first_read = None

    def initial(self, request, *args, **kwargs):
        ranked = _RANKED.get(request.query_params.get("ranked") or "0")
        if request.method == "GET" and ranked is False and not settings.REDIS_CLUSTER:
            self.first_read = self._read_with_token(request)
        super().initial(request, *args, **kwargs)

    @staticmethod
    def _read_with_token(request):
        try:
            key_hash = bearer_key_hash(request)
            page = parse_page_request(request.query_params)
        except (AuthenticationFailed, ApiError):  # answered by the usual path, in its order
            return None
        if key_hash is None:
            return None
        try:
            entry, first = feed_first_read(token_cache_key(key_hash), page)
        except RedisError:
            logger.warning("token and timeline read failed", exc_info=True)
            return None
        if first is None or authenticated_by_entry(request, key_hash, entry) is None:
            return None
        return first

    @extend_schema(
        parameters=[
            *PAGE_PARAMETERS,
            OpenApiParameter(
                "ranked",
                {"type": "string", "enum": list(_RANKED), "default": "0"},
                description="1 (or true): ranked instead of newest first.",
            ),
        ],
        responses={200: PostListSerializer, **error_responses(400, 401, 503)},
    )
    def get(self, request):
        ranked = _RANKED.get(request.query_params.get("ranked") or "0")
        if ranked is None:
            raise ApiError(400, "invalid_ranked", "ranked must be 1 or 0.")
        page = parse_page_request(request.query_params, kind=RANKED_CURSOR if ranked else None)
        first = None if ranked else self.first_read
        return Response(
            feed_home_page(viewer_id=request.user.id, page=page, ranked=ranked, first=first)
        )
