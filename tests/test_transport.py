"""Choosing the websocket transport (``server.transport``): the fast one when its probe
passes, stock uvicorn websockets when it does not or when asked, and a refusal to start
when ``on`` was asked and the probe fails.

A misfit is made the way an upgrade would make it: uvicorn's protocol sets an attribute
the fast transport does not know, or websockets' frame parser is another function.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import Protocol

from server import transport, uvicorn_fast
from server.settings import Settings, SettingsError
from tests.serverproc import ROOT, ServerProcess
from tests.support import eventually, free_port
from tests.yclient import YClient

# Run in a fresh interpreter before the server's CLI: uvicorn's websocket protocol sets
# one attribute more, as a later uvicorn might.
MISFIT = """
import sys
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol as P
init = P.__init__
def patched(self, *args, **kwargs):
    init(self, *args, **kwargs)
    self.added_in_a_later_uvicorn = None
P.__init__ = patched
from server.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture
def new_uvicorn_attribute(monkeypatch: pytest.MonkeyPatch) -> None:
    init = WebSocketsSansIOProtocol.__init__

    def patched(self: WebSocketsSansIOProtocol, *args: object, **kwargs: object) -> None:
        init(self, *args, **kwargs)  # type: ignore[arg-type]
        self.added_in_a_later_uvicorn = None  # type: ignore[attr-defined]

    monkeypatch.setattr(WebSocketsSansIOProtocol, "__init__", patched)


@pytest.fixture
def new_frame_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """websockets' frame loop is another generator function than the one the transport
    recognises (``Protocol.parse`` wrapped, as a refactoring would)."""
    parse = Protocol.parse

    def wrapped(self: Protocol) -> Iterator[None]:
        yield from parse(self)

    monkeypatch.setattr(Protocol, "parse", wrapped)


def probe() -> str | None:
    """The probe's complaint, or None when it passes."""
    try:
        asyncio.run(uvicorn_fast.self_test())
    except transport.Incompatible as exc:
        return str(exc)
    return None


def test_the_probe_passes_on_the_locked_versions() -> None:
    assert probe() is None


@pytest.mark.usefixtures("new_uvicorn_attribute")
def test_the_probe_finds_an_attribute_outside_the_slots() -> None:
    assert probe() == "attributes outside the slots: ['added_in_a_later_uvicorn']"


@pytest.mark.usefixtures("new_frame_parser")
def test_the_probe_finds_a_parser_it_cannot_let_go() -> None:
    # Nothing breaks for a client here: the transport would only keep a parser per idle
    # connection and take the slow path for every frame. The probe says so.
    complaint = probe()
    assert complaint is not None and "parser" in complaint


def test_the_probe_finds_a_transport_that_offers_no_direct_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As if uvicorn stopped calling the hook where the transport adds its extensions.
    monkeypatch.setattr(
        uvicorn_fast.DirectWebSocketProtocol,
        "handle_connect",
        WebSocketsSansIOProtocol.handle_connect,
    )
    assert probe() == "the direct receive was not offered"


@pytest.mark.usefixtures("new_uvicorn_attribute")
def test_auto_falls_back_to_stock_websockets_with_one_warning() -> None:
    with structlog.testing.capture_logs() as logs:
        chosen = transport.choose(Settings(ws_fast_path="auto", max_connections=100))
    assert not chosen.fast
    assert chosen.options == {
        "ws": "websockets-sansio",
        "http": "auto",
        "limit_concurrency": 100 + 64,
    }
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert [e["event"] for e in warnings] == ["ws_fast_path_unavailable"]
    assert "added_in_a_later_uvicorn" in warnings[0]["reason"]
    assert "uvicorn" in warnings[0]["versions"] and "websockets" in warnings[0]["versions"]


@pytest.mark.usefixtures("new_uvicorn_attribute")
def test_on_refuses_to_start_when_the_probe_fails() -> None:
    with pytest.raises(SettingsError, match="CODEMENTOR_WS_FAST_PATH=on.*added_in_a_later"):
        transport.choose(Settings(ws_fast_path="on"))


