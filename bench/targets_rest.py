"""Every REST operation of our server called with valid input, timed from the client: the
``targets`` family's API part (bench/service_targets.py runs it while 5,000 sockets are live).

A ``Case`` is one operation of the OpenAPI document (``GET /api/rooms/{room}``) or of the
plain routes (``/healthz``, ``/readyz``, ``/metrics``, ``/api/openapi.json``). Its ``make``
does whatever untimed set-up one call needs (a file to delete, a raised hand to lower, an
AI suggestion to apply) and returns the request; only that request is timed. ``Rest.cases``
is checked against the served OpenAPI document, so an operation added to the server and
not called here shows up in the report as not measured.
"""

from __future__ import annotations

import asyncio
import io
import time
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from rooms.roles import Role
from server.auth import issue_token

CODE = "print('ok')  # BENCH-INSTANT\n"  # the Judge0 double answers this at once
HOLD = "print('slow')  # BENCH-HOLD\n"  # ...and holds this one (runs to cancel)
TTL = 3600
PLAIN = ("/healthz", "/readyz", "/metrics", "/api/openapi.json")


@dataclass
class Call:
    """One timed request and the statuses that count as success."""

    method: str
    path: str
    token: str | None = None
    json: Any = None
    content: bytes | None = None
    params: dict[str, str] | None = None
    ok: tuple[int, ...] = (200,)
    then: Callable[[httpx.Response], None] | None = None  # reads the answer (untimed)


@dataclass
class Case:
    """An operation (``METHOD /path/{template}``), how to make call ``i`` (set-up untimed),
    how many calls it gets (``scale`` × the plan's count), and whether calls may overlap."""

    op: str
    make: Callable[[int], Awaitable[Call]]
    scale: float = 1.0
    concurrent: bool = True


@dataclass
class Sample:
    op: str
    phase: str  # "sequential" or "concurrent"
    ms: float
    status: int  # 0: the request failed (timeout, connection)
    ok: bool


