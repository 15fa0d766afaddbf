import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from accounts.models import FollowRequest, User
from tests.locks import lock_waiters, own_connections


@pytest.fixture
def switch_during_an_approval_batch(make_user, client_for, settle, monkeypatch):
    """`run(switch)`: a public account `cat` (on shard_1) with one pending request, whose
    approval batch is marked but not committed while `switch(cat)` runs in this thread (the
    batch waits up to 5 s for the switch to wait on its lock). Returns the switch's answer, how
    many approvals were committed when it answered, and `cat`."""
    from accounts.services import graph

    def run(switch):
        cat = make_user("cat", shard="shard_1", private=True)
        ann = make_user("ann", shard="shard_0")
        client_for(ann).post(f"/api/v1/users/{cat.id}/follow")
        User.objects.filter(pk=cat.pk).update(is_private=False)  # the switch to public committed
        graph.follow_requests_approve_all_later(target_id=cat.id)
        real_batch = graph._follow_requests_approve_batch
        batched = threading.Event()

        def batch_then_wait_for_the_switch(target_id, batch_size, **kwargs):
            approved = real_batch(target_id, batch_size, **kwargs)  # marked, not committed yet
            batched.set()
            deadline = time.monotonic() + 5
            while lock_waiters("shard_1") == 0 and time.monotonic() < deadline:
                time.sleep(0.02)
            return approved

        monkeypatch.setattr(graph, "_follow_requests_approve_batch", batch_then_wait_for_the_switch)
        with ThreadPoolExecutor(max_workers=1) as pool:
            worker = pool.submit(own_connections(settle))
            assert batched.wait(30)
            answer = switch(cat)
            approved_when_answered = (
                FollowRequest.objects.using("shard_1")
                .filter(target_id=cat.id, approved_at__isnull=False)
                .count()
            )
            worker.result(timeout=30)
        return answer, approved_when_answered, cat

    return run
