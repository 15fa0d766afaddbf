from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import Follower, Following, User, UserCounters
from accounts.selectors import relationship
from instagram.sharding import shard_aliases

ALL = "__all__"
pytestmark = pytest.mark.django_db(databases=ALL)


def test_seed_demo_builds_a_consistent_graph_once():
    first, second = StringIO(), StringIO()

    call_command("seed_demo", "--fans", "300", stdout=first)
    counts_after_first = User.objects.count()
    call_command("seed_demo", "--fans", "300", stdout=second)

    celebrity = User.objects.get(username="celebrity")
    assert counts_after_first == User.objects.count() == 1 + 50 + 1 + 300
    assert second.getvalue() == "Demo data already present\n"
    assert User.objects.filter(is_private=True).count() == 1
    assert relationship(None, celebrity.id).follower_count == 350
    for alias in shard_aliases():
        for counters in UserCounters.objects.using(alias):
            followers = Follower.objects.using(alias).filter(followee_id=counters.user_id).count()
            following = Following.objects.using(alias).filter(follower_id=counters.user_id).count()
            assert (counters.follower_count, counters.following_count) == (followers, following)
    assert sum(Following.objects.using(a).count() for a in shard_aliases()) == sum(
        Follower.objects.using(a).count() for a in shard_aliases()
    )