def test_auto_and_on_take_the_fast_transport_when_it_fits() -> None:
    for mode in ("auto", "on"):
        chosen = transport.choose(Settings(ws_fast_path=mode))
        assert chosen.fast
        assert chosen.options["ws"] is uvicorn_fast.DirectWebSocketProtocol
        assert chosen.options["http"] is uvicorn_fast.http_protocol()


def test_off_never_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    async def fails() -> None:
        raise AssertionError("off must not run the probe")

    monkeypatch.setattr(uvicorn_fast, "self_test", fails)
    with structlog.testing.capture_logs() as logs:
        chosen = transport.choose(Settings(ws_fast_path="off", max_connections=0))
    assert not chosen.fast and chosen.options["limit_concurrency"] is None
    assert logs == []


def test_an_import_failure_is_a_misfit_too(monkeypatch: pytest.MonkeyPatch) -> None:
    # What an upgrade that renames a private module does: the import itself fails.
    monkeypatch.setitem(sys.modules, "server.uvicorn_fast", None)
    with structlog.testing.capture_logs() as logs:
        chosen = transport.choose(Settings(ws_fast_path="auto"))
    assert not chosen.fast
    assert logs[0]["reason"].startswith("ModuleNotFoundError: import of server.uvicorn_fast")


def test_a_bad_mode_is_refused() -> None:
    with pytest.raises(SettingsError, match="must be auto, on or off, got 'fast'"):
        Settings(ws_fast_path="fast").validate()


# -- the running server ----------------------------------------------------------------


def transports(server: ServerProcess) -> dict[str, float]:
    return {
        kind: server.metric(f'codementor_ws_connections_total{{transport="{kind}"}}')
        for kind in ("direct", "asgi")
    }


@pytest.fixture
def started(server_factory: Callable[..., ServerProcess]) -> Callable[[str], ServerProcess]:
    return lambda mode: server_factory(CODEMENTOR_WS_FAST_PATH=mode)


@pytest.mark.anyio
@pytest.mark.parametrize(("mode", "taken"), [("auto", "direct"), ("off", "asgi")])
async def test_the_server_serves_each_connection_on_the_chosen_transport(
    started: Callable[[str], ServerProcess], mode: str, taken: str
) -> None:
    server = started(mode)
    events = [e for e in server.events() if e["event"] == "ws_transport"]
    assert [e["fast_path"] for e in events] == [mode == "auto"]
    async with YClient(server.ws_url("t")) as a, YClient(server.ws_url("t")) as b:
        await a.wait_synced()
        await b.wait_synced()
        a.text += "over " + mode
        await eventually(lambda: str(b.text) == "over " + mode)
    counts = transports(server)
    assert counts[taken] == 2
    assert sum(counts.values()) == 2


@pytest.mark.slow
def test_a_misfit_install_serves_stock_in_auto_and_refuses_in_on(tmp_path: Path) -> None:
    """End to end, in a fresh process whose uvicorn differs: ``auto`` starts and says
    why it serves stock websockets, ``on`` exits 2 with the reason."""
    refused = subprocess.run(
        [sys.executable, "-c", MISFIT, "serve", "--ws-fast-path", "on", "--port", str(free_port()),
         "--data-dir", str(tmp_path / "on")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    assert "CODEMENTOR_WS_FAST_PATH=on" in refused.stderr
    assert "added_in_a_later_uvicorn" in refused.stderr

    class Misfit(ServerProcess):
        def command(self) -> list[str]:
            return [sys.executable, "-c", MISFIT, "serve", "--port", str(self.port),
                    "--data-dir", str(self.data_dir)]  # fmt: skip

    async def one_client(server: ServerProcess) -> str:
        async with YClient(server.ws_url("m")) as a:
            await a.wait_synced()
            a.text += "still served"
            async with YClient(server.ws_url("m")) as b:
                await b.wait_synced()
                return str(b.text)

    with Misfit(tmp_path / "auto", {"CODEMENTOR_WS_FAST_PATH": "auto"}) as server:
        assert asyncio.run(one_client(server)) == "still served"
        warnings = [e for e in server.events() if e["event"] == "ws_fast_path_unavailable"]
        assert len(warnings) == 1
        assert "added_in_a_later_uvicorn" in warnings[0]["reason"]
        assert transports(server) == {"direct": 0, "asgi": 2}