@dataclass
class Rest:
    """Our server's REST surface with the rooms, tokens and doubles its calls need."""

    http: httpx.AsyncClient
    secret: str
    ai_reply: Callable[[str], Awaitable[str]]  # asks in a room, returns the new entry id
    ai_idle: Callable[[], Awaitable[None]]  # waits for the answer in P to end
    samples: list[Sample] = field(default_factory=list)
    ids: dict[str, Any] = field(default_factory=dict)
    _n: int = 0

    def token(self, room: str, role: Role, name: str, personal: bool = False) -> str:
        user = f"u-{name.lower()}"
        return issue_token(
            self.secret, room=room, role=role, name=name, user_id=user, ttl=TTL, personal=personal
        )

    def fresh(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n}"

    async def send(self, call: Call) -> httpx.Response:
        headers = {"authorization": f"Bearer {call.token}"} if call.token else {}
        return await self.http.request(
            call.method,
            call.path,
            headers=headers,
            json=call.json,
            content=call.content,
            params=call.params,
        )

    async def must(self, call: Call) -> Any:
        """An untimed set-up request that has to succeed: its JSON (or None)."""
        response = await self.send(call)
        if response.status_code not in call.ok:
            raise RuntimeError(
                f"set-up {call.method} {call.path}: {response.status_code} {response.text[:200]}"
            )
        ctype = response.headers.get("content-type", "")
        return response.json() if ctype.startswith("application/json") else None

    async def timed(self, case: Case, i: int, phase: str) -> None:
        call = await case.make(i)
        started = time.perf_counter()
        try:
            response = await self.send(call)
            status = response.status_code
        except httpx.HTTPError:
            status = 0
        ms = (time.perf_counter() - started) * 1000
        if call.then is not None and status in call.ok:
            call.then(response)
        self.samples.append(Sample(case.op, phase, ms, status, status in call.ok))

    # -- set-up ---------------------------------------------------------------------

    async def room(self, mode: str) -> tuple[str, str]:
        made = await self.must(
            Call("POST", "/api/rooms", json={"mode": mode, "title": "t"}, ok=(201,))
        )
        return str(made["room"]), str(made["owner_token"])

    async def setup(self) -> None:
        """The rooms the calls use: a pair room with files and runs (P), a room whose
        links rotate (R), a room of held runs (H), a broadcast class (C) with an exercise,
        a review room (V) and a pair room with AI edits on (U)."""
        ids = self.ids
        ids["P"], ids["P_owner"] = await self.room("pair")
        ids["R"], ids["R_owner"] = await self.room("pair")
        ids["H"], ids["H_owner"] = await self.room("pair")
        ids["V"], ids["V_owner"] = await self.room("review")
        ids["W"], ids["W_owner"] = await self.room("pair")
        ids["U"], ids["U_owner"] = await self.room("pair")
        await self.must(
            Call("PATCH", f"/api/rooms/{ids['U']}", ids["U_owner"], json={"ai_edits": True})
        )
        p, owner = ids["P"], ids["P_owner"]
        files = await self.must(Call("GET", f"/api/rooms/{p}/files", owner))
        ids["entry"] = str(files[0]["path"])
        for key, text in (
            ("P", CODE),
            ("W", CODE),
            ("H", HOLD),
            ("U", "x = 1\ny = 2\n"),
            ("V", "x = 1\n"),
        ):
            await self.must(
                Call(
                    "PUT",
                    f"/api/rooms/{ids[key]}/files/{ids['entry']}",
                    ids[f"{key}_owner"],
                    content=text.encode(),
                    ok=(200, 201),
                )
            )
        for k in range(5):
            await self.must(
                Call(
                    "PUT",
                    f"/api/rooms/{p}/files/lib/m{k}.py",
                    owner,
                    content=f"def f{k}():\n    return {k}\n".encode(),
                    ok=(200, 201),
                )
            )
        await asyncio.sleep(2.5)  # past the history's coalescing window: t0 holds the files
        ids["t0"] = time.time()
        w = f"/api/rooms/{ids['W']}"
        run = await self.must(Call("POST", f"{w}/runs", ids["W_owner"], json={}, ok=(202,)))
        ids["run"] = ids["W_last"] = run["run_id"]
        # The class: a broadcast room, its teacher (personal owner token), forks allowed,
        # questions to the staff, one exercise with a student in it.
        c, _ = await self.room("broadcast")
        ids["C"] = c
        ids["teacher"] = teacher = self.token(c, Role.OWNER, "Teacher", personal=True)
        await self.must(Call("PATCH", f"/api/rooms/{c}", teacher, json={"forks": True}))
        await self.must(Call("PUT", f"/api/rooms/{c}/class", teacher, json={"chat": "questions"}))
        made = await self.must(
            Call("POST", f"/api/rooms/{c}/exercises", teacher, json=self.exercise_body(), ok=(201,))
        )
        ids["X"] = made["id"]
        joined = await self.must(
            Call("POST", f"/api/exercises/{ids['X']}/join", self.student("Bob"), ok=(200,))
        )
        ids["X_room"], ids["X_token"] = joined["room"], joined["token"]

    def exercise_body(self) -> dict[str, Any]:
        return {
            "title": "Add two numbers",
            "files": {"main.py": CODE},  # one file: the double answers it at once
            "entry": "main.py",
            "tests": [
                {"name": "small", "stdin": "1 2\n", "expected_output": "3\n"},
                {"name": "secret", "stdin": "7 8", "expected_output": "15", "hidden": True},
            ],
        }

    def student(self, name: str) -> str:
        return self.token(self.ids["C"], Role.VIEWER, name, personal=True)

    async def hand(self) -> str:
        """A new student raises a hand: their person key."""
        token = self.student(self.fresh("Student "))
        raised = await self.must(
            Call("POST", f"/api/rooms/{self.ids['C']}/hand", token, json={"question": "help"})
        )
        return str(raised["key"])

    async def question(self) -> str:
        token = self.student(self.fresh("Asker "))
        posted = await self.must(
            Call(
                "POST",
                f"/api/rooms/{self.ids['C']}/messages",
                token,
                json={"text": "why?"},
                ok=(201,),
            )
        )
        return str(posted["id"])

    # -- the cases ------------------------------------------------------------------

    def cases(self, peer_user: str) -> list[Case]:
        """One case per operation; ``peer_user``: the user id of a websocket peer in P
        (viewer token) whose role the role endpoints change and take back."""
        ids = self.ids
        p, owner = ids["P"], ids["P_owner"]
        c, teacher = ids["C"], ids["teacher"]
        x = ids["X"]
        entry = ids["entry"]
        rp = f"/api/rooms/{p}"
        rc = f"/api/rooms/{c}"

        def fixed(call: Call) -> Callable[[int], Awaitable[Call]]:
            async def make(i: int) -> Call:
                return call

            return make

        async def create_room(i: int) -> Call:
            return Call("POST", "/api/rooms", json={"mode": "pair", "title": f"r{i}"}, ok=(201,))

        async def patch_room(i: int) -> Call:
            return Call("PATCH", rp, owner, json={"title": f"title {i}"})

        async def issue(i: int) -> Call:
            return Call(
                "POST", f"{rp}/tokens", owner, json={"role": "editor", "name": f"e{i}"}, ok=(201,)
            )

        async def join(i: int) -> Call:
            return Call(
                "POST",
                f"{rp}/join",
                self.token(p, Role.EDITOR, f"J{i}"),
                json={"name": f"Joiner {i}"},
                ok=(201,),
            )

        async def grant(i: int) -> Call:
            return Call(
                "PUT", f"{rp}/peers/{peer_user}/role", owner, json={"role": "reviewer", "ttl": 600}
            )

        async def revert(i: int) -> Call:
            await self.must(await grant(i))
            return Call("DELETE", f"{rp}/peers/{peer_user}/role", owner)

        async def fork(i: int) -> Call:
            return Call("POST", f"{rc}/fork", self.student(f"Forker {i}"), ok=(201,))

        async def delete_room(i: int) -> Call:
            room, token = await self.room("pair")
            return Call("DELETE", f"/api/rooms/{room}", token, ok=(204,))

        async def export_room(i: int) -> Call:
            return Call("GET", f"{rp}/export", owner)

        exported: dict[str, bytes] = {}

        async def import_room(i: int) -> Call:
            if "file" not in exported:  # P's file: several files, runs and history
                response = await self.send(Call("GET", f"{rp}/export", owner))
                exported["file"] = response.content
            as_name = {"as": f"imported-{self.fresh('')}"}
            return Call("POST", "/api/rooms/import", content=exported["file"], params=as_name,
                        ok=(201,))  # fmt: skip

        def rotated(response: httpx.Response) -> None:
            ids["R_owner"] = response.json()["owner_token"]

        async def rotate(i: int) -> Call:
            # Each rotation answers the next owner token, which the next call uses.
            return Call("POST", f"/api/rooms/{ids['R']}/rotate", ids["R_owner"], then=rotated)

        async def put_file(i: int) -> Call:
            path = f"{rp}/files/lib/put{i % 20}.py"
            return Call("PUT", path, owner, content=f"x = {i}\n".encode(), ok=(200, 201))

        async def delete_file(i: int) -> Call:
            path = f"{rp}/files/tmp/d{i}.py"
            await self.must(Call("PUT", path, owner, content=b"pass\n", ok=(201,)))
            return Call("DELETE", path, owner, ok=(204,))

        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as z:
            for k in range(3):
                z.writestr(f"zip/z{k}.py", f"z = {k}\n")

        w, w_owner = f"/api/rooms/{ids['W']}", ids["W_owner"]

        def started(response: httpx.Response) -> None:
            ids["W_last"] = response.json()["run_id"]

        async def last_run(i: int) -> Call:
            # The room keeps its last runs only: read the newest.
            return Call("GET", f"{w}/runs/{ids['W_last']}", w_owner)

        async def run(i: int) -> Call:
            # One run at a time in a room (409 else): the last one ends first, untimed.
            for _ in range(300):
                path = f"{w}/runs/{ids['W_last']}"
                last = await self.must(Call("GET", path, w_owner, ok=(200, 404)))
                if last.get("status", "gone") not in ("queued", "running"):
                    break  # ended, or pruned from the runs map (404)
                await asyncio.sleep(0.02)
            return Call("POST", f"{w}/runs", w_owner, json={}, ok=(202,), then=started)

        async def cancel(i: int) -> Call:
            h = f"/api/rooms/{ids['H']}"
            started = await self.must(Call("POST", f"{h}/runs", ids["H_owner"], json={}, ok=(202,)))
            return Call("POST", f"{h}/runs/{started['run_id']}/cancel", ids["H_owner"])

        async def ask(i: int) -> Call:
            await self.ai_idle()  # two questions queue at most (429 else)
            return Call(
                "POST", f"{rp}/ai", owner, json={"prompt": f"what does f{i % 5} do?"}, ok=(202,)
            )

        async def suggestion(i: int) -> Call:
            entry_id = await self.ai_reply("suggest")
            action = "apply" if i % 2 else "dismiss"
            return Call(
                "POST",
                f"/api/rooms/{ids['V']}/ai/suggestions/{entry_id}",
                ids["V_owner"],
                json={"action": action},
            )

        async def undo(i: int) -> Call:
            entry_id = await self.ai_reply("edit")
            return Call("POST", f"/api/rooms/{ids['U']}/ai/changes/{entry_id}/undo", ids["U_owner"])

        async def restore(i: int) -> Call:
            return Call("POST", f"{rp}/history/restore", owner, json={"ts": ids["t0"]})

        async def history_fork(i: int) -> Call:
            return Call("POST", f"{rp}/history/fork", owner, json={"ts": ids["t0"]}, ok=(201,))

        async def create_exercise(i: int) -> Call:
            return Call("POST", f"{rc}/exercises", teacher, json=self.exercise_body(), ok=(201,))

        async def join_exercise(i: int) -> Call:
            return Call("POST", f"/api/exercises/{x}/join", self.student(f"Pupil {i}"))

        async def spotlight(i: int) -> Call:
            return Call("POST", f"{rc}/spotlight", teacher, json={"room": ids["X_room"]})

        async def end_spotlight(i: int) -> Call:
            await self.must(await spotlight(i))
            return Call("DELETE", f"{rc}/spotlight", teacher, ok=(200, 204))

        async def grid_spotlight(i: int) -> Call:
            return Call(
                "POST", f"/api/exercises/{x}/spotlight", teacher, json={"room": ids["X_room"]}
            )

        async def grid_end(i: int) -> Call:
            await self.must(await grid_spotlight(i))
            return Call("DELETE", f"/api/exercises/{x}/spotlight", teacher, ok=(200, 204))

        async def message(i: int) -> Call:
            return Call(
                "POST",
                f"{rc}/messages",
                self.student(self.fresh("Writer ")),
                json={"text": f"question {i}"},
                ok=(201,),
            )

        async def publish(i: int) -> Call:
            return Call("POST", f"{rc}/questions/{await self.question()}/publish", teacher)

        async def dismiss(i: int) -> Call:
            return Call("DELETE", f"{rc}/questions/{await self.question()}", teacher, ok=(204,))

        async def raise_hand(i: int) -> Call:
            return Call(
                "POST",
                f"{rc}/hand",
                self.student(self.fresh("Raiser ")),
                json={"question": "stuck"},
            )

        async def lower_own(i: int) -> Call:
            token = self.student(self.fresh("Lowerer "))
            await self.must(Call("POST", f"{rc}/hand", token, json={"question": "q"}))
            return Call("DELETE", f"{rc}/hand", token)

        async def lower_one(i: int) -> Call:
            return Call("DELETE", f"{rc}/hands/{await self.hand()}", teacher)

        async def lower_all(i: int) -> Call:
            await self.hand()
            return Call("DELETE", f"{rc}/hands", teacher)

        async def mute(i: int) -> Call:
            return Call("PUT", f"{rc}/muted/{await self.hand()}", teacher)

        async def unmute(i: int) -> Call:
            key = await self.hand()
            await self.must(Call("PUT", f"{rc}/muted/{key}", teacher))
            return Call("DELETE", f"{rc}/muted/{key}", teacher, ok=(204,))

        now = str(time.time())
        cases = [
            Case("GET /healthz", fixed(Call("GET", "/healthz"))),
            Case("GET /readyz", fixed(Call("GET", "/readyz"))),
            Case("GET /metrics", fixed(Call("GET", "/metrics"))),
            Case("GET /api/openapi.json", fixed(Call("GET", "/api/openapi.json"))),
            Case("GET /api/config", fixed(Call("GET", "/api/config"))),
            Case("POST /api/rooms", create_room),
            Case("GET /api/rooms/{room}", fixed(Call("GET", rp, owner))),
            Case("PATCH /api/rooms/{room}", patch_room),
            Case("POST /api/rooms/{room}/tokens", issue),
            Case("POST /api/rooms/{room}/join", join),
            Case("PUT /api/rooms/{room}/peers/{user}/role", grant, concurrent=False),
            Case("DELETE /api/rooms/{room}/peers/{user}/role", revert, concurrent=False),
            Case("GET /api/rooms/{room}/snapshot", fixed(Call("GET", f"{rp}/snapshot", owner))),
            Case(
                "GET /api/rooms/{room}/snapshot?format=yjs",
                fixed(Call("GET", f"{rp}/snapshot", owner, params={"format": "yjs"})),
            ),
            Case("GET /api/rooms/{room}/files", fixed(Call("GET", f"{rp}/files", owner))),
            Case(
                "GET /api/rooms/{room}/files/{path}",
                fixed(Call("GET", f"{rp}/files/{entry}", owner)),
            ),
            Case("PUT /api/rooms/{room}/files/{path}", put_file),
            Case("DELETE /api/rooms/{room}/files/{path}", delete_file),
            Case("GET /api/rooms/{room}/archive", fixed(Call("GET", f"{rp}/archive", owner))),
            Case(
                "POST /api/rooms/{room}/archive",
                fixed(Call("POST", f"{rp}/archive", owner, content=archive.getvalue())),
            ),
            Case("POST /api/rooms/{room}/runs", run, concurrent=False),
            Case(
                "GET /api/rooms/{room}/runs/{run_id}",
                last_run,
            ),
            Case("POST /api/rooms/{room}/runs/{run_id}/cancel", cancel, concurrent=False),
            Case("POST /api/rooms/{room}/ai", ask, concurrent=False),
            Case("DELETE /api/rooms/{room}/ai", fixed(Call("DELETE", f"{rp}/ai", owner))),
            Case("POST /api/rooms/{room}/ai/suggestions/{entry_id}", suggestion, 0.3, False),
            Case("POST /api/rooms/{room}/ai/changes/{entry_id}/undo", undo, 0.3, False),
            Case("POST /api/rooms/{room}/fork", fork),
            Case("DELETE /api/rooms/{room}", delete_room),
            Case("GET /api/rooms/{room}/export", export_room),
            Case("POST /api/rooms/import", import_room),
            # Rotation waits for the next whole second by design (iat counts seconds).
            Case("POST /api/rooms/{room}/rotate", rotate, 0.25, concurrent=False),
            Case("GET /api/rooms/{room}/history", fixed(Call("GET", f"{rp}/history", owner))),
            Case(
                "GET /api/rooms/{room}/history/at",
                fixed(Call("GET", f"{rp}/history/at", owner, params={"ts": now})),
            ),
            Case(
                "GET /api/rooms/{room}/history/authorship",
                fixed(Call("GET", f"{rp}/history/authorship", owner, params={"path": entry})),
            ),
            Case(
                "GET /api/rooms/{room}/history/summary",
                fixed(Call("GET", f"{rp}/history/summary", owner)),
            ),
            Case("GET /api/rooms/{room}/authors", fixed(Call("GET", f"{rp}/authors", owner))),
            Case("POST /api/rooms/{room}/history/restore", restore),
            Case("POST /api/rooms/{room}/history/fork", history_fork),
            Case("POST /api/exercises/{id}/spotlight", grid_spotlight, concurrent=False),
            Case("DELETE /api/exercises/{id}/spotlight", grid_end, concurrent=False),
            Case("POST /api/rooms/{room}/spotlight", spotlight, concurrent=False),
            Case("DELETE /api/rooms/{room}/spotlight", end_spotlight, concurrent=False),
            Case("POST /api/rooms/{room}/exercises", create_exercise),
            Case("GET /api/exercises/{id}", fixed(Call("GET", f"/api/exercises/{x}", teacher))),
            Case("POST /api/exercises/{id}/join", join_exercise),
            Case(
                "GET /api/exercises/{id}/students",
                fixed(Call("GET", f"/api/exercises/{x}/students", teacher)),
            ),
            Case(
                "POST /api/exercises/{id}/check",
                fixed(Call("POST", f"/api/exercises/{x}/check", ids["X_token"], json={})),
                scale=0.5,
                concurrent=False,  # one check at a time per student (409 else)
            ),
            Case(
                "GET /api/exercises/{id}/grades.csv",
                fixed(Call("GET", f"/api/exercises/{x}/grades.csv", teacher)),
            ),
            Case("GET /api/rooms/{room}/class", fixed(Call("GET", f"{rc}/class", teacher))),
            Case(
                "PUT /api/rooms/{room}/class",
                fixed(Call("PUT", f"{rc}/class", teacher, json={"chat": "questions"})),
            ),
            Case("POST /api/rooms/{room}/messages", message),
            Case("POST /api/rooms/{room}/questions/{id}/publish", publish),
            Case("DELETE /api/rooms/{room}/questions/{id}", dismiss),
            Case("POST /api/rooms/{room}/hand", raise_hand),
            Case("DELETE /api/rooms/{room}/hand", lower_own),
            Case("DELETE /api/rooms/{room}/hands/{key}", lower_one),
            Case("DELETE /api/rooms/{room}/hands", lower_all, concurrent=False),
            Case("PUT /api/rooms/{room}/muted/{key}", mute),
            Case("DELETE /api/rooms/{room}/muted/{key}", unmute),
        ]
        return cases


