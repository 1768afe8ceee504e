"""The real Judge0 client (``runner.judge0``, httpx) against the Judge0 double over HTTP:
wire format (base64 both ways, Ruby line wrapping, decimal strings), every error answer
it classifies, the language matching, the status mapping and output cutting."""

from __future__ import annotations

import asyncio
import base64
import random
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from runner import records
from runner.judge0 import (
    ErrorKind,
    Judge0Client,
    Judge0Error,
    Language,
    Submission,
    SubmissionRequest,
)
from runner.languages import SUPPORTED, UnsupportedLanguage, resolve
from tests.judge0_double import LANGUAGES, UTF8_ERROR, Judge0Double, ruby_encode64

pytestmark = pytest.mark.anyio

TOKEN = "double-token"


@pytest.fixture
def double() -> Iterator[Judge0Double]:
    with Judge0Double(auth_token=TOKEN) as fake:
        yield fake


@pytest.fixture
async def client(double: Judge0Double) -> AsyncIterator[Judge0Client]:
    judge0 = Judge0Client(double.url, TOKEN, timeout=2.0)
    yield judge0
    await judge0.close()


async def finished(client: Judge0Client, token: str, timeout: float = 10.0) -> Submission:
    statuses: list[int] = []
    async with asyncio.timeout(timeout):
        while True:
            sub = await client.get(token)
            statuses.append(sub.status_id)
            if sub.final:
                return sub
            await asyncio.sleep(0.02)


def python(source: str, stdin: str = "", **limits: float) -> SubmissionRequest:
    return SubmissionRequest(source_code=source, language_id=71, stdin=stdin, **limits)  # type: ignore[arg-type]


# -- wire format --------------------------------------------------------------------


async def test_languages_and_matching(client: Judge0Client) -> None:
    found = await client.languages()
    assert [(lang.id, lang.name) for lang in found] == [(d["id"], d["name"]) for d in LANGUAGES]
    expected = {
        "python": 71, "javascript": 63, "typescript": 74, "java": 62, "c": 50, "cpp": 54,
        "go": 60, "rust": 73,
    }  # fmt: skip
    assert set(expected) == set(SUPPORTED)
    for name, language_id in expected.items():
        assert resolve(name, found).id == language_id, name
    assert resolve("C++", found).id == 54
    with pytest.raises(UnsupportedLanguage, match="does not support 'cobol'"):
        resolve("cobol", found)
    # Known to us, missing from this Judge0.
    with pytest.raises(UnsupportedLanguage, match="offers no Rust"):
        resolve("rust", [Language(71, "Python (3.8.1)")])
    # Java never matches JavaScript; a newer hosted list picks the newest version.
    hosted = [Language(102, "JavaScript (Node.js 22.08.0)"), Language(91, "Java (JDK 17.0.6)"),
              Language(62, "Java (OpenJDK 13.0.1)"), Language(113, "Python (3.14.0)")]  # fmt: skip
    assert resolve("java", hosted).id == 91
    assert resolve("python", hosted).id == 113


async def test_base64_round_trip_and_ruby_line_wrapping(
    client: Judge0Client, double: Judge0Double
) -> None:
    double.processing_delay = 0.1  # the client sees In Queue/Processing first
    source = "import sys\ntext = sys.stdin.read()\nprint(text.upper() * 40)\nprint('ünïcødé ✓')"
    token = await client.submit(python(source, stdin="héllo wörld "))
    first = await client.get(token)
    assert first.status_id in (1, 2) and not first.final
    sub = await finished(client, token)
    assert sub.status_id == 3 and sub.status == "Accepted"
    assert sub.stdout.decode() == "HÉLLO WÖRLD " * 40 + "\nünïcødé ✓\n"
    assert sub.exit_code == 0 and sub.exit_signal is None
    assert isinstance(sub.time, float) and isinstance(sub.memory, float) and sub.memory > 0
    # What travelled was base64 in Judge0's own shape: 60-character lines.
    async with httpx.AsyncClient() as http:
        answer = await http.get(
            f"{double.url}/submissions/{token}",
            params={"base64_encoded": "true", "fields": "stdout,time,memory,status"},
            headers={"X-Auth-Token": TOKEN},
        )
    raw = answer.json()
    assert set(raw) == {"stdout", "time", "memory", "status"}
    lines = raw["stdout"].split("\n")
    assert lines[-1] == "" and all(len(line) == 60 for line in lines[:-2])
    assert isinstance(raw["time"], str) and isinstance(raw["memory"], int)
    assert raw["status"] == {"id": 3, "description": "Accepted"}
    # The submission was received as base64 too (what the double decoded).
    assert double.submissions[token].stdin == "héllo wörld ".encode()


