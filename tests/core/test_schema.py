"""The OpenAPI schema states the limits the API enforces, so generated clients and contract
tests see the same API the server answers."""

import pytest

ALL = "__all__"

PAGE_LIMIT = {"type": "integer", "minimum": 1, "maximum": 50, "default": 20}
PAGE_CURSOR = {"type": "string", "maxLength": 256}


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from drf_spectacular.generators import SchemaGenerator

    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


def _operations(schema):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def _request_schemas(schema):
    """Every request body's properties, as (where, property schema), refs resolved."""
    components = schema["components"]["schemas"]

    def resolve(node):
        while "$ref" in node:
            node = components[node["$ref"].rsplit("/", 1)[-1]]
        return node

    for name, operation in _operations(schema):
        for media_type, content in operation.get("requestBody", {}).get("content", {}).items():
            body = resolve(content["schema"])
            for prop, prop_schema in body.get("properties", {}).items():
                yield f"{name} ({media_type}) {prop}", resolve(prop_schema)


def test_every_paginated_list_states_the_limit_and_cursor_bounds(schema):
    paged = {}
    for name, operation in _operations(schema):
        params = {p["name"]: p["schema"] for p in operation.get("parameters", [])}
        if "limit" in params or "cursor" in params:
            paged[name] = (params.get("limit"), params.get("cursor"))

    assert sorted(paged) == [
        "GET /api/v1/accounts/me/follow_requests",
        "GET /api/v1/accounts/me/saved",
        "GET /api/v1/comments/{comment_id}/replies",
        "GET /api/v1/feed",
        "GET /api/v1/locations/{location_id}/posts",
        "GET /api/v1/posts/{post_id}/comments",
        "GET /api/v1/posts/{post_id}/likers",
        "GET /api/v1/tags/{name}/posts",
        "GET /api/v1/users/{user_id}/followers",
        "GET /api/v1/users/{user_id}/following",
        "GET /api/v1/users/{user_id}/posts",
    ]
    wrong = {name: value for name, value in paged.items() if value != (PAGE_LIMIT, PAGE_CURSOR)}
    assert wrong == {}


def test_every_text_a_client_sends_has_a_maximum_length(schema):
    unbounded = []
    for where, prop in _request_schemas(schema):
        items = prop.get("items", {}) if prop.get("type") == "array" else prop
        if items.get("type") != "string" or items.get("format") == "binary":
            continue
        if not ("maxLength" in items or "enum" in items or "pattern" in items):
            unbounded.append(where)

    assert unbounded == []


def test_the_post_fields_state_their_limits(schema):
    components = schema["components"]["schemas"]
    create = components["PostCreateInputRequest"]["properties"]

    assert create["caption"] == {"type": "string", "maxLength": 2200, "default": ""}
    assert create["media_ids"] == {
        "type": "array",
        "items": {"type": "string", "pattern": "^[0-9]{1,19}$"},
        "minItems": 1,
        "maxItems": 10,
    }
    assert components["PatchedPostUpdateInputRequest"]["properties"]["caption"] == {
        "type": "string",
        "maxLength": 2200,
    }


def test_the_feed_states_its_ranked_values(schema):
    params = {p["name"]: p for p in schema["paths"]["/api/v1/feed"]["get"]["parameters"]}

    assert params["ranked"]["schema"] == {
        "type": "string",
        "enum": ["0", "1", "false", "true"],
        "default": "0",
    }


def test_the_media_endpoints_state_their_errors(schema):
    paths = schema["paths"]

    assert sorted(paths["/api/v1/media/upload"]["post"]["responses"]) == [
        "200", "400", "401", "413", "415", "429",
    ]  # fmt: skip
    assert sorted(paths["/api/v1/media/{media_id}"]["get"]["responses"]) == ["200", "401", "404"]
    assert sorted(paths["/api/v1/media/filters"]["get"]["responses"]) == ["200", "401"]


@pytest.mark.django_db(databases=ALL)
@pytest.mark.parametrize("method", ["post", "delete"])
@pytest.mark.parametrize("edge", ["follow", "block", "close_friend"])
def test_a_graph_change_aimed_at_oneself_answers_a_status_its_schema_states(
    schema, make_user, client_for, redis_client, method, edge
):
    ann = make_user("ann")

    response = getattr(client_for(ann), method)(f"/api/v1/users/{ann.id}/{edge}")

    declared = schema["paths"][f"/api/v1/users/{{user_id}}/{edge}"][method]["responses"]
    expected = {"post": 400, "delete": 400 if edge == "follow" else 204}[method]
    assert response.status_code == expected
    assert str(response.status_code) in declared


def test_the_input_fields_state_the_limits_the_services_enforce(schema):
    components = schema["components"]["schemas"]
    register = components["RegisterInputRequest"]["properties"]
    create = components["PostCreateInputRequest"]["properties"]
    comment = components["CommentInputRequest"]["properties"]["text"]

    assert register["username"] == {
        "type": "string", "minLength": 1, "maxLength": 30, "pattern": "^[A-Za-z0-9._]{1,30}$",
    }  # fmt: skip
    assert create["tagged_users"]["maxItems"] == 20
    assert create["alt_text"]["oneOf"][1]["items"] == {"type": "string", "maxLength": 1000}
    assert {"type": "string", "minLength": 1, "maxLength": 2200} in comment["oneOf"]


def test_the_media_answers_are_described(schema):
    paths, components = schema["paths"], schema["components"]["schemas"]
    upload = paths["/api/v1/media/upload"]["post"]["responses"]["200"]["content"]
    detail = paths["/api/v1/media/{media_id}"]["get"]["responses"]["200"]["content"]
    filters = paths["/api/v1/media/filters"]["get"]["responses"]["200"]["content"]
    media = components["Media"]["properties"]
    request = components["MediaUploadRequest"]["properties"]

    assert (
        upload == detail == {"application/json": {"schema": {"$ref": "#/components/schemas/Media"}}}
    )
    assert filters["application/json"]["schema"] == {"$ref": "#/components/schemas/FilterList"}
    assert {
        "media_id",
        "status",
        "urls",
        "blur_placeholder",
        "width",
        "height",
        "expires_at",
    } <= set(media)
    assert media["status"] == {"$ref": "#/components/schemas/MediaStatusEnum"}
    assert components["MediaStatusEnum"]["enum"] == ["processing", "ready", "failed"]
    assert (media["width"]["nullable"], media["blur_placeholder"]["nullable"]) == (True, True)
    enum = {k: components[v["allOf"][0]["$ref"].rsplit("/", 1)[1]]["enum"]
            for k, v in request.items() if k != "file"}  # fmt: skip
    assert enum["media_type"] == ["image", "video"]
    assert enum["filter_id"][:2] == ["normal", "clarendon"]
    assert "403" in paths["/api/v1/posts/{post_id}"]["delete"]["responses"]
