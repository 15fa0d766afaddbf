"""Logical shards, the shard map, the database router and the wrong-alias guard.

8192 logical shards map by ranges to physical database aliases (`shard_0`, `shard_1`, ...).
Moving a logical shard to a new server changes only SHARD_MAP, never an ID.

A sharded model subclasses `ShardedModel` and names its partition key (the attribute whose
value, an ID, carries the logical shard). Global models stay on `default`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from functools import lru_cache

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import models
from django.dispatch import receiver

from instagram.ids import LOGICAL_SHARDS, logical_shard_of

GLOBAL_ALIAS = "default"


class ShardRoutingError(RuntimeError):
    """A sharded table was used without, or with the wrong, database alias."""


class ShardMap:
    """Sorted, contiguous ranges of logical shards, each owned by one physical alias."""

    def __init__(self, ranges: list[tuple[int, int, str]]):
        ranges = sorted(ranges)
        expected = 0
        for start, end, _alias in ranges:
            if start != expected or end < start:
                raise ValueError(f"shard map must cover 0..{LOGICAL_SHARDS - 1} without gaps")
            expected = end + 1
        if expected != LOGICAL_SHARDS:
            raise ValueError(f"shard map must cover 0..{LOGICAL_SHARDS - 1} without gaps")
        self.ranges = ranges
        # The alias of every logical shard: a list index on hot paths (a page groups dozens of
        # IDs by shard), instead of a search of the ranges.
        self.by_logical = [alias for start, end, alias in ranges for _ in range(start, end + 1)]

    @classmethod
    def even(cls, aliases: list[str]) -> ShardMap:
        size = LOGICAL_SHARDS // len(aliases)
        ranges = []
        for index, alias in enumerate(aliases):
            start = index * size
            end = LOGICAL_SHARDS - 1 if index == len(aliases) - 1 else start + size - 1
            ranges.append((start, end, alias))
        return cls(ranges)

    @classmethod
    def parse(cls, text: str) -> ShardMap:
        """`"0-4095:shard_0,4096-8191:shard_1"`."""
        ranges = []
        for item in text.split(","):
            span, _, alias = item.strip().partition(":")
            start, _, end = span.partition("-")
            try:
                ranges.append((int(start), int(end or start), alias.strip()))
            except ValueError:
                raise ValueError(f"shard map items are 'start-end:alias', not {item!r}") from None
        return cls(ranges)

    def spec(self) -> str:
        """The map as SHARD_MAP writes it, adjacent ranges of one alias as one: two specs are
        equal exactly when they place every logical shard alike."""
        merged: list[list] = []
        for start, end, alias in self.ranges:
            if merged and merged[-1][2] == alias:
                merged[-1][1] = end
            else:
                merged.append([start, end, alias])
        return ",".join(f"{start}-{end}:{alias}" for start, end, alias in merged)

    def alias_for_logical(self, logical_shard: int) -> str:
        if not 0 <= logical_shard < LOGICAL_SHARDS:
            raise ValueError(f"logical shard {logical_shard} out of range")
        return self.by_logical[logical_shard]

    def logical_shards_of(self, alias: str) -> list[tuple[int, int]]:
        return [(start, end) for start, end, owner in self.ranges if owner == alias]


def shard_aliases() -> list[str]:
    """Every physical shard alias, in order."""
    return [alias for alias in settings.DATABASES if alias.startswith("shard_")]


@lru_cache(maxsize=1)
def _shard_map_for(spec: str, aliases: tuple[str, ...]) -> ShardMap:
    shard_map = ShardMap.parse(spec) if spec else ShardMap.even(list(aliases))
    unknown = {alias for _, _, alias in shard_map.ranges} - set(aliases)
    if unknown:
        raise ValueError(f"SHARD_MAP names unknown aliases: {sorted(unknown)}")
    return shard_map


# The map of the current settings, kept until they change, and since when it has been used
# with no map recorded to check it against (None: checked, or not to be). Read and replaced
# whole, so a thread never sees one half-updated.
_state: dict[str, ShardMap | float | None] = {"map": None, "unrecorded_since": None}


class ShardMapChanged(ImproperlyConfigured):
    """The configured shard map places rows elsewhere than the recorded one did."""


def configured_shard_map() -> ShardMap:
    """The map the settings describe (SHARD_MAP, else an even split of the shard databases)."""
    return _shard_map_for(settings.SHARD_MAP, tuple(shard_aliases()))


def shard_map() -> ShardMap:
    """The map every row is routed by: the configured one, checked once per process against
    the one recorded when the shards were first migrated (SHARD_MAP_CHECK), so a shard URL
    added without pinning SHARD_MAP, or a changed SHARD_COUNT, fails closed instead of
    sending reads and writes for rows that exist to databases that do not hold them."""
    cached, since = _state["map"], _state["unrecorded_since"]
    if isinstance(cached, ShardMap) and (
        since is None or time.monotonic() - since <= RECHECK  # type: ignore[operator]
    ):
        return cached
    current = configured_shard_map()
    recorded = not settings.SHARD_MAP_CHECK or shard_map_verify(current)
    _state["unrecorded_since"] = None if recorded else time.monotonic()
    _state["map"] = current
    return current


RECHECK = 30.0  # seconds a process routes by an unrecorded map before it looks again


def shard_map_recorded() -> str | None:
    """The recorded map's spec; None before the first `migrate_all` recorded one."""
    from django.db import connections

    with connections[GLOBAL_ALIAS].cursor() as cursor:
        cursor.execute("SELECT to_regclass('instagram_shardmaprecord') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return None
        cursor.execute("SELECT spec FROM instagram_shardmaprecord ORDER BY id DESC LIMIT 1")
        row = cursor.fetchone()
    return row[0] if row else None


def shard_map_verify(current: ShardMap) -> bool:
    """Raise ShardMapChanged if another map is recorded; False if none is yet."""
    recorded = shard_map_recorded()
    if recorded is None:
        return False
    if ShardMap.parse(recorded).spec() != current.spec():
        raise ShardMapChanged(
            f"The shard databases hold rows placed by the shard map {recorded!r}, but this "
            f"configuration maps {current.spec()!r}. Set SHARD_MAP={recorded} (new shard "
            "databases then hold no range until one is moved to them), or move the rows first "
            "and then record the new map with `manage.py shard_map --record`."
        )
    return True


# Sharded tables whose rows say where they were placed: the logical shard of their key.
# (The users' counters: one row per user, so an upgrade's check reads little.)
_PLACED_BY = (("accounts_usercounters", "user_id"),)


def shard_map_misplaced(candidate: ShardMap) -> dict[str, int]:
    """Rows each shard database holds that `candidate` would route elsewhere (by the users'
    counters): an upgrade's first record must be the map the rows were placed
    by. A database that has none of these tables yet counts none."""
    from django.db import connections

    misplaced: dict[str, int] = {}
    for alias in shard_aliases():
        owned = candidate.logical_shards_of(alias)
        outside = (
            " AND ".join(
                f"NOT ((({{key}} >> 10) & 8191) BETWEEN {start} AND {end})" for start, end in owned
            )
            or "true"
        )
        count = 0
        with connections[alias].cursor() as cursor:
            for table, key in _PLACED_BY:
                cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
                if not cursor.fetchone()[0]:
                    continue
                cursor.execute(
                    f"SELECT count(*) FROM (SELECT 1 FROM {table} "
                    f"WHERE {outside.format(key=key)} LIMIT 1000) found"
                )
                count += cursor.fetchone()[0]
        if count:
            misplaced[alias] = count
    return misplaced


@receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs) -> None:
    if setting in ("DATABASES", "SHARD_MAP", "SHARD_MAP_CHECK"):
        _state["map"] = None


