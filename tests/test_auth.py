"""Access tokens over real websockets and REST: every bad credential is refused with the
right code and changes nothing; dev mode's generated secret, anonymous editors and
``codementor token``; refusals are counted and credentials never reach the log."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import jwt
import pytest
import websockets
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Text

from crdt import protocol
from tests.serverproc import ROOT, ServerProcess
from tests.support import eventually
from tests.yclient import YClient

pytestmark = pytest.mark.anyio

SECRET = secrets.token_hex(32)  # 64 bytes: long enough for HS512 without a key warning
OTHER_SECRET = secrets.token_hex(32)
SEED = "def seed():\n    return 42\n"
DEV_WARNING = "dev mode: no CODEMENTOR_SECRET"
ISSUED: list[str] = []  # every signed or hand-crafted token: none may reach the log
DROP = object()


# -- tokens -----------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: Any) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def claims(for_room: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    out: dict[str, Any] = {
        "sub": "u-tess",
        "name": "Tess",
        "room": for_room,
        "role": "editor",
        "iat": now,
        "exp": now + 3600,
    }
    for key, value in changes.items():
        if value is DROP:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def encode_claims(payload: dict[str, Any], key: str = SECRET, algorithm: str = "HS256") -> str:
    token = jwt.encode(payload, key, algorithm=algorithm)
    ISSUED.append(token)
    return token


def crafted(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    """A JWT assembled by hand, for algorithms pyjwt would not sign with."""
    token = f"{b64json(header)}.{b64json(payload)}.{b64(signature)}"
    ISSUED.append(token)
    return token


def tampered(room: str) -> str:
    """A genuine viewer token whose payload was swapped for an owner's."""
    header, _, signature = encode_claims(claims(room, role="viewer")).split(".")
    token = f"{header}.{b64json(claims(room, role='owner'))}.{signature}"
    ISSUED.append(token)
    return token


def owner_of(room: str) -> str:
    return encode_claims(claims(room, sub="u-owner", name="Olive", role="owner"))


# -- the secured server -------------------------------------------------------------


@dataclass(frozen=True)
class Secured:
    server: ServerProcess
    room: str  # seeded with SEED
    other_room: str

    def ws(self, room: str, token: str | None) -> str:
        return self.server.ws_url(room, "" if token is None else "token=" + quote(token, safe=""))

    def api(self, path: str) -> str:
        return f"{self.server.http_url}/api{path}"


def create_room(server: ServerProcess, **body: Any) -> str:
    response = httpx.post(server.http_url + "/api/rooms", json=body, timeout=5)
    assert response.status_code == 201, response.text
    data = response.json()
    ISSUED.append(data["owner_token"])
    room: str = data["room"]
    return room


async def seed(url: str, text: str) -> None:
    async with YClient(url) as client:
        await client.wait_synced()
        client.text += text


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    env = {"CODEMENTOR_SECRET": SECRET, "CODEMENTOR_API_RATE_PER_MINUTE": "100000"}
    with ServerProcess(tmp_path_factory.mktemp("auth"), env) as proc:
        ctx = Secured(proc, create_room(proc), create_room(proc))
        asyncio.run(seed(ctx.ws(ctx.room, owner_of(ctx.room)), SEED))
        yield ctx


def fetch(url: str, token: str | None = None) -> httpx.Response:
    """GET with a bearer token (a sync helper: the server is another process)."""
    return httpx.get(url, headers=bearer(token), timeout=5)


def bearer(token: str | None) -> dict[bytes, bytes]:
    """The Authorization header (UTF-8; HTTP forbids trailing whitespace in a value)."""
    return {} if token is None else {b"authorization": f"Bearer {token}".strip().encode()}


