"""People who join through one link are told apart: the page exchanges the link's token
for a personal one (POST /api/rooms/{room}/join), and the teacher's raised hands and
"Let edit" go by what the server verified, not by what a student's presence says."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.e2e.conftest import PHONE, create_room, room_details
from tests.e2e.helpers import editor, open_room
from tests.serverproc import ServerProcess
from tests.support import wait_until


def viewers(server: ServerProcess, room: dict[str, Any]) -> dict[str, str]:
    """Connected viewers as the server knows them: display name -> user id."""
    return {p["name"]: p["id"] for p in room_details(server, room)["peers"]["viewer"]}


def test_students_of_one_link_get_their_own_identities(
    e2e_server: ServerProcess, people: Any, screenshot: Any
) -> None:
    room = create_room(e2e_server, "broadcast", "python", "Loops 101")
    link = room["links"]["viewer"]
    teacher = open_room(people.page("Ms Tan", "#b85300"), room["links"]["owner"])
    sam = open_room(people.page("Sam", "#1f7a3a"), link)
    ann = open_room(people.page("Ann", "#7b3fc4"), link)
    lee = open_room(people.page("Lee", "#0f7481", viewport=PHONE), link)

    # One link, three people: three user ids, each with the name its student chose.
    wait_until(lambda: len(viewers(e2e_server, room)) == 3, what="three viewers")
    ids = viewers(e2e_server, room)
    assert set(ids) == {"Sam", "Ann", "Lee"} and len(set(ids.values())) == 3

    for student in (sam, ann, lee):
        student.get_by_role("button", name="Raise hand").click()
    hands = teacher.locator(".person.hand-up")
    expect(hands).to_have_count(3)
    expect(teacher.locator("#people-heading")).to_contain_text("3 hands")
    for name in ("Sam", "Ann", "Lee"):
        expect(teacher.locator(".person.hand-up", has_text=name)).to_be_visible()
    screenshot(teacher, "three-hands")
    screenshot(lee, "phone-hand-raised", full_page=True)

    # The grant reaches Ann, and only Ann.
    teacher.get_by_role("button", name="Let Ann edit for 10 minutes").click()
    expect(editor(ann)).to_have_attribute("aria-readonly", "false")
    expect(ann.locator(".notice", has_text="You can now edit the code until")).to_be_visible()
    for other in (sam, lee):
        expect(editor(other)).to_have_attribute("aria-readonly", "true")
    expect(teacher.locator(".person.hand-up")).to_have_count(2)
    details = room_details(e2e_server, room)["peers"]
    assert [p["id"] for p in details["editor"]] == [ids["Ann"]]

    # A reload is the same person (the personal token is kept per room).
    sam.reload()
    expect(sam.locator(".conn")).to_have_attribute("data-state", "connected")
    wait_until(lambda: viewers(e2e_server, room).get("Sam") == ids["Sam"], what="Sam again")

    # A rename keeps the person: the server knows the new name under the same id.
    lee.get_by_role("button", name="Change name and colour").click()
    dialog = lee.get_by_role("dialog", name="Your name and colour")
    dialog.get_by_label("Display name").fill("Lee Chen")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    wait_until(lambda: viewers(e2e_server, room).get("Lee Chen") == ids["Lee"], what="rename")
    expect(teacher.locator(".person.hand-up", has_text="Lee Chen")).to_be_visible()
    expect(lee.locator(".me")).to_contain_text("Lee Chen")

    # The AI's name is not anyone's to take.
    lee.get_by_role("button", name="Change name and colour").click()
    dialog.get_by_label("Display name").fill("CodeMentor AI")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.get_by_role("alert")).to_contain_text("AI pair-programmer")
    screenshot(lee, "reserved-name", full_page=True)
    dialog.get_by_role("button", name="Cancel").click()
    expect(lee.locator(".me")).to_contain_text("Lee Chen")
    screenshot(teacher)
