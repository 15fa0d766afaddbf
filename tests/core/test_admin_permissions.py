"""Admin actions change rows: a staff member who may only view them cannot run them."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from accounts.models import User
from instagram.models import OutboxEvent
from posts.models import Post

pytestmark = pytest.mark.django_db(databases="__all__")


def _staff_with(*codenames: str) -> Client:
    intern = User.objects.create_user(username="intern", password="pw-admin-123456", is_staff=True)
    intern.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    browser = Client()
    browser.force_login(intern)
    return browser


@pytest.mark.parametrize("action", ["deactivate", "reactivate", "verify", "unverify"])
def test_a_staff_member_who_may_only_view_users_cannot_run_their_actions(
    make_user, redis_client, action
):
    ann = make_user("ann", shard="shard_0")
    before = User.objects.filter(pk=ann.pk).values_list("is_active", "is_verified").get()
    browser = _staff_with("view_user")

    listed = browser.get("/admin/accounts/user/")
    browser.post("/admin/accounts/user/", {"action": action, "_selected_action": [str(ann.pk)]})

    assert listed.status_code == 200
    assert listed.context["action_form"] is None  # no action is offered at all
    assert User.objects.filter(pk=ann.pk).values_list("is_active", "is_verified").get() == before


@pytest.mark.parametrize("action", ["soft_delete", "restore"])
def test_a_staff_member_who_may_only_view_posts_cannot_delete_or_restore_them(
    make_user, post_for, redis_client, action
):
    ann = make_user("ann", shard="shard_0")
    post_id = post_for(ann, "hello")
    if action == "restore":
        from posts.services.posts import post_delete

        post_delete(author=ann, post_id=post_id)  # restorable, within the grace period
    before = Post.objects.using("shard_0").values_list("deleted_at", flat=True).get(id=post_id)
    browser = _staff_with("view_post")

    browser.post(
        "/admin/posts/post/?shard=shard_0", {"action": action, "_selected_action": [str(post_id)]}
    )

    assert Post.objects.using("shard_0").values_list("deleted_at", flat=True).get(id=post_id) == (
        before
    )


def test_a_staff_member_who_may_only_view_events_cannot_requeue_them(make_user, redis_client):
    from django.db import transaction

    from accounts.services.graph import GraphEvent
    from instagram.outbox import outbox_enqueue

    ann = make_user("ann", shard="shard_0")
    with transaction.atomic(using="shard_0"):
        event = outbox_enqueue(
            partition_id=ann.id, kind=GraphEvent.FOLLOW_SYNC, payload={"follower_id": 1}
        )
    OutboxEvent.objects.using("shard_0").filter(id=event.id).update(status="dead", attempts=12)
    browser = _staff_with("view_outboxevent")

    browser.post(
        "/admin/instagram/outboxevent/?shard=shard_0",
        {"action": "requeue", "_selected_action": [str(event.id)]},
    )

    assert OutboxEvent.objects.using("shard_0").values_list("status", "attempts").get(
        id=event.id
    ) == ("dead", 12)


def test_a_staff_member_who_may_change_users_can_still_deactivate_them(make_user, redis_client):
    ann = make_user("ann", shard="shard_0")
    browser = _staff_with("view_user", "change_user")

    browser.post(
        "/admin/accounts/user/", {"action": "deactivate", "_selected_action": [str(ann.pk)]}
    )

    assert User.objects.filter(pk=ann.pk).values_list("is_active", flat=True).get() is False