async def attempt(url: str) -> tuple[int | None, list[bytes]]:
    """Connect as a y-websocket client would (Step1, then an edit right away) and read
    until the server closes. Returns the close code and every frame received."""
    evil: Doc[Any] = Doc()
    updates: list[bytes] = []
    evil.observe(lambda event: updates.append(event.update))
    evil.get("code", type=Text).insert(0, "EVIL ")
    frames: list[bytes] = []
    async with websockets.connect(url, max_size=None, compression=None) as ws:
        try:
            await ws.send(protocol.sync_step1(b"\x00"))
            await ws.send(protocol.update_frame(updates[0]))
        except websockets.ConnectionClosed:
            pass
        try:
            async with asyncio.timeout(5):
                async for frame in ws:
                    frames.append(frame if isinstance(frame, bytes) else frame.encode())
        except websockets.ConnectionClosed:
            pass
        except TimeoutError:
            return None, frames
        return ws.close_code, frames


async def room_text(ctx: Secured, room: str) -> str:
    async with YClient(ctx.ws(room, owner_of(room))) as client:
        await client.wait_synced()
        return str(client.text)


def room_title(ctx: Secured, room: str) -> str:
    response = fetch(ctx.api(f"/rooms/{room}"), owner_of(room))
    assert response.status_code == 200, response.text
    title: str = response.json()["title"]
    return title


def refused_metric(server: ServerProcess, status: str) -> float:
    prefix = f'codementor_auth_refused_total{{status="{status}"}} '
    for line in server.metrics().splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :])
    return 0.0


# -- refusals ---------------------------------------------------------------------

Maker = Callable[[Secured], "str | None"]


def _now() -> int:
    return int(time.time())


REFUSALS: dict[str, tuple[Maker, int]] = {
    # id: (token for ctx.room, HTTP status; the websocket closes with 4000 + status)
    "missing": (lambda c: None, 401),
    "empty": (lambda c: "", 401),
    "expired": (lambda c: encode_claims(claims(c.room, iat=_now() - 7200, exp=_now() - 120)), 401),
    "not-yet-valid": (lambda c: encode_claims(claims(c.room, nbf=_now() + 3600)), 401),
    "wrong-room": (lambda c: encode_claims(claims(c.other_room, role="owner")), 403),
    "bad-signature": (lambda c: encode_claims(claims(c.room, role="owner"), key=OTHER_SECRET), 401),
    "tampered-payload": (lambda c: tampered(c.room), 401),
    "alg-none": (
        lambda c: crafted({"alg": "none", "typ": "JWT"}, claims(c.room, role="owner")),
        401,
    ),
    "alg-None": (lambda c: crafted({"alg": "None"}, claims(c.room, role="owner")), 401),
    "alg-none-with-signature": (
        lambda c: crafted({"alg": "none"}, claims(c.room, role="owner"), b"\x01" * 32),
        401,
    ),
    "hs512": (lambda c: encode_claims(claims(c.room), algorithm="HS512"), 401),
    "hs384": (lambda c: encode_claims(claims(c.room), algorithm="HS384"), 401),
    "rs256-shaped": (
        lambda c: crafted(
            {"alg": "RS256", "typ": "JWT"}, claims(c.room, role="owner"), os.urandom(256)
        ),
        401,
    ),
    "malformed-word": (lambda c: "garbage", 401),
    "malformed-dots": (lambda c: "a.b.c", 401),
    "malformed-two-parts": (lambda c: encode_claims(claims(c.room)).rsplit(".", 1)[0], 401),
    "malformed-four-parts": (lambda c: encode_claims(claims(c.room)) + ".AAAA", 401),
    "malformed-unicode": (lambda c: "ключ.😀.токен", 401),
    "malformed-json-payload": (
        lambda c: f"{b64json({'alg': 'HS256'})}.{b64(b'not json')}.{b64(b'x' * 32)}",
        401,
    ),
    "missing-exp": (lambda c: encode_claims(claims(c.room, exp=DROP)), 401),
    "missing-sub": (lambda c: encode_claims(claims(c.room, sub=DROP)), 401),
    "missing-room": (lambda c: encode_claims(claims(c.room, room=DROP)), 401),
    "missing-role": (lambda c: encode_claims(claims(c.room, role=DROP)), 401),
    "empty-sub": (lambda c: encode_claims(claims(c.room, sub="")), 401),
    "numeric-sub": (lambda c: encode_claims(claims(c.room, sub=7)), 401),
    "numeric-room": (lambda c: encode_claims(claims(c.room, room=7)), 401),
    "non-numeric-exp": (lambda c: encode_claims(claims(c.room, exp="tomorrow")), 401),
    "unknown-role": (lambda c: encode_claims(claims(c.room, role="admin")), 401),
    "uppercase-role": (lambda c: encode_claims(claims(c.room, role="OWNER")), 401),
    "null-role": (lambda c: encode_claims(claims(c.room, role=None)), 401),
    "list-role": (lambda c: encode_claims(claims(c.room, role=["owner"])), 401),
}


