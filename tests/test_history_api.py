"""The history REST API on a real server: two people typing through real websocket
clients (and a paste, and a REST edit), then the timeline, the files and the Yjs
document at chosen moments, authorship, the paste summary, client authors; restore
and fork reproducing the exact text at ``ts``; who may read and restore; bad input."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from pycrdt import Doc, Map, Text

from crdt import schema
from crdt.offsets import utf16_len
from rooms.roles import Role
from tests.anthropic_double import AnthropicDouble, Reply
from tests.judge0_double import Judge0Double
from tests.serverproc import ServerProcess
from tests.support import SECRET, eventually, sign
from tests.test_runner import JUDGE0_TOKEN
from tests.yclient import YClient

pytestmark = pytest.mark.anyio

ENV = {
    "CODEMENTOR_SECRET": SECRET,
    "CODEMENTOR_DURABILITY_WINDOW_MS": "50",
    "CODEMENTOR_HISTORY_COALESCE_SECONDS": "0.2",
}
PASTE = "x = [" + ", ".join(str(i) for i in range(60)) + "]\n"  # one update, > 200 chars


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("history-api"), ENV) as proc:
        yield proc


async def new_room(server: ServerProcess, mode: str = "pair") -> str:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        created = await http.post("/api/rooms", json={"mode": mode, "title": "hist"})
    assert created.status_code == 201, created.text
    room: str = created.json()["room"]
    return room


def token(room: str, role: Role, name: str) -> str:
    return sign(room, role, name=name, personal=True)


async def call(
    server: ServerProcess,
    method: str,
    url: str,
    room: str,
    role: Role = Role.EDITOR,
    name: str = "Ann",
    **kw: Any,
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token(room, role, name)}"}
    async with httpx.AsyncClient(base_url=server.http_url, timeout=30) as http:
        return await http.request(method, url, headers=headers, **kw)


async def type_text(client: YClient, other: YClient, text: str) -> None:
    for ch in text:
        client.text += ch
        await asyncio.sleep(0.005)
    expected = str(client.text)
    await eventually(lambda: str(other.text) == expected)


class Session:
    """Ann types, Bob types and pastes, Ann adds a file over REST; the moments between."""

    def __init__(self, room: str) -> None:
        self.room = room
        self.moments: list[tuple[float, dict[str, str]]] = []
        self.ann_text = "print('héllo')\n"
        self.bob_text = "# bob 😀\n"
        self.ann_client = 0
        self.bob_client = 0

    def mark(self, doc: Doc[Any]) -> None:
        self.moments.append((time.time(), dict(schema.workspace(doc))))

    async def play(self, server: ServerProcess) -> None:
        ann_url = server.ws_url(self.room, f"token={token(self.room, Role.EDITOR, 'Ann')}")
        bob_url = server.ws_url(self.room, f"token={token(self.room, Role.OWNER, 'Bob')}")
        async with YClient(ann_url) as ann, YClient(bob_url) as bob:
            await ann.wait_synced()
            await bob.wait_synced()
            self.ann_client, self.bob_client = ann.doc.client_id, bob.doc.client_id
            await type_text(ann, bob, self.ann_text)
            await asyncio.sleep(0.3)
            self.mark(ann.doc)  # 0: Ann's line
            await type_text(bob, ann, self.bob_text)
            await asyncio.sleep(0.3)
            self.mark(ann.doc)  # 1: and Bob's
            bob.text += PASTE  # one update
            await eventually(lambda: str(ann.text).endswith(PASTE))
            await asyncio.sleep(0.3)
            self.mark(ann.doc)  # 2: and the paste
            put = await call(
                server, "PUT", f"/api/rooms/{self.room}/files/util.py", self.room,
                content="def f():\n    return 'ü'\n",
            )  # fmt: skip
            assert put.status_code == 201, put.text
            await eventually(lambda: "util.py" in schema.files(ann.doc))
            await asyncio.sleep(0.3)
            self.mark(ann.doc)  # 3: and util.py


@pytest.fixture(scope="module")
def session(server: ServerProcess) -> Session:
    async def run() -> Session:
        s = Session(await new_room(server))
        await s.play(server)
        return s

    return asyncio.run(run())


async def test_timeline_names_who_what_and_the_paste(
    server: ServerProcess, session: Session
) -> None:
    got = await call(server, "GET", f"/api/rooms/{session.room}/history", session.room)
    assert got.status_code == 200, got.text
    body = got.json()
    events = body["events"]
    assert body["more"] is False and body["large_insert"] == 200
    assert body["first_ts"] <= session.moments[0][0] <= body["last_ts"]
    by = {(e["who"]["name"], e["who"]["role"]) for e in events if e["chars_added"]}
    assert by == {("Ann", "editor"), ("Bob", "owner")}
    ann = sum(e["chars_added"] for e in events if e["who"]["name"] == "Ann")
    assert ann == len(session.ann_text) + len("def f():\n    return 'ü'\n")
    large = [e for e in events if e["large"]]
    assert [(e["who"]["name"], e["large"], e["files"]) for e in large] == [
        ("Bob", len(PASTE), ["main.py"])
    ]
    assert any(e["files"] == ["util.py"] for e in events)
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    # from/to and limit
    t1 = session.moments[1][0]
    later = await call(
        server, "GET", f"/api/rooms/{session.room}/history", session.room,
        params={"from": t1, "limit": 1},
    )  # fmt: skip
    assert later.json()["more"] is True
    [first] = later.json()["events"]
    assert first["ts"] >= t1 and first["large"] == len(PASTE)


async def test_files_and_document_at_each_moment(server: ServerProcess, session: Session) -> None:
    for ts, files in session.moments:
        got = await call(
            server, "GET", f"/api/rooms/{session.room}/history/at", session.room,
            Role.REVIEWER, params={"ts": ts},
        )  # fmt: skip
        assert got.status_code == 200, got.text
        body = got.json()
        assert body["files"] == files
        assert body["entry"] == "main.py" and body["language"] == "python"
        assert body["ts"] == ts and body["run"] is None
        raw = await call(
            server, "GET", f"/api/rooms/{session.room}/history/at", session.room,
            params={"ts": ts, "format": "yjs"},
        )  # fmt: skip
        assert raw.headers["content-type"] == "application/octet-stream"
        doc: Doc[Any] = Doc()
        doc.apply_update(raw.content)
        assert schema.workspace(doc) == files
    before = await call(
        server, "GET", f"/api/rooms/{session.room}/history/at", session.room,
        params={"ts": 1},
    )  # fmt: skip
    assert before.json()["files"] == {"main.py": ""}


async def test_authorship_summary_and_authors(server: ServerProcess, session: Session) -> None:
    got = await call(
        server, "GET", f"/api/rooms/{session.room}/history/authorship", session.room,
        params={"path": "main.py"},
    )  # fmt: skip
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["text"] == session.ann_text + session.bob_text + PASTE
    names = [(body["people"][s["who"]]["name"], s["from"], s["to"]) for s in body["spans"]]
    ann_end = utf16_len(session.ann_text)
    end = ann_end + utf16_len(session.bob_text + PASTE)
    assert names == [("Ann", 0, ann_end), ("Bob", ann_end, end)]
    at_first = await call(
        server, "GET", f"/api/rooms/{session.room}/history/authorship", session.room,
        params={"path": "main.py", "ts": session.moments[0][0]},
    )  # fmt: skip
    assert at_first.json()["text"] == session.ann_text
    summary = (
        await call(server, "GET", f"/api/rooms/{session.room}/history/summary", session.room)
    ).json()
    people = {p["who"]["name"]: p for p in summary["people"]}
    assert (people["Bob"]["typed"], people["Bob"]["pasted"]) == (len(session.bob_text), len(PASTE))
    assert people["Ann"]["pasted"] == 0 and people["Ann"]["ai"] == 0
    assert [(x["who"]["name"], x["chars"]) for x in summary["large_inserts"]] == [
        ("Bob", len(PASTE))
    ]
    authors = (await call(server, "GET", f"/api/rooms/{session.room}/authors", session.room)).json()
    assert authors[str(session.ann_client)] == {"id": "u-ann", "name": "Ann", "role": "editor"}
    assert authors[str(session.bob_client)] == {"id": "u-bob", "name": "Bob", "role": "owner"}


async def test_restore_brings_every_file_back_and_can_be_undone(server: ServerProcess) -> None:
    s = Session(await new_room(server))
    await s.play(server)
    url = s.room and f"/api/rooms/{s.room}/history/restore"
    watcher = YClient(server.ws_url(s.room, f"token={token(s.room, Role.VIEWER, 'Vi')}"))
    async with watcher:
        await watcher.wait_synced()
        latest = dict(schema.workspace(watcher.doc))
        ts0, files0 = s.moments[0]
        restored = await call(server, "POST", url, s.room, name="Eve", json={"ts": ts0})
        assert restored.status_code == 200, restored.text
        body = restored.json()
        assert body["ts"] == ts0 and body["files"] == 1
        await eventually(lambda: schema.workspace(watcher.doc) == files0)
        # the restore is one row of the caller's in the history
        events = (await call(server, "GET", f"/api/rooms/{s.room}/history", s.room)).json()
        last = events["events"][-1]
        assert last["who"]["name"] == "Eve" and last["ts"] >= body["restored_at"] - 1
        assert last["files"] == ["main.py", "util.py"]
        # restoring to just before it undoes it
        undo = await call(server, "POST", url, s.room, json={"ts": last["ts_first"] - 0.001})
        assert undo.status_code == 200, undo.text
        await eventually(lambda: schema.workspace(watcher.doc) == latest)


async def test_fork_from_a_moment_seeds_a_new_room(server: ServerProcess, session: Session) -> None:
    ts, files = session.moments[1]
    forked = await call(
        server, "POST", f"/api/rooms/{session.room}/history/fork", session.room,
        Role.REVIEWER, name="Rev", json={"ts": ts},
    )  # fmt: skip
    assert forked.status_code == 201, forked.text
    created = forked.json()
    owner = {"Authorization": f"Bearer {created['owner_token']}"}
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        listing = await http.get(f"/api/rooms/{created['room']}/files", headers=owner)
        text = await http.get(f"/api/rooms/{created['room']}/files/main.py", headers=owner)
    assert [f["path"] for f in listing.json()] == list(files)
    assert text.text == files["main.py"]
    ts3, files3 = session.moments[3]
    forked3 = await call(
        server, "POST", f"/api/rooms/{session.room}/history/fork", session.room,
        json={"ts": ts3},
    )  # fmt: skip
    room3 = forked3.json()["room"]
    util = await call(server, "GET", f"/api/rooms/{room3}/files/util.py", room3)
    assert util.text == files3["util.py"]


async def test_who_may_read_and_restore(server: ServerProcess) -> None:
    pair = await new_room(server)
    history = f"/api/rooms/{pair}/history"
    for role in (Role.OWNER, Role.EDITOR, Role.REVIEWER, Role.VIEWER):
        got = await call(server, "GET", history, pair, role)
        assert got.status_code == 200, (role, got.text)
    for role in (Role.REVIEWER, Role.VIEWER):
        refused = await call(server, "POST", f"{history}/restore", pair, role, json={"ts": 1})
        assert refused.status_code == 403
        assert "owner and editors" in refused.json()["error"]
    stage = await new_room(server, "broadcast")
    sheet = f"/api/rooms/{stage}/history"
    refused = await call(server, "GET", sheet, stage, Role.VIEWER)
    assert refused.status_code == 403 and "viewers" in refused.json()["error"]
    for path in ("/at?ts=1", "/summary", "/authorship?path=main.py"):
        assert (await call(server, "GET", sheet + path, stage, Role.VIEWER)).status_code == 403
    assert (
        await call(server, "GET", f"/api/rooms/{stage}/authors", stage, Role.VIEWER)
    ).status_code == 403
    assert (await call(server, "GET", sheet, stage, Role.OWNER)).status_code == 200
    opened = await call(
        server, "PATCH", f"/api/rooms/{stage}", stage, Role.OWNER, json={"history_viewers": True}
    )
    assert opened.status_code == 200, opened.text
    assert (await call(server, "GET", sheet, stage, Role.VIEWER)).status_code == 200
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        anonymous = await http.get(sheet)
    assert anonymous.status_code == 401


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/history/at?ts=abc", "ts"),
        ("/history/at?ts=-1", "ts"),
        ("/history/at?ts=nan", "ts"),
        ("/history/at", "ts"),
        ("/history/at?ts=1&format=zip", "format"),
        ("/history?limit=0", "limit"),
        ("/history?limit=10001", "limit"),
        ("/history?limit=ten", "limit"),
        ("/history?from=yesterday", "from"),
        ("/history/authorship?path=nope.py", "path"),
        ("/history/authorship?path=../x.py", "path"),
        ("/history/authorship", "path"),
        ("/history/authorship?path=main.py&ts=-5", "ts"),
    ],
)
async def test_bad_queries_are_422_naming_the_field(
    server: ServerProcess, session: Session, path: str, field: str
) -> None:
    got = await call(server, "GET", f"/api/rooms/{session.room}{path}", session.room)
    assert got.status_code == 422, got.text
    assert got.json()["fields"][0]["field"] == field


async def test_bad_bodies_and_unknown_rooms(server: ServerProcess, session: Session) -> None:
    for body in ({"ts": "x"}, {"ts": -1}, {}, {"ts": 1, "extra": 2}):
        for action in ("restore", "fork"):
            got = await call(
                server, "POST", f"/api/rooms/{session.room}/history/{action}", session.room,
                json=body,
            )  # fmt: skip
            assert got.status_code == 422, (action, body, got.text)
    for path in ("/history", "/history/summary", "/authors"):
        got = await call(server, "GET", f"/api/rooms/nosuchroom{path}", "nosuchroom")
        assert got.status_code == 404 and got.json()["error"] == "unknown room"


async def test_history_off_is_409(server_factory: Callable[..., ServerProcess]) -> None:
    off = server_factory(CODEMENTOR_SECRET=SECRET, CODEMENTOR_HISTORY_DAYS="0")
    room = await new_room(off)
    got = await call(off, "GET", f"/api/rooms/{room}/history", room)
    assert got.status_code == 409 and "CODEMENTOR_HISTORY_DAYS=0" in got.json()["error"]


async def test_chat_up_to_the_moment(server: ServerProcess) -> None:
    room = await new_room(server)
    url = server.ws_url(room, f"token={token(room, Role.EDITOR, 'Ann')}")
    async with YClient(url) as ann:
        await ann.wait_synced()
        schema.chat(ann.doc).append(Map({"id": "c1", "text": "hello", "ts": 1.0}))
        await asyncio.sleep(0.4)
        after = time.time()
    got = await call(server, "GET", f"/api/rooms/{room}/history/at", room, params={"ts": after})
    [line] = got.json()["chat"]
    assert (line["author"], line["author_role"], line["text"]) == ("Ann", "editor", "hello")


async def test_the_ai_and_a_run_are_in_the_history_with_their_authors(
    server_factory: Callable[..., ServerProcess], double: AnthropicDouble
) -> None:
    """The AI edits a file (its characters are the AI's), the runner writes a run (a
    ``run`` event with its status, and the run as it stood at each moment)."""
    judge0 = Judge0Double(auth_token=JUDGE0_TOKEN).start()
    try:
        proc = server_factory(
            **ENV,
            ANTHROPIC_API_KEY="test-key",
            CODEMENTOR_AI_BASE_URL=double.url,
            CODEMENTOR_AI_MAX_RETRIES="0",
            CODEMENTOR_JUDGE0_URL=judge0.url,
            CODEMENTOR_JUDGE0_TOKEN=JUDGE0_TOKEN,
            CODEMENTOR_RUNNER_RUNS_PER_MINUTE="1000",
            CODEMENTOR_API_RATE_PER_MINUTE="100000",
        )
        room = await new_room(proc)
        edit = {"path": "b.py", "start_line": 2, "end_line": 2, "new_text": "    return 2\n"}
        double.script(Reply([("text", "Fixing `b.py`."), ("tool", "replace_range", edit)]))
        owner = token(room, Role.OWNER, "Ada")
        async with YClient(proc.ws_url(room, f"token={owner}")) as ada:
            await ada.wait_synced()
            with ada.doc.transaction():
                schema.meta(ada.doc)["ai_edits"] = True
                schema.files(ada.doc)["b.py"] = Text("def f():\n    return 1\n")
                ada.text += "print('hi')\n"
            await asyncio.sleep(0.5)  # the server has them
            asked = await call(proc, "POST", f"/api/rooms/{room}/ai", room, Role.OWNER, "Ada",
                               json={"prompt": "return 2", "path": "b.py"})  # fmt: skip
            assert asked.status_code == 202, asked.text

            def b_text() -> str:
                value = schema.files(ada.doc).get("b.py")
                return str(value) if value is not None else ""

            await eventually(lambda: b_text() == "def f():\n    return 2\n", 15)
            ran = await call(proc, "POST", f"/api/rooms/{room}/runs", room, Role.OWNER, "Ada",
                             json={})  # fmt: skip
            assert ran.status_code == 202, ran.text
            run_id = ran.json()["run_id"]

            def status() -> str:
                record = schema.runs(ada.doc).get(run_id)
                return str(record.get("status")) if isinstance(record, Map) else ""

            await eventually(lambda: status() == "accepted", 30)
            await asyncio.sleep(0.4)
        events = (await call(proc, "GET", f"/api/rooms/{room}/history", room)).json()["events"]
        ai_rows = [e for e in events if e["kind"] == "ai" and "b.py" in e["files"]]
        assert ai_rows and ai_rows[0]["who"]["role"] == "ai"
        runs = [e for e in events if e["kind"] == "run"]
        assert runs[-1]["run"] == {"id": run_id, "status": "accepted"}
        assert runs[0]["who"] == {"id": "server", "name": "server", "role": "server"}
        first_run_ts = runs[0]["ts"]
        early = await call(proc, "GET", f"/api/rooms/{room}/history/at", room,
                           params={"ts": first_run_ts})  # fmt: skip
        assert early.json()["run"]["status"] in ("queued", "running")
        late = await call(proc, "GET", f"/api/rooms/{room}/history/at", room,
                          params={"ts": runs[-1]["ts"]})  # fmt: skip
        assert late.json()["run"]["status"] == "accepted"
        assert late.json()["run"]["stdout"] == "hi\n"
        authorship = (
            await call(
                proc, "GET", f"/api/rooms/{room}/history/authorship", room, params={"path": "b.py"}
            )  # fmt: skip
        ).json()
        who = [
            (authorship["text"][s["from"] : s["to"]], authorship["people"][s["who"]]["role"])
            for s in authorship["spans"]
        ]
        assert "".join(text for text, _ in who) == "def f():\n    return 2\n"
        assert ("owner", "ai") == (who[0][1], who[-1][1])
        assert "2" in "".join(text for text, role in who if role == "ai")
        summary = (await call(proc, "GET", f"/api/rooms/{room}/history/summary", room)).json()
        ai = [p for p in summary["people"] if p["who"]["role"] == "ai"]
        assert ai and ai[0]["ai"] > 0 and ai[0]["typed"] == 0
    finally:
        judge0.stop()
