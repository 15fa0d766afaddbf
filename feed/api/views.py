from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from feed.selectors import feed_home_page
from instagram.api import PAGE_PARAMETERS, error_responses
from instagram.pagination import parse_page_request
from posts.api.serializers import PostListSerializer


class FeedApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[
            *PAGE_PARAMETERS,
            OpenApiParameter("ranked", bool, description="1: ranked instead of newest first."),
        ],
        responses={200: PostListSerializer, **error_responses(400, 401, 503)},
    )
    def get(self, request):
        page = parse_page_request(request.query_params)
        ranked = request.query_params.get("ranked", "0") in ("1", "true")
        return Response(feed_home_page(viewer_id=request.user.id, page=page, ranked=ranked))