@pytest.mark.parametrize("case", list(REFUSALS))
async def test_refused_websocket_gets_no_sync_and_changes_nothing(
    secured: Secured, case: str
) -> None:
    make, status = REFUSALS[case]
    token = make(secured)
    code, frames = await attempt(secured.ws(secured.room, token))
    assert code == 4000 + status
    assert frames == [], "a refused connection must not receive a Step1 or anything else"
    assert await room_text(secured, secured.room) == SEED


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refused_rest_request_changes_nothing(secured: Secured, case: str) -> None:
    make, status = REFUSALS[case]
    token = make(secured)
    path = f"/rooms/{secured.room}"
    read = fetch(secured.api(path), token)
    write = httpx.patch(secured.api(path), headers=bearer(token), json={"title": "hacked"})
    issue = httpx.post(
        secured.api(path + "/tokens"), headers=bearer(token), json={"role": "owner", "name": "x"}
    )
    for response in (read, write, issue):
        assert response.status_code == status, response.text
        body = response.json()
        assert isinstance(body["error"], str) and body["error"]
        assert "fields" not in body
        if token:
            assert token not in response.text
    assert room_title(secured, secured.room) == ""


@pytest.mark.parametrize("case", ["missing", "expired", "bad-signature", "alg-none"])
async def test_bad_token_on_unknown_room_is_401_not_404(secured: Secured, case: str) -> None:
    """Without a valid token nobody learns which rooms exist."""
    token = REFUSALS[case][0](secured)
    code, frames = await attempt(secured.ws("no-such-room", token))
    assert (code, frames) == (4401, [])
    response = fetch(secured.api("/rooms/no-such-room"), token)
    assert response.status_code == 401


def test_other_authorization_schemes_count_as_missing(secured: Secured) -> None:
    token = owner_of(secured.room)
    for header in (f"Basic {token}", token, "", "Bearer", f"Token {token}", "bearer"):
        response = httpx.get(
            secured.api(f"/rooms/{secured.room}"), headers={"authorization": header}, timeout=5
        )
        assert response.status_code == 401, header


# -- acceptance ---------------------------------------------------------------------


async def test_valid_tokens_are_accepted_with_their_role(secured: Secured) -> None:
    viewer = encode_claims(claims(secured.room, sub="u-vic", name="Vic", role="viewer"))
    nameless = encode_claims(claims(secured.room, sub="u-nameless", role="reviewer", name=DROP))
    url = secured.api(f"/rooms/{secured.room}")
    async with YClient(secured.ws(secured.room, viewer)) as v:
        async with YClient(secured.ws(secured.room, nameless)) as r:
            await v.wait_synced()
            await r.wait_synced()
            assert str(v.text) == SEED

            def peers() -> dict[str, Any]:
                response = fetch(url, owner_of(secured.room))
                result: dict[str, Any] = response.json()["peers"]
                return result

            await eventually(lambda: len(peers()["viewer"]) == 1 and len(peers()["reviewer"]) == 1)
            listed = peers()
            assert [(p["id"], p["name"]) for p in listed["viewer"]] == [("u-vic", "Vic")]
            # No name claim: the display name falls back to the subject.
            assert [(p["id"], p["name"]) for p in listed["reviewer"]] == [
                ("u-nameless", "u-nameless")
            ]
            v.text += "viewer edit"  # refused, not applied
            await eventually(lambda: v.denials != [])
    assert await room_text(secured, secured.room) == SEED


