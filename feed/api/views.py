from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from feed.selectors import RANKED_CURSOR, feed_home_page
from instagram.api import PAGE_PARAMETERS, error_responses
from instagram.errors import ApiError
from instagram.pagination import parse_page_request
from posts.api.serializers import PostListSerializer

_RANKED = {"0": False, "1": True, "false": False, "true": True}


class FeedApi(APIView):
    permission_classes = [IsAuthenticated]

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
        return Response(feed_home_page(viewer_id=request.user.id, page=page, ranked=ranked))
