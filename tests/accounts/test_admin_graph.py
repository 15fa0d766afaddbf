"""Graph rows in the admin are for looking at: changes go through the API or the services."""

import pytest

from accounts.models import Block, CloseFriend, Follower, Following, FollowRequest
from instagram.sharding import shard_aliases

ALL = "__all__"
pytestmark = pytest.mark.django_db(databases=ALL)


@pytest.fixture
def graph(make_user, client_for, settle, redis_client):
    """One row of each graph model: a follow (both copies), a request, a block, a close friend."""
    ann = make_user("ann", shard="shard_0")
    ben = make_user("ben", shard="shard_1")
    pia = make_user("pia", shard="shard_1", private=True)
    cat = make_user("cat", shard="shard_0")
    client_for(ann).post(f"/api/v1/users/{ben.id}/follow")
    client_for(ann).post(f"/api/v1/users/{pia.id}/follow")
    client_for(cat).post(f"/api/v1/users/{ben.id}/block")
    client_for(ben).post(f"/api/v1/users/{ann.id}/close_friend")
    settle()


def _rows(model) -> dict[str, list[dict]]:
    return {alias: list(model.objects.using(alias).values()) for alias in shard_aliases()}


@pytest.mark.parametrize(
    "model", [Following, Follower, FollowRequest, Block, CloseFriend], ids=lambda m: m.__name__
)
def test_graph_rows_can_be_listed_and_opened_in_the_admin_but_not_changed(
    model, graph, admin_client_all
):
    before = _rows(model)
    alias, rows = next((alias, rows) for alias, rows in before.items() if rows)
    row_id = rows[0]["id"]
    base = f"/admin/accounts/{model._meta.model_name}/"
    other_values = {name: "1" for name in rows[0] if name not in ("id", "created_at")}

    listed = admin_client_all.get(f"{base}?shard={alias}")
    opened = admin_client_all.get(f"{base}{row_id}/change/")
    refused = [
        admin_client_all.get(f"{base}add/"),
        admin_client_all.post(f"{base}add/", other_values),
        admin_client_all.post(f"{base}{row_id}/change/", other_values),
        admin_client_all.get(f"{base}{row_id}/delete/"),
        admin_client_all.post(f"{base}{row_id}/delete/", {"post": "yes"}),
    ]
    bulk = admin_client_all.post(
        f"{base}?shard={alias}",
        {"action": "delete_selected", "_selected_action": [row_id], "post": "yes"},
    )

    assert listed.status_code == opened.status_code == 200
    assert str(row_id).encode() in listed.content
    assert listed.context["action_form"] is None  # no action offered, delete_selected included
    assert b"delete_selected" not in listed.content
    assert [page.status_code for page in refused] == [403] * 5
    assert bulk.status_code == 200
    assert _rows(model) == before