async def test_star_token_opens_every_existing_room(secured: Secured) -> None:
    star = encode_claims(claims("*", sub="u-star", role="editor"))
    for room in (secured.room, secured.other_room):
        async with YClient(secured.ws(room, star)) as client:
            await client.wait_synced()
        response = fetch(secured.api(f"/rooms/{room}"), star)
        assert response.status_code == 200
        assert response.json()["room"] == room
    # ...but not one that does not exist.
    code, frames = await attempt(secured.ws("never-created", star))
    assert (code, frames) == (4404, [])
    response = fetch(secured.api("/rooms/never-created"), star)
    assert response.status_code == 404


async def test_refusals_are_counted(secured: Secured) -> None:
    before_401 = refused_metric(secured.server, "401")
    before_403 = refused_metric(secured.server, "403")
    before_total = secured.server.metric("codementor_auth_refused_total")
    wrong_room = encode_claims(claims(secured.other_room))
    assert (await attempt(secured.ws(secured.room, "garbage")))[0] == 4401
    assert (await attempt(secured.ws(secured.room, None)))[0] == 4401
    assert (await attempt(secured.ws(secured.room, wrong_room)))[0] == 4403
    path = secured.api(f"/rooms/{secured.room}")
    assert fetch(path, "garbage").status_code == 401
    assert fetch(path, wrong_room).status_code == 403
    # Accepted requests are not counted.
    editor = encode_claims(claims(secured.room))
    async with YClient(secured.ws(secured.room, editor)) as ok:
        await ok.wait_synced()
    assert fetch(path, editor).status_code == 200
    assert refused_metric(secured.server, "401") == before_401 + 3
    assert refused_metric(secured.server, "403") == before_403 + 2
    assert secured.server.metric("codementor_auth_refused_total") == before_total + 5


# -- generated tokens ------------------------------------------------------------

GENERATED = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

_random_text = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=200)
_dotted_bytes = st.one_of(
    st.lists(st.binary(max_size=80), min_size=1, max_size=5).map(
        lambda parts: ".".join(b64(p) for p in parts)
    ),
    st.tuples(st.binary(max_size=120), st.binary(max_size=40)).map(
        lambda parts: f"{b64json({'alg': 'HS256', 'typ': 'JWT'})}.{b64(parts[0])}.{b64(parts[1])}"
    ),
)
_MUTATION_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ !%"
_mutation = st.tuples(
    st.sampled_from(["replace", "insert", "delete"]),
    st.integers(0, 10_000),
    st.sampled_from(_MUTATION_CHARS),
)


def mutate(token: str, edits: list[tuple[str, int, str]]) -> str:
    chars = list(token)
    for kind, position, char in edits:
        at = position % (len(chars) + (kind == "insert"))
        if kind == "replace" and chars:
            chars[at % len(chars)] = char
        elif kind == "insert":
            chars.insert(at, char)
        elif chars:
            del chars[at % len(chars)]
    return "".join(chars)


def same_token(original: str, mutated: str) -> bool:
    """True when ``mutated`` is ``original`` in a different spelling: the same signed
    segments and a signature that base64-decodes to the same bytes (base64's unused
    low bits of the last character, or characters the decoder skips). Such a token is
    genuinely signed, so accepting it is right."""
    head, _, signature = original.rpartition(".")
    mutated_head, dot, mutated_signature = mutated.rpartition(".")
    if not dot or mutated_head != head:
        return False
    try:
        return jwt.utils.base64url_decode(mutated_signature) == jwt.utils.base64url_decode(
            signature
        )
    except Exception:
        return False


def check_refused(ctx: Secured, token: str) -> None:
    async def probe() -> None:
        code, frames = await attempt(ctx.ws(ctx.room, token))
        assert (code, frames) == (4401, []), token
        assert await room_text(ctx, ctx.room) == SEED

    asyncio.run(probe())
    response = httpx.get(
        ctx.api(f"/rooms/{ctx.room}"),
        headers=bearer(token),
        timeout=5,
    )
    assert response.status_code == 401, token
    assert ctx.server.alive()


@GENERATED
@given(token=_random_text)
def test_generated_random_text_is_refused(secured: Secured, token: str) -> None:
    check_refused(secured, token)


@GENERATED
@given(token=_dotted_bytes)
def test_generated_dotted_base64_is_refused(secured: Secured, token: str) -> None:
    check_refused(secured, token)


