"""Loads the store's Lua scripts (``lua/<name>.lua``) behind the record's field names, once per store.

A script runs after a prelude: ``F``, the table of the record's field names built from ``record.Field``
(reading a name not declared there raises an error rather than giving nil), then every shared function
of ``lua/shared/`` (``end_run``, ``push_attempt``, the due indexes' ``due_at``, ``not_due`` and
``owe_postback``, the stats' ``count_outcome`` with its ``STATS_PREFIX`` and ``STATS_KEEP``, and
``score_attempt`` with ``S``, the routing evidence's names). Scripts name fields ``F.status``, never
``'status'``, so a field renamed in ``record.py`` cannot leave a script behind.
"""

from __future__ import annotations

from importlib import resources

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from dispatcher.constants import (
    SCORE_BUCKET,
    SCORE_KEEP,
    SCORES_INDEX,
    SCORES_PREFIX,
    STATS_KEEP,
    STATS_PREFIX,
    prefix_block_key,
)
from dispatcher.store.record import Field

LUA = resources.files("dispatcher.store") / "lua"
FIELDS = (
    "local F = setmetatable({"
    + ", ".join(f"{field}='{field}'" for field in Field)
    + "}, {__index = function(_, name) error('no OTP record field ' .. name) end})\n"
)
NAMES = (
    f"local STATS_PREFIX, STATS_KEEP = '{STATS_PREFIX}', {STATS_KEEP}\n"
    f"local S = {{prefix='{SCORES_PREFIX}', index='{SCORES_INDEX}', block='{prefix_block_key('')}',"
    f" bucket={SCORE_BUCKET}, keep={SCORE_KEEP}}}\n"
)
"""The keys the shared functions write: the stats' (``shared/stats.lua``) and the routing evidence's, with its
bucket (``shared/attempt_score.lua``)."""
SHARED = NAMES + "".join(path.read_text() for path in sorted((LUA / "shared").iterdir(), key=lambda path: path.name))


def record_script(redis: aioredis.Redis, source: str) -> AsyncScript:
    """A Lua script over OTP records: ``source`` runs with ``F``, the record's field names, in scope."""
    return redis.register_script(FIELDS + source)


def load(redis: aioredis.Redis, name: str) -> AsyncScript:
    """The store's script ``lua/<name>.lua``, with the shared functions."""
    return record_script(redis, SHARED + (LUA / f"{name}.lua").read_text())
