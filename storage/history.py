"""Durable channel history: per-channel sequence numbers and the messages a client may recover.

Contract:
- ``append`` gives each durable message the next sequence number of its channel (1, 2, 3, ...) and
  persists it before returning; a publisher that crashes between the two leaves a hole, never a
  duplicate (unique index on channel+seq).
- The newest ``size`` messages per channel are kept; older ones are trimmed, and ``since`` reports
  ``reset=True`` when a client asks for messages that are gone (or more than ``limit`` are missing).
- The counter runs ahead of what is stored: a seq is allocated, then written. ``stored_position``
  tells how far the channel is complete (every seq up to it stored, or given up as a publisher's
  hole), which is where a live reader can start without losing what is still being written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, ReturnDocument, UpdateOne
from pymongo.errors import BulkWriteError

from storage.batch import Batcher
from storage.mongo import Database

TRIM_EVERY = 64
POSITION_WINDOW = 256  # newest seqs looked at for the stored position (publishes in flight on one channel)


@dataclass(frozen=True)
class Entry:
    channel: str
    seq: int
    type: str
    data: Any
    ts: int  # server time, epoch milliseconds


async def create_indexes(db: Database) -> None:
    await db.history.create_index([("c", ASCENDING), ("s", ASCENDING)], unique=True)


class History:
    def __init__(self, db: Database, size: int, keep: tuple[str, ...] = ("room:", "backstage:")) -> None:
        """``size``: messages kept per channel, and the most a recovery replays. Channels whose name
        starts with one of ``keep`` are never trimmed: a webinar's room is its timeline."""
        self._messages = db.history
        self._counters = db.channel_seq
        # every room join reads its room's seq: concurrent reads share one query (storage/batch.py)
        self._last_seqs: Batcher[str, int] = Batcher(self._find_last_seqs, missing=0)
        self.size = size
        self.keep = keep

    async def append(self, channel: str, type: str, data: Any) -> Entry:
        counter = await self._next(channel)
        entry = Entry(channel, counter, type, data, int(time.time() * 1000))
        await self._messages.insert_one({"c": channel, "s": entry.seq, "t": type, "d": data, "ts": entry.ts})
        if entry.seq % TRIM_EVERY == 0 and entry.seq > self.size and not channel.startswith(self.keep):
            await self._trim(channel, entry.seq - self.size)
        return entry

    async def _next(self, channel: str) -> int:
        """The channel's next seq. The counter is created apart from the increment: an upserting
        increment races with itself on a new channel (duplicate key, or no document returned) and
        could use up a seq that is never written."""
        for _ in range(3):
            counter = await self._counters.find_one_and_update(
                {"_id": channel}, {"$inc": {"seq": 1}}, return_document=ReturnDocument.AFTER
            )
            if counter is not None:
                return int(counter["seq"])
            await self._create_counters([channel])
        raise RuntimeError(f"could not allocate a sequence number on {channel}")

    async def _create_counters(self, channels: list[str]) -> None:
        try:
            await self._counters.insert_many([{"_id": c, "seq": 0} for c in channels], ordered=False)
        except BulkWriteError as exc:
            if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                raise

    async def append_many(self, items: list[tuple[str, str, Any]]) -> list[Entry]:
        """Append one message to each of many channels with two round trips plus one insert.

        Sequence numbers come from one bulk ``$inc`` and a read-back; a channel that another writer
        touched in between is detected (its counter moved more than once) and done one by one.
        """
        if not items:
            return []
        channels = [c for c, _, _ in items]
        if len(set(channels)) != len(channels):
            return [await self.append(c, t, d) for c, t, d in items]
        before = {
            doc["_id"]: int(doc["seq"])
            async for doc in self._counters.find({"_id": {"$in": channels}}, {"seq": 1})
        }
        missing = [c for c in channels if c not in before]
        if missing:
            await self._create_counters(missing)
        await self._counters.bulk_write(
            [UpdateOne({"_id": c}, {"$inc": {"seq": 1}}) for c in channels], ordered=False
        )
        after = {
            doc["_id"]: int(doc["seq"])
            async for doc in self._counters.find({"_id": {"$in": channels}}, {"seq": 1})
        }
        now = int(time.time() * 1000)
        entries: list[Entry | None] = []
        racy: list[int] = []
        for i, (channel, type, data) in enumerate(items):
            seq = after[channel]
            if seq != before.get(channel, 0) + 1:
                racy.append(i)
                entries.append(None)
            else:
                entries.append(Entry(channel, seq, type, data, now))
        docs = [{"c": e.channel, "s": e.seq, "t": e.type, "d": e.data, "ts": e.ts} for e in entries if e]
        if docs:
            await self._messages.insert_many(docs, ordered=False)
        for i in racy:
            channel, type, data = items[i]
            entries[i] = await self.append(channel, type, data)
        return [e for e in entries if e is not None]

    async def last_seq(self, channel: str) -> int:
        return await self._last_seqs.get(channel)

    async def _find_last_seqs(self, channels: list[str]) -> dict[str, int]:
        cursor = self._counters.find({"_id": {"$in": channels}}, {"seq": 1})
        return {doc["_id"]: int(doc["seq"]) async for doc in cursor}

    async def stored_position(self, channel: str, settle: float) -> tuple[int, int]:
        """``(position, allocated)``: the end of the channel's contiguous stored run, and its counter.

        A seq missing below a message written less than ``settle`` seconds ago, or above the newest
        stored one, may still be on its way (allocated, not yet written) and ends the run; one
        missing below an older message is a hole a crashed publisher left and does not. Only the
        newest ``POSITION_WINDOW`` seqs are looked at."""
        counter = await self._counters.find_one({"_id": channel}, {"seq": 1, "trimmed": 1})
        if counter is None:
            return 0, 0
        allocated = int(counter.get("seq", 0))
        position = max(allocated - POSITION_WINDOW, int(counter.get("trimmed", 0)), 0)
        query = {"c": channel, "s": {"$gt": position}}
        cursor = self._messages.find(query, {"_id": 0, "s": 1, "ts": 1}).sort("s", ASCENDING)
        stored = [(int(doc["s"]), int(doc["ts"])) async for doc in cursor]
        return complete_run(position, stored, settle), allocated

    async def since(self, channel: str, after: int, limit: int | None = None) -> tuple[list[Entry], bool]:
        """Messages with seq > ``after`` in order, and whether the client must reset instead."""
        limit = limit or self.size
        counter = await self._counters.find_one({"_id": channel}) or {"seq": 0, "trimmed": 0}
        last, trimmed = int(counter.get("seq", 0)), int(counter.get("trimmed", 0))
        if after > last:
            return [], True  # the client claims a future it cannot have seen (e.g. data was reset)
        if after < trimmed or last - after > limit:
            return [], True
        cursor = self._messages.find({"c": channel, "s": {"$gt": after}}).sort("s", ASCENDING).limit(limit)
        return [_entry(doc) async for doc in cursor], False

    async def read(self, channel: str, after: int = 0, limit: int = 1000) -> list[Entry]:
        cursor = self._messages.find({"c": channel, "s": {"$gt": after}}).sort("s", ASCENDING).limit(limit)
        return [_entry(doc) async for doc in cursor]

    async def read_complete(self, channel: str, after: int, limit: int, settle: float) -> list[Entry]:
        """Like ``read``, but only up to the end of the complete run (``stored_position``'s rule): a
        reader that continues live from the last entry returned loses nothing still being written."""
        entries = await self.read(channel, after, limit)
        end = complete_run(after, [(e.seq, e.ts) for e in entries], settle)
        return [e for e in entries if e.seq <= end]

    async def _trim(self, channel: str, upto: int) -> None:
        await self._counters.update_one({"_id": channel}, {"$max": {"trimmed": upto}})
        await self._messages.delete_many({"c": channel, "s": {"$lte": upto}})


def complete_run(position: int, stored: list[tuple[int, int]], settle: float) -> int:
    """The end of the complete run after ``position`` through ``stored`` ((seq, ts) in seq order): a
    seq missing below a message written less than ``settle`` seconds ago may still be on its way and
    ends the run; one missing below an older message is a crashed publisher's hole and does not."""
    recent = int((time.time() - settle) * 1000)
    for seq, ts in stored:
        if seq != position + 1 and ts > recent:
            break
        position = seq
    return position


def _entry(doc: dict[str, Any]) -> Entry:
    return Entry(doc["c"], int(doc["s"]), doc["t"], doc["d"], int(doc["ts"]))