async def test_non_utf8_output_and_cutting(client: Judge0Client, double: Judge0Double) -> None:
    source = "import sys\nsys.stdout.buffer.write(b'ok \\xff\\xfe ' + b'x' * 70000)"
    sub = await finished(client, await client.submit(python(source)))
    assert sub.stdout.startswith(b"ok \xff\xfe ")
    # Judge0 refuses to show it without base64 (why the client always asks for base64).
    async with httpx.AsyncClient() as http:
        plain = await http.get(
            f"{double.url}/submissions/{sub.token}", headers={"X-Auth-Token": TOKEN}
        )
    assert plain.status_code == 400 and plain.json() == {"error": UTF8_ERROR}
    fields = records.result_fields(sub, "accepted", 64 * 1024, 65536)
    assert fields["stdout"].startswith("ok \ufffd\ufffd x")
    assert len(fields["stdout"].encode()) <= 64 * 1024 and fields["stdout_cut"] is True
    assert fields["stderr"] == "" and fields["stderr_cut"] is False
    # Cutting never splits a character.
    text, cut = records.cut_text("é".encode() * 10, 5)
    assert (text, cut) == ("éé", True)


async def test_runs_to_each_status(client: Judge0Client, double: Judge0Double) -> None:
    limits = {"cpu_time_limit": 1.0, "wall_time_limit": 2.0, "memory_limit_kb": 65536.0}
    cases = {
        "raise SystemExit(3)": (11, "runtime_error"),
        "while True: pass": (5, "time_limit"),
        "x = bytearray(300 * 1024 * 1024)": (11, "memory_limit"),
        "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)": (7, "runtime_error"),
        "import os, signal; os.kill(os.getpid(), signal.SIGFPE)": (9, "runtime_error"),
        "print(1)": (3, "accepted"),
    }
    for source, (status_id, ours) in cases.items():
        sub = await finished(client, await client.submit(python(source, "", **limits)))
        assert sub.status_id == status_id, (source, sub)
        assert records.final_status(sub, 65536) == ours, source
    double.script("int main(", status_id=6, compile_output="main.c:1: error: expected ')'")
    double.script("BROKEN_BOX", status_id=13, message="No such file or directory @ rb_sysopen")
    c_source = SubmissionRequest("int main( {", language_id=50)
    sub = await finished(client, await client.submit(c_source))
    assert (sub.status_id, sub.compile_output) == (6, b"main.c:1: error: expected ')'")
    assert records.final_status(sub, 65536) == "compile_error"
    sub = await finished(client, await client.submit(python("BROKEN_BOX")))
    assert records.final_status(sub, 65536) == "internal_error"
    assert "No such file" in records.result_fields(sub, "internal_error", 100, 1)["message"]


# -- error answers --------------------------------------------------------------------


async def test_error_answers_are_classified(client: Judge0Client, double: Judge0Double) -> None:
    request = python("print(1)")
    double.inject(503, "submit", body={"error": "queue is full"})
    double.inject(429, "submit", headers={"Retry-After": "2"})
    double.inject(500, "submit", body={"error": "boom"})
    double.inject(503, "submit", body={"error": "Judge0 is in maintenance mode"})
    expected = [
        (ErrorKind.QUEUE_FULL, True, False),
        (ErrorKind.RATE_LIMITED, True, False),
        (ErrorKind.SERVER, True, True),
        (ErrorKind.SERVER, True, True),
    ]
    for kind, retryable, failure in expected:
        with pytest.raises(Judge0Error) as caught:
            await client.submit(request)
        assert caught.value.kind is kind
        assert kind.retryable is retryable and kind.counts_as_failure is failure
    assert caught.value.message == "Judge0 failed (HTTP 503: Judge0 is in maintenance mode)"
    double.inject(429, "submit", headers={"Retry-After": "2"})
    with pytest.raises(Judge0Error) as caught:
        await client.submit(request)
    assert caught.value.retry_after == 2.0

    # Rails' 422: field -> messages, from the double's own validation.
    with pytest.raises(Judge0Error) as caught:
        await client.submit(python("print(1)", wall_time_limit=25.0, memory_limit_kb=1000))
    assert caught.value.kind is ErrorKind.INVALID and not caught.value.kind.retryable
    assert caught.value.fields == {
        "wall_time_limit": ["must be less than or equal to 20.0"],
        "memory_limit": ["must be greater than or equal to 2048.0"],
    }
    with pytest.raises(Judge0Error) as caught:
        await client.submit(SubmissionRequest("print(1)", language_id=150000))
    assert caught.value.fields == {"language_id": ["language with id 150000 doesn't exist"]}

    with pytest.raises(Judge0Error) as caught:
        await client.get("00000000-0000-0000-0000-000000000000")
    assert caught.value.kind is ErrorKind.NOT_FOUND

    # The queue-full answer from the double's own bound.
    double.queue_delay = 5.0
    double.queue_limit = 1
    await client.submit(request)
    with pytest.raises(Judge0Error) as caught:
        await client.submit(request)
    assert caught.value.kind is ErrorKind.QUEUE_FULL and caught.value.status == 503


