"""IDs and rows for tests, placed on chosen logical shards."""

import time

from instagram.ids import compose_id
from instagram.sharding import shard_map


def id_on(alias: str, *, sequence: int = 0) -> int:
    """An ID (as a user or owner ID) whose logical shard maps to `alias`."""
    start, _ = shard_map().logical_shards_of(alias)[0]
    return compose_id(ms=int(time.time() * 1000), logical_shard=start + 7, sequence=sequence)
