"""A store that answers reads but refuses every write (a full disk, a read-only file)
makes the server not ready once the writes have failed for a while, and ready again
when they succeed; and no request ever gets a plain-text 500: an error nobody handled
answers JSON with its request id (503 for the store, 500 otherwise), its traceback only
in the log.

The store fails for real: the test adds SQLite triggers to the server's own database
file, through a second connection, that abort every insert (what the server's
statements meet on a full disk, with its own message). Reads, and the readiness ping,
still work, as they do on a full disk.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.serverproc import ServerProcess
from tests.support import eventually
from tests.yclient import YClient

pytestmark = pytest.mark.anyio

FAILING = "database or disk is full (test trigger)"


def break_writes(db: Path) -> None:
    with sqlite3.connect(db, timeout=10) as conn:
        for table in ("updates", "rooms"):
            conn.execute(
                f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{FAILING}'); END"
            )


def mend_writes(db: Path) -> None:
    with sqlite3.connect(db, timeout=10) as conn:
        for table in ("updates", "rooms"):
            conn.execute(f"DROP TRIGGER refuse_{table}")


def stored_code(db: Path, room: str) -> int:
    with sqlite3.connect(db, timeout=10) as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM updates WHERE room = ?", (room,)).fetchone()
    return int(count)


async def test_failing_writes_make_the_server_not_ready_and_every_error_is_json(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory(CODEMENTOR_DURABILITY_WINDOW_MS="20")
    db = server.data_dir / "codementor.sqlite3"
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        room = (await http.post("/api/rooms", json={})).json()["room"]
        async with YClient(server.ws_url(room)) as client:
            await client.wait_synced()
            client.text += "stored"
            await eventually(lambda: stored_code(db, room) == 1)
            assert (await http.get("/readyz")).status_code == 200

            break_writes(db)
            failing_from = time.monotonic()
            client.text += " then refused"  # the flusher keeps it and retries
            await eventually(lambda: server.metric("codementor_store_flush_failures_total") >= 1)
            ready = await http.get("/readyz")
            # Not at the first failure: a store that fails once and recovers is ready.
            assert ready.status_code == 200 or time.monotonic() - failing_from > 2

            async def not_ready() -> httpx.Response:
                for _ in range(200):
                    answer = await http.get("/readyz")
                    if answer.status_code == 503:
                        return answer
                    await asyncio.sleep(0.05)
                raise AssertionError(f"still ready while writes fail: {answer.text}")

            answer = await not_ready()
            assert answer.json()["checks"]["store"].startswith("error: writes failing for ")
            assert time.monotonic() - failing_from > 2

            # Creating a room writes: the store's refusal is a JSON 503 with the request id.
            refused = await http.post("/api/rooms", json={})
            assert refused.status_code == 503
            assert refused.headers["content-type"] == "application/json"
            body = refused.json()
            assert body == {
                "error": "store unavailable: retry later",
                "request_id": refused.headers["x-request-id"],
            }
            assert "Traceback" not in refused.text and FAILING not in refused.text

            mend_writes(db)
            await eventually(lambda: stored_code(db, room) == 2, timeout=15)
            assert (await http.get("/readyz")).status_code == 200
            snapshot = await http.get(f"/api/rooms/{room}/snapshot")
            assert snapshot.text == "stored then refused"  # nothing was lost meanwhile
    logged = [e for e in server.events() if e["event"] == "request_failed"]
    assert logged and logged[0]["request_id"] == body["request_id"]


async def test_an_unhandled_error_is_a_json_500_with_its_traceback_only_in_the_log(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory()
    db = server.data_dir / "codementor.sqlite3"
    # A row no version of the server writes (an unknown mode): reading it fails in code
    # no handler expects.
    with sqlite3.connect(db, timeout=10) as conn:
        conn.execute(
            "INSERT INTO rooms (name, mode, language, title, created_at, updated_at)"
            " VALUES ('corrupt', 'no-such-mode', 'python', 't', 0, 0)"
        )
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        answer = await http.get("/api/rooms/corrupt")
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {
        "error": "internal error",
        "request_id": answer.headers["x-request-id"],
    }
    failed = next(e for e in server.events() if e["event"] == "request_failed")
    assert failed["request_id"] == answer.headers["x-request-id"]
    assert "Traceback" in failed["exception"]  # in the log, as one JSON line