async def test_wrong_token_is_an_auth_error(double: Judge0Double) -> None:
    for token in ("wrong", None):
        judge0 = Judge0Client(double.url, token, timeout=2.0)
        try:
            with pytest.raises(Judge0Error) as caught:
                await judge0.languages()
        finally:
            await judge0.close()
        assert caught.value.kind is ErrorKind.AUTH and caught.value.status == 401
        assert not caught.value.kind.retryable and caught.value.kind.counts_as_failure
    assert double.calls[-1] == ("GET", "languages", 401)


async def test_slow_and_dead_judge0(double: Judge0Double) -> None:
    judge0 = Judge0Client(double.url, TOKEN, timeout=0.3)
    try:
        double.response_delay = 0.1  # slow, within the timeout
        assert len(await judge0.languages()) == len(LANGUAGES)
        double.hang = True
        with pytest.raises(Judge0Error) as caught:
            await judge0.languages()
        assert caught.value.kind is ErrorKind.TIMEOUT
        double.hang = False
        double.kill()
        with pytest.raises(Judge0Error) as caught:
            await judge0.languages()
        assert caught.value.kind is ErrorKind.CONNECT
        double.revive()
        assert len(await judge0.languages()) == len(LANGUAGES)
    finally:
        await judge0.close()


def test_ruby_base64_is_decoded() -> None:
    from runner.judge0 import decode_b64

    data = bytes(range(256)) * 3
    wrapped = ruby_encode64(data)
    assert "\n" in wrapped.rstrip("\n") and wrapped.endswith("\n")
    assert decode_b64(wrapped) == data
    assert decode_b64(base64.b64encode(b"plain").decode()) == b"plain"
    assert decode_b64(None) == b"" and decode_b64("") == b""


async def test_delete_as_judge0_allows_it(double: Judge0Double) -> None:
    """DELETE /submissions/{token}: authorization, ENABLE_SUBMISSION_DELETE, the status."""
    double.authz_token = "authz"
    without = Judge0Client(double.url, TOKEN, timeout=2.0)
    wrong = Judge0Client(double.url, TOKEN, timeout=2.0, authz_token="nope")
    client = Judge0Client(double.url, TOKEN, timeout=2.0, authz_token="authz")
    try:
        assert not without.can_delete and client.can_delete
        double.hold = True
        token = await client.submit(python("print('kept')"))
        # Wrong authorization: 403 with an empty body, before anything else.
        with pytest.raises(Judge0Error) as refused:
            await wrong.delete(token)
        assert refused.value.kind is ErrorKind.REFUSED and refused.value.status == 403
        assert not refused.value.kind.counts_as_failure and not refused.value.kind.retryable
        # Deletes disabled (Judge0's default).
        with pytest.raises(Judge0Error) as disabled:
            await client.delete(token)
        assert disabled.value.kind is ErrorKind.REFUSED and "delete not allowed" in str(
            disabled.value
        )
        double.delete_enabled = True
        # Still processing: refused with Judge0's own sentence.
        await asyncio.sleep(0.1)
        with pytest.raises(Judge0Error) as running:
            await client.delete(token)
        assert running.value.kind is ErrorKind.STILL_RUNNING
        assert "its status is 2 (Processing)" in str(running.value)
        double.hold = False
        await finished(client, token)
        deleted = await client.delete(token)
        assert deleted.token == token and deleted.status_id == 3
        assert token in double.deleted and token not in double.submissions
        with pytest.raises(Judge0Error) as gone:
            await client.delete(token)
        assert gone.value.kind is ErrorKind.NOT_FOUND
        assert [s for m, e, s in double.calls if e == "delete"] == [403, 400, 400, 200, 404]
    finally:
        for judge0 in (without, wrong, client):
            await judge0.close()


async def test_cancelled_callers_never_leak_the_pool(double: Judge0Double) -> None:
    """Callers cancelled at any moment of their call (a stopped run, a run's deadline):
    the call ends by itself, its connection goes back to the pool, and a submission that
    Judge0 took still reports its token. Cancelling httpx itself leaked a pooled
    connection every few hundred cancels (httpcore#1115): with a pool of one, the first
    leak made every later call wait for the pool until it timed out."""
    client = Judge0Client(double.url, TOKEN, timeout=2.0, max_connections=1)
    double.script("CANCEL-LOOP", status_id=3, stdout="ok\n")  # answered at once, not run
    rng = random.Random(22)
    tokens: list[str] = []
    try:
        for _ in range(200):
            caller = asyncio.create_task(client.submit(python("# CANCEL-LOOP"), tokens.append))
            await asyncio.sleep(rng.uniform(0, 0.002))
            caller.cancel()
            await asyncio.gather(caller, return_exceptions=True)
        async with asyncio.timeout(30):
            while client.calls_in_flight:  # noqa: ASYNC110 - the detached calls end alone
                await asyncio.sleep(0.01)
        # Every submission Judge0 took reported its token, cancelled caller or not.
        assert sorted(tokens) == sorted(double.submissions)
        sub = await finished(client, await client.submit(python("print('after')")))
        assert sub.stdout == b"after\n"
    finally:
        await client.close()
