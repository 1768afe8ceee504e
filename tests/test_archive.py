"""The workspace's zip: deterministic downloads, bounded uploads (``server.workspace_zip``),
and ``/api/rooms/{room}/archive`` on a real server."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator

import httpx
import pytest

from rooms.roles import Role
from rooms.workspace import WorkspaceLimits
from server import workspace_zip
from server.workspace_zip import ZipRefused
from tests.serverproc import ServerProcess
from tests.support import SECRET, sign

pytestmark = pytest.mark.anyio

LIMITS = WorkspaceLimits(max_files=5, max_file_bytes=1000, max_workspace_bytes=3000)


def make_zip(entries: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


# -- building --------------------------------------------------------------------------


def test_the_same_workspace_gives_the_same_bytes() -> None:
    files = [("main.py", "print('é')\n"), ("src/b.py", "b\n"), ("a.txt", "a\n")]
    first = workspace_zip.build(files)
    again = workspace_zip.build([files[0], *reversed(files[1:])])
    assert first == again
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        infos = archive.infolist()
        assert [i.filename for i in infos] == ["main.py", "a.txt", "src/b.py"]
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in infos)
        assert all((i.external_attr >> 16) & 0o777 == 0o644 for i in infos)
        assert archive.read("main.py").decode() == "print('é')\n"


# -- reading ---------------------------------------------------------------------------


def test_a_zipped_folder_loses_its_top_folder_and_junk() -> None:
    data = make_zip(
        {
            "proj/main.py": b"x = 1\n",
            "proj/src/util.py": b"y = 2\n",
            "proj/.DS_Store": b"\0\0",
            "__MACOSX/proj/._main.py": b"\0",
            "proj/src/": b"",
        }
    )
    assert workspace_zip.read(data, LIMITS) == {"main.py": "x = 1\n", "src/util.py": "y = 2\n"}


def test_nfd_names_are_normalised() -> None:
    data = make_zip({"cafe\u0301.py": b"1\n"})
    assert workspace_zip.read(data, LIMITS) == {"caf\u00e9.py": "1\n"}


@pytest.mark.parametrize(
    ("data", "status", "words"),
    [
        (b"not a zip", 400, "not a zip"),
        (make_zip({f"f{n}.py": b"" for n in range(6)}), 413, "at most 5"),
        (make_zip({"a.py": b"a" * 900, "b.py": b"b" * 900, "c.py": b"c" * 900, "d.py": b"d" * 900}),
         413, "3000 bytes in all"),
        (make_zip({"big.py": b"x" * 1001}, zipfile.ZIP_STORED), 413, "at most 1000"),
        (make_zip({"../up.py": b"x"}), 422, ". or .. segments"),
        (make_zip({"bin.py": b"\xff\xfe\x00"}), 422, "not UTF-8"),
    ],
)  # fmt: skip
def test_bad_uploads_are_refused(data: bytes, status: int, words: str) -> None:
    with pytest.raises(ZipRefused) as refused:
        workspace_zip.read(data, LIMITS)
    assert refused.value.status == status
    assert words in refused.value.message


def test_a_zip_bomb_is_refused_before_extracting() -> None:
    roomy = WorkspaceLimits(max_files=5, max_file_bytes=10**6, max_workspace_bytes=10**7)
    bomb = make_zip({"bomb.py": b"\0" * 500_000})  # about 500 bytes compressed
    with pytest.raises(ZipRefused) as refused:
        workspace_zip.read(bomb, roomy)
    assert refused.value.status == 413
    assert "inflates more than 100 times" in refused.value.message


def test_declared_sizes_that_lie_stop_at_the_limit() -> None:
    """An entry that declares a small size yet inflates to more is cut off by the
    bytes actually read, not trusted."""
    data = bytearray(make_zip({"liar.py": b"a" * 900}, zipfile.ZIP_STORED))
    # Rewrite the declared size (local header and central directory) to 10 bytes.
    for header, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.index(header) + offset
        data[at : at + 4] = (10).to_bytes(4, "little")
    small = WorkspaceLimits(max_files=5, max_file_bytes=100, max_workspace_bytes=3000)
    with pytest.raises(ZipRefused) as refused:
        workspace_zip.read(bytes(data), small)
    assert refused.value.status in (400, 413)  # cut off, or the CRC no longer matches


# -- over HTTP -------------------------------------------------------------------------

ENV = {
    "CODEMENTOR_SECRET": SECRET,
    "CODEMENTOR_MAX_FILES": "5",
    "CODEMENTOR_MAX_FILE_BYTES": "1000",
    "CODEMENTOR_MAX_WORKSPACE_BYTES": "3000",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("archive-data"), ENV) as proc:
        yield proc


async def test_upload_then_download(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        created = await http.post("/api/rooms", json={"title": "Proj é"})
        room = created.json()["room"]
        editor = {"Authorization": f"Bearer {sign(room, Role.EDITOR)}"}
        viewer = {"Authorization": f"Bearer {sign(room, Role.VIEWER)}"}
        upload = make_zip({"p/main.py": b"import util\n", "p/util.py": b"X = 1\n"})
        answer = await http.post(f"/api/rooms/{room}/archive", content=upload, headers=editor)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"added": ["util.py"], "replaced": ["main.py"]}
        refused = await http.post(f"/api/rooms/{room}/archive", content=upload, headers=viewer)
        assert refused.status_code == 403
        bomb = make_zip({f"{n}.py": b"a" * 900 for n in range(4)})
        too_big = await http.post(f"/api/rooms/{room}/archive", content=bomb, headers=editor)
        assert too_big.status_code == 413
        # Fits alone, not with the two files there: the workspace's rule, naming a path.
        more = make_zip({f"m{n}.py": b"" for n in range(4)})
        over = await http.post(f"/api/rooms/{room}/archive", content=more, headers=editor)
        assert over.status_code == 422, over.text
        assert over.json()["fields"][0]["path"].startswith("m")
        assert "at most 5 files" in over.json()["error"]
        bad = await http.post(f"/api/rooms/{room}/archive", content=b"junk", headers=editor)
        assert bad.status_code == 400 and "not a zip" in bad.json()["error"]
        listed = await http.get(f"/api/rooms/{room}/files", headers=viewer)
        assert [f["path"] for f in listed.json()] == ["main.py", "util.py"], "all or nothing"
        download = await http.get(f"/api/rooms/{room}/archive", headers=viewer)
        assert download.status_code == 200
        assert download.headers["content-type"] == "application/zip"
        assert 'filename="Proj _.zip"' in download.headers["content-disposition"]
        expected = workspace_zip.build([("main.py", "import util\n"), ("util.py", "X = 1\n")])
        assert download.content == expected
        snapshot = await http.get(f"/api/rooms/{room}/snapshot?format=zip", headers=viewer)
        assert snapshot.content == expected
        text = await http.get(f"/api/rooms/{room}/snapshot", headers=viewer)
        assert text.text == "import util\n"
