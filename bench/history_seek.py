"""History playback: how long a one-hour, two-person session (36,000 updates) takes to
replay, how long seeking to any moment takes, and how many bytes its history holds.

    .venv/bin/python -m bench.history_seek [--updates 36000] [--seeks 50]

The session is made on real pycrdt documents: two people each type at their own
cursor (a jump now and then, a backspace in seven), ten updates a second between them,
taking one-second turns, in rows as the server coalesces them: the room's updates within
two seconds, whoever sent them, each person's run a part of the row. Seeks
go to random moments and time what the history API does there: the files, chat and
run at that moment (``at_json``) and the entry file's authorship."""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from typing import Any

from pycrdt import Doc

from crdt import schema
from rooms.history import HistoryRow, Part, Who, joined_parts
from rooms.playback import Playback

PEOPLE = (Who("u-ann", "Ann", "editor"), Who("u-bob", "Bob", "owner"))
UPDATES_PER_SECOND = 10
COALESCE_SECONDS = 2.0


def session(updates: int, seed: int = 20) -> list[HistoryRow]:
    """``updates`` keystrokes of two people, as history rows (one per coalescing window,
    holding a turn of each)."""
    rng = random.Random(seed)
    docs: list[Doc[Any]] = [Doc(), Doc()]
    sent: list[list[bytes]] = [[], []]
    for doc, out in zip(docs, sent, strict=True):
        doc.observe(lambda event, out=out: out.append(event.update))
    texts = ["", ""]
    cursors = [0, 0]
    rows: list[HistoryRow] = []
    per_turn = int(UPDATES_PER_SECOND * COALESCE_SECONDS / 2)  # each person's share of a row
    clock = row_first = row_last = 1_700_000_000.0
    row_updates: list[bytes] = []
    runs: list[Part] = []
    person = 0
    done = 0
    while done < updates:
        doc, other = docs[person], docs[1 - person]
        code = schema.code(doc)
        text = str(code)
        cursor = min(cursors[person], len(text))
        if rng.random() < 0.1:
            cursor = rng.randrange(len(text) + 1)
        batch: list[bytes] = []
        first = clock
        for _ in range(min(per_turn, updates - done)):
            if cursor > 0 and rng.random() < 0.15:
                at = len(text[: cursor - 1].encode())
                del code[at : at + len(text[cursor - 1].encode())]
                text = text[: cursor - 1] + text[cursor:]
                cursor -= 1
            else:
                char = rng.choice("abcdefg (é)\n")
                code.insert(len(text[:cursor].encode()), char)
                text = text[:cursor] + char + text[cursor:]
                cursor += 1
            update = sent[person][-1]
            other.apply_update(update)
            batch.append(update)
            stamp = clock  # when the server accepted it
            clock += 1.0 / UPDATES_PER_SECOND
            done += 1
        cursors[person] = cursor
        texts[person] = text
        if row_updates and stamp - row_first > COALESCE_SECONDS:
            rows.append(_row(len(rows) + 1, row_first, row_last, row_updates, runs))
            row_updates, runs = [], []
        if not row_updates:
            row_first = first
        row_updates += batch
        row_last = stamp
        runs.append((PEOPLE[person], "edit", len(batch)))
        person = 1 - person
    if row_updates:
        rows.append(_row(len(rows) + 1, row_first, row_last, row_updates, runs))
    return rows


def _row(seq: int, first: float, last: float, updates: list[bytes], runs: list[Part]) -> HistoryRow:
    """A stored row: the first run's sender and kind, ``parts`` when there are several."""
    parts = joined_parts(tuple(runs))
    return HistoryRow(seq, first, last, runs[0][0], runs[0][1], updates, parts)


def measure(updates: int, seeks: int) -> dict[str, Any]:
    start = time.perf_counter()
    rows = session(updates)
    made = time.perf_counter() - start
    playback = Playback()
    start = time.perf_counter()
    playback.extend(rows)
    replay = time.perf_counter() - start
    rng = random.Random(7)
    first, last = rows[0].ts_first, rows[-1].ts
    times = []
    for _ in range(seeks):
        ts = rng.uniform(first, last)
        start = time.perf_counter()
        playback.at_json(ts)
        playback.authorship_at("main.py", ts)
        times.append((time.perf_counter() - start) * 1000)
    update_bytes = sum(len(u) for row in rows for u in row.updates)
    hours = (last - first) / 3600
    return {
        "updates": updates,
        "rows": len(rows),
        "parts": sum(len(r.runs()) for r in rows),
        "session_hours": round(hours, 2),
        "make_s": round(made, 1),
        "replay_s": round(replay, 2),
        "seek_ms_median": round(statistics.median(times), 1),
        "seek_ms_max": round(max(times), 1),
        "update_bytes": update_bytes,
        "update_bytes_per_hour": round(update_bytes / hours) if hours else None,
        "text_chars": len(playback.files_at(None)["main.py"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=36_000)
    parser.add_argument("--seeks", type=int, default=50)
    args = parser.parse_args()
    print(json.dumps(measure(args.updates, args.seeks), indent=2))


if __name__ == "__main__":
    main()
