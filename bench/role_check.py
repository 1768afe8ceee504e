"""Microbenchmark of the per-update role check on a ~100 KB document.

usage: .venv/bin/python bench/role_check.py [--quick]

Prints a markdown table of median and p95 microseconds per update for:

a. an editor's keystroke: plain ``Doc.apply_update`` against ``Room._apply_update``
   (the editor fast path: role test, apply, hand to the writer, fan out to one
   peer), and the role test alone;
b. a reviewer's chat message: ``reviewer_may_apply`` (a throwaway copy of the
   document per update) and ``Room._apply_update`` (the room's kept
   ``ReviewerCheck``, then apply and fan out);
c. a reviewer's update that touches code and is refused, both ways.

No sockets, no store: the room's writer only collects updates (it is never
started) and the listening peer's outbox is emptied between samples, untimed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pycrdt import Array, Doc, Map  # noqa: E402

from crdt import protocol, schema  # noqa: E402
from crdt.offsets import utf8_len  # noqa: E402
from crdt.protocol import DocUpdate  # noqa: E402
from rooms.observer import RoomObserver  # noqa: E402
from rooms.peer import Peer, QueueLimits  # noqa: E402
from rooms.persistence import PersistenceSettings, StoreWorker  # noqa: E402
from rooms.roles import Role, reviewer_may_apply  # noqa: E402
from rooms.room import Room  # noqa: E402
from rooms.store import StoredRoom  # noqa: E402

TARGET_BYTES = 100 * 1024
BRANCH_BATCH = 100
CODE_LINE = "    total = compute_something(values[index], weight=0.5)  # step {}\n"


def build_document() -> Doc[Any]:
    """Mostly code text, plus a few chat messages and comment threads."""
    doc: Doc[Any] = Doc()
    with doc.transaction():
        lines: list[str] = ["def main(values):\n"]
        size = len(lines[0])
        i = 0
        while size < TARGET_BYTES - 6 * 1024:
            line = CODE_LINE.format(i)
            lines.append(line)
            size += len(line)
            i += 1
        schema.code(doc).insert(0, "".join(lines))
        schema.meta(doc)["title"] = "benchmark"
        for n in range(20):
            schema.chat(doc).append(Map({"id": f"m{n}", "user": "u1", "text": f"message {n}"}))
        for n in range(10):
            replies = Array([Map({"body": f"reply {n}"})])
            schema.comments(doc)[f"c{n}"] = Map({"body": f"comment {n}", "replies": replies})
    return doc


def replica(state: bytes) -> Doc[Any]:
    doc: Doc[Any] = Doc()
    doc.apply_update(state)
    return doc


def diff(doc: Doc[Any], change: Callable[[Doc[Any]], None]) -> bytes:
    before = doc.get_state()
    change(doc)
    return doc.get_update(before)


def type_at(index: int, doc: Doc[Any]) -> None:
    schema.code(doc).insert(index, "x")


def chat_line(line_id: str, doc: Doc[Any]) -> None:
    schema.chat(doc).append(Map({"id": line_id, "text": "ok"}))


def new_room(doc: Doc[Any]) -> tuple[Room, Peer, StoreWorker]:
    worker = StoreWorker(store=None)  # type: ignore[arg-type]  # never called: no flush runs
    room = Room("bench", doc, StoredRoom(), worker, PersistenceSettings(), RoomObserver())
    listener = Peer(limits=QueueLimits(max_frames=10**6, max_bytes=2**40), role=Role.EDITOR)
    room.join(listener)
    return room, listener, worker


def drain(peer: Peer) -> None:
    peer.outbox.clear()
    peer.queued_bytes = 0


def us(seconds: float) -> float:
    return seconds * 1e6


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


def bench_keystrokes(state: bytes, n: int, warmup: int) -> dict[str, list[float]]:
    editor = replica(state)
    text = schema.code(editor)
    cursor = utf8_len(str(text)) // 2
    updates: list[bytes] = []
    for i in range(n + warmup):
        updates.append(diff(editor, partial(type_at, cursor + i)))

    plain = replica(state)
    room, listener, worker = new_room(replica(state))
    peer = Peer(role=Role.EDITOR)
    room.join(peer)
    drain(listener)
    timings: dict[str, list[float]] = {"plain": [], "room": [], "branch": []}
    for i, update in enumerate(updates):
        frame = protocol.update_frame(update)
        message = DocUpdate(update, is_step2=False)

        def time_plain(update: bytes = update) -> float:
            started = time.perf_counter()
            plain.apply_update(update)
            return time.perf_counter() - started

        def time_room(frame: bytes = frame, message: DocUpdate = message) -> float:
            started = time.perf_counter()
            room._apply_update(peer, frame, message, started)
            elapsed = time.perf_counter() - started
            drain(listener)
            return elapsed

        if i % 2:  # alternate which goes first, so neither always gets the warm cache
            t_room, t_plain = time_room(), time_plain()
        else:
            t_plain, t_room = time_plain(), time_room()

        # The branch an editor's update takes that a plain apply does not, averaged
        # over a batch: one evaluation is shorter than the clock's resolution.
        role = peer.role
        started = time.perf_counter()
        for _ in range(BRANCH_BATCH):
            if not role.writes_everything:
                raise AssertionError("an editor took the slow path")
        t_branch = (time.perf_counter() - started) / BRANCH_BATCH

        if i >= warmup:
            timings["plain"].append(t_plain)
            timings["room"].append(t_room)
            timings["branch"].append(t_branch)
    assert schema.code_text(plain) == schema.code_text(room.doc) == schema.code_text(editor)
    worker._executor.shutdown()
    return timings


def bench_reviewer_chat(state: bytes, n: int, warmup: int) -> dict[str, list[float]]:
    reviewer = replica(state)
    updates = [diff(reviewer, partial(chat_line, f"r{i}")) for i in range(n + warmup)]
    throwaway_doc = replica(state)
    room, listener, worker = new_room(replica(state))
    peer = Peer(role=Role.REVIEWER)
    room.join(peer)
    drain(listener)
    timings: dict[str, list[float]] = {"throwaway": [], "room": []}
    for i, update in enumerate(updates):
        started = time.perf_counter()
        allowed = reviewer_may_apply(throwaway_doc, update)
        t_throwaway = time.perf_counter() - started
        assert allowed
        throwaway_doc.apply_update(update)

        frame = protocol.update_frame(update)
        started = time.perf_counter()
        room._apply_update(peer, frame, DocUpdate(update, is_step2=False), started)
        t_room = time.perf_counter() - started
        assert len(listener.outbox) == 1, "the reviewer's chat message was not relayed"
        drain(listener)
        if i >= warmup:
            timings["throwaway"].append(t_throwaway)
            timings["room"].append(t_room)
    assert len(schema.chat(room.doc)) == len(schema.chat(reviewer))
    worker._executor.shutdown()
    return timings


def bench_reviewer_refused(state: bytes, n: int, warmup: int) -> dict[str, list[float]]:
    # A fresh replica per update: each refused update then depends on nothing missing,
    # so it is refused for touching code rather than for being pending.
    middle = len(state) // 2
    updates = []
    for _ in range(n + warmup):
        reviewer = replica(state)
        updates.append(diff(reviewer, lambda d: schema.code(d).insert(middle, "y")))
    doc = replica(state)
    room, listener, worker = new_room(replica(state))
    peer = Peer(role=Role.REVIEWER)
    room.join(peer)
    drain(listener)
    drain(peer)
    timings: dict[str, list[float]] = {"throwaway": [], "room": []}
    for i, update in enumerate(updates):
        started = time.perf_counter()
        allowed = reviewer_may_apply(doc, update)
        t_throwaway = time.perf_counter() - started
        assert not allowed

        frame = protocol.update_frame(update)
        started = time.perf_counter()
        room._apply_update(peer, frame, DocUpdate(update, is_step2=False), started)
        t_room = time.perf_counter() - started
        assert not listener.outbox, "a refused update was relayed"
        drain(peer)
        if i >= warmup:
            timings["throwaway"].append(t_throwaway)
            timings["room"].append(t_room)
    assert room.doc.get_state() == doc.get_state()
    worker._executor.shutdown()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    args = parser.parse_args()
    keystrokes, reviewer_updates, warmup = (300, 60, 10) if args.quick else (3000, 400, 30)

    doc = build_document()
    state = doc.get_update()
    print(
        f"document: {len(state) / 1024:.1f} KiB as one update, "
        f"{utf8_len(schema.code_text(doc)) / 1024:.1f} KiB of code, "
        f"{len(schema.chat(doc))} chat messages, {len(schema.comments(doc))} comment threads"
    )
    print(f"python {sys.version.split()[0]}\n")

    rows: list[tuple[str, list[float]]] = []
    keys = bench_keystrokes(state, keystrokes, warmup)
    rows += [
        ("a. editor keystroke, plain `Doc.apply_update`", keys["plain"]),
        ("a. editor keystroke, `Room._apply_update` (fast path)", keys["room"]),
        ("a. the fast-path branch alone (`role.writes_everything`)", keys["branch"]),
    ]
    chat = bench_reviewer_chat(state, reviewer_updates, warmup)
    rows += [
        ("b. reviewer chat update, `reviewer_may_apply` (throwaway copy)", chat["throwaway"]),
        ("b. reviewer chat update, `Room._apply_update` (kept check)", chat["room"]),
    ]
    refused = bench_reviewer_refused(state, reviewer_updates, warmup)
    rows += [
        ("c. reviewer code update refused, `reviewer_may_apply`", refused["throwaway"]),
        ("c. reviewer code update refused, `Room._apply_update`", refused["room"]),
    ]

    print("| case | median µs | p95 µs | n |")
    print("|---|---:|---:|---:|")
    for label, samples in rows:
        median, p95 = summary([us(s) for s in samples])
        digits = 3 if median < 1 else 1
        print(f"| {label} | {median:.{digits}f} | {p95:.{digits}f} | {len(samples)} |")


if __name__ == "__main__":
    main()