def alias_for_logical_shard(logical_shard: int) -> str:
    return shard_map().alias_for_logical(logical_shard)


def alias_for_id(id_value: int) -> str:
    """The alias holding the row with this ID (or partitioned by this user/post ID)."""
    return shard_map().alias_for_logical(logical_shard_of(id_value))


def alias_for_user(user_or_id: models.Model | int) -> str:
    user_id = user_or_id.pk if isinstance(user_or_id, models.Model) else user_or_id
    return alias_for_id(user_id)


def group_by_alias(ids: Iterable[int]) -> dict[str, list[int]]:
    """IDs grouped by the alias that holds them, for one query per shard."""
    aliases = shard_map().by_logical
    grouped: dict[str, list[int]] = defaultdict(list)
    for id_value in ids:
        grouped[aliases[logical_shard_of(id_value)]].append(id_value)
    return dict(grouped)


class ShardedModel(models.Model):
    """A table that exists on every shard database; each row lives where its key says."""

    # Attribute (attname) whose value is an ID carrying the row's logical shard.
    partition_key: str = "id"

    class Meta:
        abstract = True

    def shard_alias(self) -> str:
        key = getattr(self, self.partition_key)
        if key is None:
            raise ShardRoutingError(
                f"{type(self).__name__}.{self.partition_key} is not set: cannot place the row"
            )
        return alias_for_id(key)