def operations(openapi: dict[str, Any]) -> list[str]:
    """Every ``METHOD /path`` of the served OpenAPI document, plus the plain routes."""
    ops = [f"GET {path}" for path in PLAIN]
    for path, item in openapi.get("paths", {}).items():
        for method in item:
            if method in ("get", "put", "post", "patch", "delete"):
                ops.append(f"{method.upper()} {path}")
    return ops


async def drive(rest: Rest, cases: list[Case], calls: int, workers: int, deadline: float) -> None:
    """Every case ``calls`` × scale times one after another, then the cases that may
    overlap by ``workers`` at once (each worker its share of each case, the workers
    starting at different cases). Stops at ``deadline`` (monotonic) if reached."""
    for case in cases:
        for i in range(max(3, round(calls * case.scale))):
            if time.monotonic() > deadline:
                return
            await rest.timed(case, i, "sequential")
    shared = [c for c in cases if c.concurrent]
    per_worker = max(2, calls // (2 * workers))

    async def worker(w: int) -> None:
        order = shared[w * len(shared) // workers :] + shared[: w * len(shared) // workers]
        for case in order:
            for i in range(per_worker):
                if time.monotonic() > deadline:
                    return
                await rest.timed(case, 10_000 * (w + 1) + i, "concurrent")

    await asyncio.gather(*(worker(w) for w in range(workers)))
