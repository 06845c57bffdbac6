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
- Group commit: appends to one channel made while an earlier write to it is in flight wait for it
  and are then written together, in call order, with one counter ``$inc`` by their number and one
  ordered ``insert_many`` (at most ``MAX_GROUP``). Each caller gets its own entry or error; a failed
  group leaves holes, never duplicates, as above. A caller cancelled before its group is formed is
  left out; after, its message is stored anyway (it is in history for recovery).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import BulkWriteError

from storage.batch import Batcher
from storage.mongo import Database, find_in, update_in

log = logging.getLogger("storage.history")

TRIM_EVERY = 64
POSITION_WINDOW = 256  # newest seqs looked at for the stored position (publishes in flight on one channel)
MAX_GROUP = 128  # messages per group commit: well inside POSITION_WINDOW, so a group in flight is seen


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
        self._queued: dict[str, list[_Append]] = {}  # channel -> appends waiting for the next group
        self._writers: dict[str, asyncio.Task[None]] = {}  # channel -> its group writer, while it runs

    async def append(self, channel: str, type: str, data: Any) -> Entry:
        """Store one message with the channel's next seq (group-committed, see the module)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Entry] = loop.create_future()
        self._queued.setdefault(channel, []).append(_Append(type, data, done))
        if channel not in self._writers:
            self._writers[channel] = loop.create_task(self._write_groups(channel), name="history-group")
        return await done

    async def _write_groups(self, channel: str) -> None:
        try:
            while queued := self._queued.get(channel):
                group = [a for a in queued[:MAX_GROUP] if not a.done.done()]
                del queued[:MAX_GROUP]
                if not queued:
                    del self._queued[channel]
                if group:
                    await self._write_group(channel, group)
        except BaseException as exc:
            for waiting in self._queued.pop(channel, []):
                if not waiting.done.done():
                    waiting.done.set_exception(RuntimeError(f"history writer stopped: {exc!r}"))
            raise
        finally:
            del self._writers[channel]

    async def _write_group(self, channel: str, group: list[_Append]) -> None:
        try:
            last = await self._next(channel, len(group))
            now = int(time.time() * 1000)
            first = last - len(group) + 1
            entries = [Entry(channel, first + i, a.type, a.data, now) for i, a in enumerate(group)]
            docs = [{"c": channel, "s": e.seq, "t": e.type, "d": e.data, "ts": e.ts} for e in entries]
            try:
                await self._messages.insert_many(docs, ordered=True)
                stored, error = len(entries), None
            except BulkWriteError as exc:
                stored, error = int(exc.details.get("nInserted", 0)), exc
            crossed = last // TRIM_EVERY > (first - 1) // TRIM_EVERY  # the group passed a multiple of it
            if crossed and last > self.size and not channel.startswith(self.keep):
                await self._trim_or_log(channel, last - self.size)
        except asyncio.CancelledError:
            for a in group:
                a.done.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - handed to every caller of the group
            for a in group:
                if not a.done.done():
                    a.done.set_exception(exc)
            return
        for i, (a, entry) in enumerate(zip(group, entries, strict=True)):
            if a.done.done():
                continue
            if i < stored:
                a.done.set_result(entry)
            else:
                assert error is not None
                a.done.set_exception(error)

    async def _trim_or_log(self, channel: str, upto: int) -> None:
        try:
            await self._trim(channel, upto)
        except Exception:  # noqa: BLE001 - the messages are stored; the next trim catches up
            log.warning("trimming %s failed", channel, exc_info=True)

    async def _next(self, channel: str, n: int = 1) -> int:
        """The last of ``n`` seqs allocated on the channel. The counter is created apart from the
        increment: an upserting increment races with itself on a new channel (duplicate key, or no
        document returned) and could use up a seq that is never written."""
        for _ in range(3):
            counter = await self._counters.find_one_and_update(
                {"_id": channel}, {"$inc": {"seq": n}}, return_document=ReturnDocument.AFTER
            )
            if counter is not None:
                return int(counter["seq"])
            await self._create_counters([channel])
        raise RuntimeError(f"could not allocate a sequence number on {channel}")

    async def _create_counters(self, channels: list[str], seq: int = 0) -> set[str]:
        """Create the counters of ``channels`` at ``seq``; the channels whose counter this call
        created (another writer may have created the others first)."""
        try:
            await self._counters.insert_many([{"_id": c, "seq": seq} for c in channels], ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != 11000 for e in errors):
                raise
            taken = {int(e["index"]) for e in errors}
            return {c for i, c in enumerate(channels) if i not in taken}
        return set(channels)

    async def append_many(self, items: list[tuple[str, str, Any]]) -> list[Entry]:
        """Append one message to each of many channels (a fan-out to personal channels) in bulk.

        Sequence numbers: the counters are read (``$in`` in groups, storage/mongo.py); a channel
        without one gets seq 1 by creating its counter at 1 (one ``insert_many``: no increment,
        no read-back); the others are incremented by one ``update_many`` per group and read back.
        A channel that another writer touched in between (its counter was created by someone
        else, or moved by more than one) is done one by one by ``append``; the seq our increment
        took there is a hole, never a duplicate. Messages are stored with one ``insert_many``."""
        if not items:
            return []
        channels = [c for c, _, _ in items]
        if len(set(channels)) != len(channels):
            return [await self.append(c, t, d) for c, t, d in items]
        before = await self._find_last_seqs(channels)
        seqs: dict[str, int] = {}
        new = [c for c in channels if c not in before]
        if new:
            seqs.update(dict.fromkeys(await self._create_counters(new, seq=1), 1))
        old = [c for c in channels if c in before]
        if old:
            await update_in(self._counters, "_id", old, None, {"$inc": {"seq": 1}})
            after = await self._find_last_seqs(old)
            seqs.update({c: after[c] for c in old if after.get(c) == before[c] + 1})
        now = int(time.time() * 1000)
        entries: list[Entry | None] = [
            Entry(c, seqs[c], t, d, now) if c in seqs else None for c, t, d in items
        ]
        docs = [{"c": e.channel, "s": e.seq, "t": e.type, "d": e.data, "ts": e.ts} for e in entries if e]
        if docs:
            await self._messages.insert_many(docs, ordered=False)
        for i, (channel, type, data) in enumerate(items):
            if entries[i] is None:
                entries[i] = await self.append(channel, type, data)
        return [e for e in entries if e is not None]

    async def last_seq(self, channel: str) -> int:
        return await self._last_seqs.get(channel)

    async def _find_last_seqs(self, channels: list[str]) -> dict[str, int]:
        found = await find_in(self._counters, "_id", channels, None, {"seq": 1})
        return {doc["_id"]: int(doc["seq"]) for doc in found}

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


@dataclass(frozen=True)
class _Append:
    type: str
    data: Any
    done: asyncio.Future[Entry]


def _entry(doc: dict[str, Any]) -> Entry:
    return Entry(doc["c"], int(doc["s"]), doc["t"], doc["d"], int(doc["ts"]))