def is_sharded(model: type[models.Model]) -> bool:
    return isinstance(model, type) and issubclass(model, ShardedModel)


class ShardRouter:
    """Global models on `default`; sharded models on every shard, addressed explicitly."""

    def _alias(self, model, hints) -> str | None:
        if not is_sharded(model):
            return GLOBAL_ALIAS
        instance = hints.get("instance")
        if isinstance(instance, ShardedModel):
            if instance._state.db:
                return instance._state.db
            return instance.shard_alias()
        raise ShardRoutingError(
            f"{model.__name__} is sharded: query it with .using(<alias>) "
            "(see instagram.sharding.alias_for_id)"
        )

    def db_for_read(self, model, **hints):
        return self._alias(model, hints)

    def db_for_write(self, model, **hints):
        return self._alias(model, hints)

    def allow_relation(self, obj1, obj2, **hints):
        # Relations across databases cannot be joined; a sharded row may only point at
        # another row on its own shard (cross-shard references are plain ID columns).
        return obj1._state.db == obj2._state.db

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        target = hints.get("target")
        if target == "all":
            return True
        if target == "shards":
            return db != GLOBAL_ALIAS
        if target == "global":
            return db == GLOBAL_ALIAS
        hinted = hints.get("model")
        if hinted is not None:
            app_label, model_name = hinted._meta.app_label, hinted._meta.model_name
        if model_name is None:
            return db == GLOBAL_ALIAS
        try:
            # The live model, not the historical one migrations pass: only it knows its base.
            sharded = is_sharded(apps.get_model(app_label, model_name))
        except LookupError:
            sharded = False
        return (db != GLOBAL_ALIAS) if sharded else (db == GLOBAL_ALIAS)


# --- Guard ---------------------------------------------------------------------------------
# With SHARD_GUARD on (tests, DEBUG): a sharded row saved or deleted on an alias other than the
# one its partition key maps to, or a table used on the wrong kind of database, raises.


def _tables() -> tuple[set[str], set[str]]:
    sharded: set[str] = set()
    global_: set[str] = set()
    for model in apps.get_models(include_auto_created=True):
        (sharded if is_sharded(model) else global_).add(model._meta.db_table)
    return sharded, global_


def check_row_alias(sender, instance, using, **kwargs) -> None:
    if is_sharded(sender):
        expected = instance.shard_alias()
        if using != expected:
            raise ShardRoutingError(
                f"{sender.__name__} row with {instance.partition_key}="
                f"{getattr(instance, instance.partition_key)} belongs on {expected}, not {using}"
            )
    elif using != GLOBAL_ALIAS and sender._meta.db_table != "django_migrations":
        raise ShardRoutingError(f"{sender.__name__} is global: it lives on default, not {using}")


def _statement_guard(alias: str, sharded_tables: set[str], global_tables: set[str]):
    forbidden = sharded_tables if alias == GLOBAL_ALIAS else global_tables
    quoted = [f'"{table}"' for table in forbidden if table != "django_migrations"]

    def guard(execute, sql, params, many, context):
        head = sql.lstrip()[:8].upper()
        if head.startswith(("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")):
            for table in quoted:
                if table in sql:
                    raise ShardRoutingError(f"table {table} used on database {alias!r}")
        return execute(sql, params, many, context)

    return guard


def install_statement_guard(sender, connection, **kwargs) -> None:
    if getattr(connection, "_shard_guard_installed", False):
        return
    sharded_tables, global_tables = _tables()
    connection.execute_wrappers.append(
        _statement_guard(connection.alias, sharded_tables, global_tables)
    )
    connection._shard_guard_installed = True