@GENERATED
@given(
    role=st.sampled_from(["owner", "editor", "viewer"]),
    edits=st.lists(_mutation, min_size=1, max_size=4),
)
def test_generated_mutations_of_valid_tokens_are_refused(
    secured: Secured, role: str, edits: list[tuple[str, int, str]]
) -> None:
    original = encode_claims(claims(secured.room, role=role, exp=int(time.time()) + 3600))
    token = mutate(original, edits)
    assume(not same_token(original, token))
    check_refused(secured, token)


def test_server_survived_generated_tokens(secured: Secured) -> None:
    assert secured.server.alive()
    assert fetch(secured.server.http_url + "/healthz").status_code == 200
    assert asyncio.run(room_text(secured, secured.room)) == SEED


# -- dev mode -----------------------------------------------------------------------


def run_cli(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("CODEMENTOR_")}
    return subprocess.run(
        [sys.executable, "-m", "server", "token", *args, "--data-dir", str(data_dir)],
        cwd=ROOT,
        env={**inherited, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def cli_token(data_dir: Path, *args: str, **env: str) -> str:
    result = run_cli(data_dir, *args, **env)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert token.count(".") == 2 and "\n" not in token, result.stdout
    ISSUED.append(token)
    return token


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("dev")) as proc:
        yield proc


def test_dev_mode_writes_a_private_secret_file(dev: ServerProcess) -> None:
    path = dev.data_dir / "secret"
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = path.read_text().strip()
    assert len(secret) >= 32
    ISSUED.append(secret)
    response = fetch(dev.http_url + "/api/config")
    assert response.json()["anonymous"] is True


async def test_dev_mode_tokenless_connections_are_editors(dev: ServerProcess) -> None:
    room = "dev-pair"
    async with YClient(dev.ws_url(room)) as a, YClient(dev.ws_url(room)) as b:
        await a.wait_synced()
        await b.wait_synced()
        a.text += "hello"
        await eventually(lambda: str(b.text) == "hello")
        assert a.denials == [] and b.denials == []

        def editors() -> list[dict[str, str]]:
            response = fetch(f"{dev.http_url}/api/rooms/{room}")
            assert response.status_code == 200
            result: list[dict[str, str]] = response.json()["peers"]["editor"]
            return result

        await eventually(lambda: len(editors()) == 2)
        assert {p["id"] for p in editors()} == {"anonymous"}
    details = fetch(f"{dev.http_url}/api/rooms/{room}").json()
    assert details["mode"] == "pair"


async def test_dev_mode_warning_is_logged_once(dev: ServerProcess) -> None:
    for _ in range(3):
        async with YClient(dev.ws_url("dev-warned")) as client:
            await client.wait_synced()
    assert dev.log().count(DEV_WARNING) == 1


async def test_cli_token_is_accepted_by_the_dev_server(dev: ServerProcess) -> None:
    room = create_room(dev)
    token = cli_token(dev.data_dir, "--room", room, "--role", "reviewer", "--name", "Rita")
    claims_seen = jwt.decode(token, options={"verify_signature": False})
    assert (claims_seen["room"], claims_seen["role"], claims_seen["name"]) == (
        room,
        "reviewer",
        "Rita",
    )
    async with YClient(dev.ws_url(room, "token=" + token)) as client:
        await client.wait_synced()
        url = f"{dev.http_url}/api/rooms/{room}"

        def reviewers() -> list[str]:
            peers = fetch(url, token).json()["peers"]
            return [p["name"] for p in peers["reviewer"]]

        await eventually(lambda: reviewers() == ["Rita"])
    # A token signed with any other secret is still refused in dev mode.
    forged = encode_claims(claims(room), key=OTHER_SECRET)
    assert await attempt(dev.ws_url(room, "token=" + forged)) == (4401, [])


async def test_anonymous_off_refuses_tokenless_and_shares_the_cli_secret(
    tmp_path: Path, server_factory: Callable[..., ServerProcess]
) -> None:
    data_dir = tmp_path / "dev-off"
    # The CLI runs first and creates the secret; the server then picks up the same one.
    star = cli_token(data_dir, "--room", "*", "--role", "editor", "--name", "Ed", "--ttl", "600")
    secret = (data_dir / "secret").read_text()
    ISSUED.append(secret.strip())
    assert stat.S_IMODE((data_dir / "secret").stat().st_mode) == 0o600
    server = server_factory(data_dir=data_dir, CODEMENTOR_ANONYMOUS="off")
    assert (data_dir / "secret").read_text() == secret
    assert fetch(server.http_url + "/api/config").json()["anonymous"] is False
    room = create_room(server)
    assert await attempt(server.ws_url(room)) == (4401, [])
    assert fetch(f"{server.http_url}/api/rooms/{room}").status_code == 401
    async with YClient(server.ws_url(room, "token=" + star)) as client:
        await client.wait_synced()
        client.text += "with a token"
    async with YClient(server.ws_url(room, "token=" + star)) as check:
        await check.wait_synced()
        assert str(check.text) == "with a token"
    # No implicit rooms without anonymous access, even with a * token.
    assert await attempt(server.ws_url("implicit", "token=" + star)) == (4404, [])
    assert_no_credentials(server.log(), [secret.strip()])


async def test_cli_token_uses_the_configured_secret(secured: Secured, tmp_path: Path) -> None:
    data_dir = tmp_path / "unused"
    token = cli_token(
        data_dir,
        *("--room", secured.room, "--role", "viewer", "--name", "Cli", "--user", "u-cli"),
        *("--ttl", "120"),
        CODEMENTOR_SECRET=SECRET,
    )
    claims_seen = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims_seen["sub"] == "u-cli"
    assert claims_seen["exp"] - claims_seen["iat"] == 120
    assert not (data_dir / "secret").exists()  # a configured secret is never written down
    async with YClient(secured.ws(secured.room, token)) as client:
        await client.wait_synced()
        assert str(client.text) == SEED


@pytest.mark.parametrize(
    "args",
    [
        ("--room", "bad name", "--role", "editor", "--name", "x"),
        ("--room", "r", "--role", "editor", "--name", "x", "--ttl", "0"),
        ("--room", "r", "--role", "admin", "--name", "x"),
        ("--room", "r", "--role", "editor"),
    ],
    ids=["bad-room", "zero-ttl", "unknown-role", "no-name"],
)
def test_cli_token_refuses_bad_arguments(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = run_cli(tmp_path / "data", *args)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


async def test_an_empty_secret_file_is_not_used_as_the_key(
    tmp_path: Path, server_factory: Callable[..., ServerProcess]
) -> None:
    """A process that dies between creating ``secret`` and writing it (or a ``codementor
    token`` reading it in that window) leaves an empty file. The server must then refuse
    to start or make a usable secret, never run with an empty key."""
    data_dir = tmp_path / "empty-secret"
    data_dir.mkdir()
    (data_dir / "secret").write_text("")
    (data_dir / "secret").chmod(0o600)
    try:
        server = server_factory(data_dir=data_dir, CODEMENTOR_ANONYMOUS="off")
    except RuntimeError as exc:
        assert "secret" in str(exc).splitlines()[-1].lower()  # refused, and said why
        return
    room = create_room(server)  # needs to sign an owner token
    token = cli_token(data_dir, "--room", room, "--role", "editor", "--name", "Ed")
    async with YClient(server.ws_url(room, "token=" + token)) as client:
        await client.wait_synced()


# -- the log (keep last: it reads what every test above left there) ------------------


def assert_no_credentials(log: str, extra: Sequence[str] = ()) -> None:
    for credential in [*ISSUED, *extra]:
        if len(credential) < 16:
            continue
        assert credential not in log, "a credential was written to the server log"
        signature = credential.rsplit(".", 1)[-1]
        if len(signature) >= 16:
            assert signature not in log, "a token signature was written to the server log"


def test_log_never_contains_the_secret_or_tokens(secured: Secured, dev: ServerProcess) -> None:
    secured_log = secured.server.log()
    assert "ws_refused" in secured_log  # the log is the one the tests above wrote to
    assert SECRET not in secured_log
    assert_no_credentials(secured_log)
    dev_log = dev.log()
    assert (dev.data_dir / "secret").read_text().strip() not in dev_log
    assert_no_credentials(dev_log)
