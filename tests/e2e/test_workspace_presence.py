"""Presence per file in the browser: the People tab and the file tree say who has which
file open, and Follow (follow.ts) takes the follower's editor to the followed person's
file whenever they switch, until the follower types or picks a file themselves."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.e2e.conftest import PHONE, create_room
from tests.e2e.helpers import (
    create_file,
    editor,
    file_dot,
    file_item,
    file_tab,
    issue_shot,
    open_file,
    open_room,
    person_row,
    show_tab,
    type_at_end,
)
from tests.serverproc import ServerProcess

# Whether every part of a row sits on one line (their vertical middles within 6px).
ONE_LINE_JS = """(row) => {
    const mids = Array.from(row.children, (c) => {
        const r = c.getBoundingClientRect()
        return r.top + r.height / 2
    })
    return Math.max(...mids) - Math.min(...mids) < 6
}"""


def test_people_and_tree_show_who_is_where_and_follow_switches_files(
    e2e_server: ServerProcess, people: Any
) -> None:
    room = create_room(e2e_server, "pair", "python", "Presence")
    ada = open_room(people.page("Ada", "#c4314b"), room["links"]["owner"])
    bob = open_room(people.page("Bob", "#1f7a3a"), room["links"]["editor"])
    create_file(ada, "util.py")
    type_at_end(ada, "def util():\n    return 'util'")
    create_file(ada, "notes.py")
    type_at_end(ada, "# Ada's notes")
    file_tab(ada, "main.py").click()
    type_at_end(ada, "print('main')")

    # Bob opens util.py: Ada's People tab and tree say so; nobody's dot is on main.py but Ada's.
    open_file(bob, "util.py")
    show_tab(ada, "People")
    expect(person_row(ada, "Bob").locator(".people-file")).to_have_text("util.py")
    expect(person_row(ada, "Ada").locator(".people-file")).to_have_text("main.py")
    expect(file_dot(ada, "util.py", "Bob")).to_be_visible()
    expect(file_item(ada, "util.py").locator(".file-dots")).to_have_attribute(
        "aria-label", "Open by Bob"
    )
    expect(file_item(ada, "main.py").locator(".file-dots")).to_have_count(0)  # only Ada there
    expect(file_dot(bob, "main.py", "Ada")).to_be_visible()
    issue_shot(ada, "presence-people-and-tree")

    # Ada follows Bob: her editor goes to util.py at once.
    follow = person_row(ada, "Bob").get_by_role("button", name="Follow Bob")
    follow.click()
    expect(follow).to_have_attribute("aria-pressed", "true")
    expect(follow).to_have_text("Following")
    expect(file_tab(ada, "util.py")).to_have_attribute("aria-selected", "true")
    expect(editor(ada)).to_contain_text("return 'util'")

    # Bob switches to main.py: Ada's editor follows; the dots move with them.
    file_tab(bob, "main.py").click()
    expect(file_tab(ada, "main.py")).to_have_attribute("aria-selected", "true")
    expect(editor(ada)).to_contain_text("print('main')")
    expect(person_row(ada, "Bob").locator(".people-file")).to_have_text("main.py")
    expect(file_dot(bob, "main.py", "Ada")).to_be_visible()
    expect(file_dot(ada, "util.py", "Bob")).to_have_count(0)

    # Bob creates a file (in a folder) and types: Ada's editor shows it as it is made.
    create_file(bob, "lib/new.py")
    type_at_end(bob, "NEW = 'from Bob'")
    expect(file_tab(ada, "lib/new.py")).to_have_attribute("aria-selected", "true")
    expect(editor(ada)).to_contain_text("NEW = 'from Bob'")
    expect(person_row(ada, "Bob").locator(".people-file")).to_have_text("lib/new.py")
    expect(follow).to_have_attribute("aria-pressed", "true")
    issue_shot(ada, "presence-following-bob")

    # Ada picks a file herself: following stops (follow.ts: she took the wheel)...
    open_file(ada, "notes.py")
    expect(follow).to_have_attribute("aria-pressed", "false")
    expect(follow).to_have_text("Follow")
    # ...so Bob switching files no longer moves her.
    file_tab(bob, "util.py").click()
    expect(person_row(ada, "Bob").locator(".people-file")).to_have_text("util.py")
    expect(file_tab(ada, "notes.py")).to_have_attribute("aria-selected", "true")
    expect(editor(ada)).to_contain_text("# Ada's notes")

    # Following again, then typing, stops it too.
    follow.click()
    expect(file_tab(ada, "util.py")).to_have_attribute("aria-selected", "true")
    type_at_end(ada, "\n# Ada typed")
    expect(follow).to_have_attribute("aria-pressed", "false")
    file_tab(bob, "lib/new.py").click()
    expect(person_row(ada, "Bob").locator(".people-file")).to_have_text("lib/new.py")
    expect(file_tab(ada, "util.py")).to_have_attribute("aria-selected", "true")
    expect(editor(bob)).to_contain_text("NEW = 'from Bob'")

    # Ada renames (moves) the file Bob has open: his presence and dot move with it.
    file_item(ada, "lib/new.py").click()
    ada.locator(".file-actions").get_by_role("button", name="Rename").click()
    ada.get_by_label("Rename lib/new.py to").fill("pkg/moved.py")
    ada.locator(".file-form").get_by_role("button", name="Rename").click()
    expect(file_tab(bob, "pkg/moved.py")).to_have_attribute("aria-selected", "true")
    expect(person_row(ada, "Bob").locator(".people-file")).to_have_text("pkg/moved.py")
    expect(file_dot(ada, "pkg/moved.py", "Bob")).to_be_visible()
    # She deletes it: Bob's editor goes to another file, and presence says which.
    ada.locator(".file-actions").get_by_role("button", name="Delete").click()
    ada.get_by_role("dialog", name="Delete pkg/moved.py?").get_by_role(
        "button", name="Delete"
    ).click()
    expect(file_tab(bob, "pkg/moved.py")).to_have_count(0)
    shown = bob.locator('.file-tabs [role="tab"][aria-selected="true"]')
    expect(shown).to_have_count(1)
    expect(person_row(ada, "Bob").locator(".people-file")).to_have_text(
        shown.get_attribute("data-path") or "?"
    )
    expect(file_dot(ada, str(shown.get_attribute("data-path")), "Bob")).to_be_visible()


def test_broadcast_student_follows_the_teacher_across_files(
    e2e_server: ServerProcess, people: Any
) -> None:
    room = create_room(e2e_server, "broadcast", "python", "Files 101")
    teacher = open_room(people.page("Ms Tan", "#b85300"), room["links"]["owner"])
    type_at_end(teacher, "from shapes import area")
    create_file(teacher, "shapes.py")
    type_at_end(teacher, "def area(w, h):\n    return w * h")
    file_tab(teacher, "main.py").click()
    student = open_room(people.page("Sam", "#1f7a3a"), room["links"]["viewer"])

    # Students follow the teacher from the start (student.ts).
    following = student.get_by_role("button", name="Following the teacher")
    expect(following).to_have_attribute("aria-pressed", "true")
    expect(file_tab(student, "main.py")).to_have_attribute("aria-selected", "true")
    expect(file_dot(student, "main.py", "Ms Tan")).to_be_visible()

    # The teacher switches files: the student's editor goes along.
    file_tab(teacher, "shapes.py").click()
    expect(file_tab(student, "shapes.py")).to_have_attribute("aria-selected", "true")
    expect(editor(student)).to_contain_text("return w * h")
    expect(file_dot(student, "shapes.py", "Ms Tan")).to_be_visible()
    # The teacher sees where the student is.
    show_tab(teacher, "People")
    expect(person_row(teacher, "Sam").locator(".people-file")).to_have_text("shapes.py")

    # A file made during the lesson: the student sees it open, with the teacher's text.
    create_file(teacher, "tests/test_shapes.py")
    type_at_end(teacher, "assert area(2, 3) == 6")
    expect(file_tab(student, "tests/test_shapes.py")).to_have_attribute("aria-selected", "true")
    expect(editor(student)).to_contain_text("assert area(2, 3) == 6")
    expect(person_row(teacher, "Sam").locator(".people-file")).to_have_text("tests/test_shapes.py")
    # A long path is cut short (the full one in its title): each row stays one line.
    expect(person_row(teacher, "Ms Tan").locator(".people-file")).to_have_attribute(
        "title", "You have tests/test_shapes.py open"
    )
    for name in ("Ms Tan", "Sam"):
        assert person_row(teacher, name).evaluate(ONE_LINE_JS), f"{name}'s row wraps"
    issue_shot(student, "presence-student-follows-teacher")
    issue_shot(teacher, "presence-teacher-sees-student")

    # The student looks at another file: following stops; the teacher moving does not
    # pull them back, until they ask to follow again.
    open_file(student, "main.py")
    expect(student.get_by_role("button", name="Follow the teacher")).to_have_attribute(
        "aria-pressed", "false"
    )
    file_tab(teacher, "shapes.py").click()
    expect(file_dot(student, "shapes.py", "Ms Tan")).to_be_visible()
    expect(file_tab(student, "main.py")).to_have_attribute("aria-selected", "true")
    student.get_by_role("button", name="Follow the teacher").click()
    expect(following).to_have_attribute("aria-pressed", "true")
    expect(file_tab(student, "shapes.py")).to_have_attribute("aria-selected", "true")
    expect(editor(student)).to_contain_text("return w * h")

    # Another student's file shows on the teacher's tree, never on a student's (students'
    # presence goes to the teacher only).
    kim = open_room(people.page("Kim", "#7a3ac4"), room["links"]["viewer"])
    open_file(kim, "main.py")
    expect(file_dot(teacher, "main.py", "Kim")).to_be_visible()
    expect(person_row(teacher, "Kim").locator(".people-file")).to_have_text("main.py")
    expect(file_dot(kim, "shapes.py", "Ms Tan")).to_be_visible()
    expect(student.locator('.file-dots .dot[data-name="Kim"]')).to_have_count(0)
    expect(kim.locator('.file-dots .dot[data-name="Sam"]')).to_have_count(0)


# Whether the editor's middle is the editor's own (nothing drawn over it) and on screen.
EDITOR_UNCOVERED_JS = """() => {
    const content = document.querySelector('.cm-content').getBoundingClientRect()
    const x = content.left + Math.min(content.width / 2, 120)
    const y = content.top + 12
    const hit = document.elementFromPoint(x, y)
    return y > 0 && y < window.innerHeight && !!hit && !!hit.closest('.cm-editor')
}"""


def scroll_width(page: Any) -> int:
    width: int = page.evaluate("() => document.documentElement.scrollWidth")
    return width


def test_phone_tree_tabs_and_editor(e2e_server: ServerProcess, people: Any) -> None:
    room = create_room(e2e_server, "pair", "python", "Phone")
    bob = open_room(people.page("Bob", "#1f7a3a"), room["links"]["editor"])
    create_file(bob, "util.py")
    type_at_end(bob, "def util():\n    return 'util'")
    create_file(bob, "lib/deep/helpers_with_a_long_name.py")
    type_at_end(bob, "HELP = 1")
    ada = open_room(people.page("Ada", "#c4314b", viewport=PHONE), room["links"]["owner"])
    type_at_end(ada, "print('main')")
    issue_shot(ada, "phone-closed")
    # The tree folds behind "Files"; the editor is on screen, nothing over it.
    expect(file_item(ada, "util.py")).to_be_hidden()
    assert ada.evaluate(EDITOR_UNCOVERED_JS)

    # Open a file from the tree: the tree folds away again, the editor shows the file.
    toggle = ada.get_by_role("button", name="Files")
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(file_dot(ada, "lib/deep/helpers_with_a_long_name.py", "Bob")).to_be_visible()
    issue_shot(ada, "phone-tree-open")
    file_item(ada, "util.py").click()
    expect(file_tab(ada, "util.py")).to_have_attribute("aria-selected", "true")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(editor(ada)).to_contain_text("return 'util'")
    expect(editor(ada)).to_be_in_viewport()
    assert ada.evaluate(EDITOR_UNCOVERED_JS)

    # A third file with a long name: the tabs scroll sideways, the page does not.
    toggle.click()
    file_item(ada, "lib/deep/helpers_with_a_long_name.py").click()
    expect(editor(ada)).to_contain_text("HELP = 1")
    expect(ada.locator(".file-tabs [role=tab]")).to_have_count(3)
    expect(file_tab(ada, "lib/deep/helpers_with_a_long_name.py")).to_be_in_viewport()
    assert scroll_width(ada) <= PHONE["width"]
    issue_shot(ada, "phone-three-tabs")

    # Switch tabs (clicks: the fixture pages have no touch); the editor follows and stays visible.
    file_tab(ada, "main.py").click()
    expect(file_tab(ada, "main.py")).to_have_attribute("aria-selected", "true")
    expect(editor(ada)).to_contain_text("print('main')")
    assert ada.evaluate(EDITOR_UNCOVERED_JS)
    file_tab(ada, "util.py").click()
    expect(editor(ada)).to_contain_text("return 'util'")
    type_at_end(ada, "\n# typed on a phone")
    expect(editor(bob)).not_to_contain_text("# typed on a phone")  # Bob is elsewhere
    open_file(bob, "util.py")
    expect(editor(bob)).to_contain_text("# typed on a phone")

    # Who is where, on a phone: the People tab below the editor.
    show_tab(ada, "People")
    expect(person_row(ada, "Bob").locator(".people-file")).to_have_text("util.py")
    expect(person_row(ada, "Bob").get_by_role("button", name="Follow Bob")).to_be_visible()
    assert scroll_width(ada) <= PHONE["width"]
    person_row(ada, "Bob").scroll_into_view_if_needed()
    issue_shot(ada, "phone-people")


def test_phone_student_follows_the_teacher(e2e_server: ServerProcess, people: Any) -> None:
    room = create_room(e2e_server, "broadcast", "python", "Phone class")
    teacher = open_room(people.page("Ms Tan", "#b85300"), room["links"]["owner"])
    create_file(teacher, "shapes.py")
    type_at_end(teacher, "def area(w, h):\n    return w * h")
    student = open_room(people.page("Sam", "#1f7a3a", viewport=PHONE), room["links"]["viewer"])
    expect(student.get_by_role("button", name="Following the teacher")).to_be_visible()
    expect(file_tab(student, "shapes.py")).to_have_attribute("aria-selected", "true")
    file_tab(teacher, "main.py").click()
    type_at_end(teacher, "print('phone lesson')")
    expect(file_tab(student, "main.py")).to_have_attribute("aria-selected", "true")
    expect(editor(student)).to_contain_text("print('phone lesson')")
    expect(editor(student)).to_be_in_viewport()
    assert student.evaluate(EDITOR_UNCOVERED_JS)
    assert scroll_width(student) <= PHONE["width"]
    issue_shot(student, "phone-student-following")
