"""A stock yjs client (yjs + y-websocket in Node, bound to ``code``) and a Python client
editing another file of the same room's workspace: both converge, and REST shows both
files. The stock client knows nothing of ``files``; it edits the entry file as ever.

Needs Node on PATH and ``npm ci --prefix tests/js``.
"""

from __future__ import annotations

import httpx
import pytest
from pycrdt import Text

from crdt import schema
from crdt.offsets import utf8_len
from tests.serverproc import ServerProcess
from tests.support import eventually
from tests.test_interop_yjs import node_client
from tests.yclient import YClient

pytestmark = pytest.mark.anyio


async def test_a_stock_client_on_code_and_a_python_client_on_a_file(
    server: ServerProcess,
) -> None:
    room = "interop-workspace"
    async with node_client(server, room) as js, YClient(server.ws_url(room)) as py:
        await js.wait_synced()
        await py.wait_synced()
        # Concurrently: the stock client types into code, the Python one adds a file.
        await js.insert("print(helper())  # «js» 😀\n", index=0)
        schema.files(py.doc)["lib/helper.py"] = Text("def helper():\n    return 'ü'\n")
        await js.wait_state(lambda s: "«js»" in s["text"])
        await eventually(lambda: "«js»" in schema.code_text(py.doc))
        # Then both keep typing: the stock client in code, the Python one in its file.
        await js.insert("# more from js\n", index="end")
        lib = schema.files(py.doc)["lib/helper.py"]
        assert isinstance(lib, Text)
        lib.insert(utf8_len(str(lib)), "# more from python ñ\n")
        state = await js.wait_state(lambda s: "more from js" in s["text"])
        await eventually(lambda: "more from js" in schema.code_text(py.doc))
        assert state["text"] == schema.code_text(py.doc)
        assert py.denials == [] and not js.errors, js.diagnostics()
        async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
            listed = await http.get(f"/api/rooms/{room}/files")
            assert [f["path"] for f in listed.json()] == ["main.py", "lib/helper.py"]
            code = await http.get(f"/api/rooms/{room}/files/main.py")
            assert code.text == state["text"]

            async def file_has_both() -> bool:
                got = await http.get(f"/api/rooms/{room}/files/lib/helper.py")
                return got.text == "def helper():\n    return 'ü'\n# more from python ñ\n"

            await eventually(file_has_both)
