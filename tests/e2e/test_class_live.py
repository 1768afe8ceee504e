"""The two-way class (issue 21, section A) in the browser: a teacher and five students,
each in a browser context of their own, joined through the class's one viewer link.

A question goes to the teacher and is published to everyone; hands are listed in the
order they were raised, with their question; an edit grant is given and revoked early;
the teacher lowers every hand; a muted student's question is refused with a notice.
"""

from __future__ import annotations

import asyncio
import re
import threading
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import PHONE, create_room, snapshot
from tests.e2e.helpers import (
    editor,
    issue_shot,
    open_room,
    show_tab,
    thirteen_students,
    type_at_end,
)
from tests.e2e.test_accessibility import audited, serious_violations
from tests.serverproc import ServerProcess
from tests.support import wait_until

__all__ = ["audited"]  # the fixture, shared with the accessibility tests

STUDENTS = [("Cy", "#1f7a3a"), ("Ben", "#6b3fb3"), ("Ana", "#0f6f8f"), ("Dee", "#a3366f")]
QUESTION = "Why does range(10) stop at 9?"


def full_shot(page: Page, name: str) -> None:
    """The whole page (a phone's tabs are below the editor): test-output/issue21/."""
    path = issue_shot(page, name, issue=21)
    page.screenshot(path=str(path), full_page=True)


def chat_input(page: Page) -> Any:
    return page.get_by_role("textbox", name="Chat message")


def ask(page: Page, text: str) -> None:
    """A student sends a message from the Chat tab."""
    show_tab(page, "Chat")
    box = chat_input(page)
    box.fill(text)
    box.press("Enter")


def test_questions_hands_grant_revoke_and_mute(e2e_server: Any, people: Any) -> None:
    # Refused requests (the muted student's question) are logged by Chromium as console
    # errors; the page says why in words, which this test checks.
    people.allow_console(r"status of 403")
    room = create_room(e2e_server, "broadcast", "python", "Loops 101")
    teacher = open_room(people.page("Ms Tan", "#b85300"), room["links"]["owner"])
    type_at_end(teacher, "for i in range(10):\n    print(i)")
    wait_until(lambda: "print(i)" in snapshot(e2e_server, room), what="the teacher's code")
    link = room["links"]["viewer"]  # one link for the whole class; each joins by name
    students = {name: open_room(people.page(name, color), link) for name, color in STUDENTS}
    eve = open_room(people.page("Eve", "#2f5bd3", viewport=PHONE), link)
    students["Eve"] = eve
    everyone = [teacher, *students.values()]

    show_tab(teacher, "Class")
    expect(teacher.locator("#class-chat-policy")).to_have_value("questions")
    expect(teacher.locator("#class-ai-policy")).to_have_value("full")

    # -- a question, to the teacher only, then published to the class --------------------
    ana = students["Ana"]
    show_tab(ana, "Chat")
    expect(chat_input(ana)).to_have_attribute("placeholder", "Ask the teacher a question")
    expect(ana.locator(".student-chat")).to_contain_text("Only the teacher sees your question")
    ask(ana, QUESTION)
    expect(ana.locator(".composer-sent")).to_contain_text("Sent to the teacher")
    expect(chat_input(ana)).to_have_value("")
    inbox = teacher.locator(".class-questions .question-item")
    expect(inbox).to_have_count(1)
    expect(inbox.first).to_contain_text("Ana")
    expect(inbox.first).to_contain_text(QUESTION)
    # Nobody else sees it before it is published.
    show_tab(students["Ben"], "Chat")
    expect(students["Ben"].locator(".chat-message", has_text=QUESTION)).to_have_count(0)
    inbox.first.get_by_role("button", name="Publish Ana's question to the class").click()
    expect(inbox).to_have_count(0)
    for page in everyone:
        show_tab(page, "Chat")
        published = page.locator(".chat-message.question", has_text=QUESTION)
        expect(published).to_be_visible()
        expect(published.locator(".author")).to_have_text("Ana")
        expect(published.locator(".question-badge")).to_have_text("Question")
    issue_shot(eve, "student-phone-published-question", issue=21)
    full_shot(eve, "student-phone-full")
    expect(students["Cy"].locator(".chat-message.question")).to_contain_text("shared by Ms Tan")

    # -- two hands, in the order they were raised (Cy before Ben: not by name) ------------
    cy, ben = students["Cy"], students["Ben"]
    cy.get_by_role("button", name="Raise hand").click()
    expect(cy.get_by_role("button", name="Lower hand")).to_have_attribute("aria-pressed", "true")
    show_tab(teacher, "Class")
    hands = teacher.locator(".class-hands .hand-item")
    expect(hands).to_have_count(1)
    ben.get_by_role("button", name="Raise hand").click()
    expect(ben.get_by_role("button", name="Lower hand")).to_be_visible()
    expect(ben.get_by_label("Your question (optional)")).to_be_focused()
    issue_shot(ben, "student-hand-question-field", issue=21)
    ben.locator(".hand-form").get_by_role("button", name="Close").click()
    expect(hands).to_have_count(2)
    # Cy adds a question to the raised hand: it keeps its place.
    cy.get_by_label("Your question (optional)").fill("Can I try the loop with a step?")
    cy.get_by_role("button", name="Send question").click()
    expect(cy.locator(".hand-form")).to_be_hidden()
    expect(hands).to_have_count(2)
    expect(hands.locator(".class-name")).to_have_text(["Cy", "Ben"])
    expect(hands.first).to_contain_text("Can I try the loop with a step?")
    expect(hands.first).to_contain_text(re.compile(r"raised (just now|1 min ago)"))
    expect(teacher.locator(".class-section h3", has_text="Hands")).to_contain_text("(2)")
    # A long queue scrolls inside the tab (the panel fills the side, below its tabs).
    panel = teacher.locator(".class-panel")
    assert panel.evaluate("(el) => getComputedStyle(el).overflowY") == "auto"
    box, side = panel.bounding_box(), teacher.locator(".side").bounding_box()
    assert box and side and box["y"] + box["height"] >= side["y"] + side["height"] - 2, (box, side)
    issue_shot(teacher, "teacher-class-tab-hands", issue=21)
    issue_shot(cy, "student-hand-raised", issue=21)

    # -- the teacher lets Cy edit; Cy types; the teacher revokes early ------------------
    hands.first.get_by_role("button", name="Let edit 10 min: Cy").click()
    expect(editor(cy)).to_have_attribute("aria-readonly", "false")
    # The grant answers Cy's hand: Ben's is still up.
    expect(cy.get_by_role("button", name="Raise hand")).to_have_attribute("aria-pressed", "false")
    expect(hands.locator(".class-name")).to_have_text(["Ben"])
    type_at_end(cy, "\n# Cy was here")
    wait_until(lambda: "# Cy was here" in snapshot(e2e_server, room), what="Cy's edit")
    show_tab(teacher, "People")
    revoke = teacher.get_by_role("button", name="Revoke Cy's edit access")
    expect(revoke).to_be_visible()
    issue_shot(teacher, "teacher-people-revoke", issue=21)
    revoke.click()
    expect(editor(cy)).to_have_attribute("aria-readonly", "true")
    expect(cy.locator(".notice", has_text="You are now a viewer")).to_be_visible()
    expect(revoke).to_have_count(0)

    # -- lower all: every student's hand goes down at once ------------------------------
    cy.get_by_role("button", name="Raise hand").click()
    show_tab(teacher, "Class")
    expect(hands.locator(".class-name")).to_have_text(["Ben", "Cy"])
    teacher.get_by_role("button", name="Lower all").click()
    expect(hands).to_have_count(0)
    expect(cy.get_by_role("button", name="Raise hand")).to_have_attribute("aria-pressed", "false")
    expect(ben.get_by_role("button", name="Raise hand")).to_have_attribute("aria-pressed", "false")

    # -- mute: Dee's next question is refused, with a notice ------------------------------
    dee = students["Dee"]
    ask(dee, "Is this on the test?")
    expect(inbox).to_have_count(1)
    inbox.first.get_by_role("button", name="Mute Dee in chat").click()
    muted = teacher.locator(".class-muted .muted-item")
    expect(muted).to_have_count(1)
    expect(muted.first).to_contain_text("Dee")
    inbox.first.get_by_role("button", name="Dismiss Dee's question").click()
    expect(inbox).to_have_count(0)
    ask(dee, "Hello?")
    expect(dee.locator(".composer-error")).to_have_text(re.compile(r"You are muted"))
    expect(dee.locator(".notice.error", has_text="You are muted")).to_be_visible()
    expect(chat_input(dee)).to_have_value("Hello?")  # kept, to send once unmuted
    expect(inbox).to_have_count(0)
    issue_shot(dee, "student-muted-notice", issue=21)
    issue_shot(teacher, "teacher-class-tab-muted", issue=21)

    # -- a closed chat: the box is disabled, with a note --------------------------------
    teacher.locator("#class-chat-policy").select_option("closed")
    expect(chat_input(ana)).to_be_disabled()
    expect(ana.locator(".student-chat")).to_contain_text("closed the chat")
    issue_shot(ana, "student-chat-closed", issue=21)

    # -- an open chat: a student's message goes to everyone, as them ---------------------
    teacher.locator("#class-chat-policy").select_option("open")
    expect(chat_input(ana)).to_be_enabled()
    expect(chat_input(ana)).to_have_attribute("placeholder", "Message everyone…")
    ask(ana, "Thanks, that makes sense!")
    show_tab(teacher, "Chat")
    thanks = teacher.locator(".chat-message", has_text="Thanks, that makes sense!")
    expect(thanks.locator(".author")).to_have_text("Ana")
    expect(thanks).not_to_have_class(re.compile(r"\bquestion\b"))
    expect(students["Ben"].locator(".chat-message", has_text="Thanks, that makes")).to_be_visible()


def test_fork_opens_a_new_tab_with_a_way_back(e2e_server: Any, people: Any) -> None:
    room = create_room(e2e_server, "broadcast", "python", "Loops 101")
    open_room(people.page("Ms Tan", "#b85300"), room["links"]["owner"])
    student = open_room(people.page("Sam", "#1f7a3a"), room["links"]["viewer"])
    with student.context.expect_page() as opened:
        student.get_by_role("button", name="Fork to my own room").click()
    fork = opened.value
    fork.wait_for_url(re.compile(r"/r/"))
    expect(fork.locator(".conn")).to_have_attribute("data-state", "connected")
    assert f"/r/{room['room']}" not in fork.url
    banner = fork.locator(".fork-banner")
    expect(banner).to_contain_text("Forked from Loops 101")
    # The class stays open in its own tab.
    assert f"/r/{room['room']}" in student.url
    issue_shot(fork, "fork-new-tab", issue=21)
    banner.get_by_role("link", name="Back to the class").click()
    fork.wait_for_url(re.compile(rf"/r/{room['room']}\?"))
    expect(fork.locator(".conn")).to_have_attribute("data-state", "connected")
    expect(fork.locator(".badge.mode")).to_have_text("Broadcast")
    expect(fork.locator(".me")).to_contain_text("Sam")


def test_a_big_class_fits_the_people_tab_with_hands_up(
    e2e_server: ServerProcess, people: Any
) -> None:
    """The walk-through's teacher saw 3.5 rows of 13 students: at 1280x800 at least 12 rows
    show at once, hands (with their buttons) included, and the list scrolls."""
    room = create_room(e2e_server, "broadcast", "python", "Loops 101")
    stop = threading.Event()
    token = room["links"]["viewer"].split("token=")[1]
    crowd = threading.Thread(
        target=lambda: asyncio.run(
            thirteen_students(e2e_server, room["room"], token, stop, hands=3, file="main.py")
        ),
        daemon=True,
    )
    crowd.start()
    try:
        teacher = open_room(people.page("Ms Rivera", "#c4314b"), room["links"]["owner"])
        show_tab(teacher, "People")
        rows = teacher.locator(".person")
        expect(rows).to_have_count(14)
        expect(teacher.locator(".person.hand-up")).to_have_count(3)
        grant = teacher.get_by_role("button", name="Let Student 01 edit for 10 minutes")
        expect(grant).to_be_visible()
        visible = teacher.evaluate(
            """() => {
                const list = document.querySelector('.people-list').getBoundingClientRect()
                return [...document.querySelectorAll('.person')].filter((row) => {
                    const r = row.getBoundingClientRect()
                    return r.top >= list.top - 1 && r.bottom <= list.bottom + 1
                        && r.bottom <= window.innerHeight
                }).length
            }"""
        )
        assert visible >= 12, visible
        # Every name shows (no row squeezes a name to nothing), and no row is cut off.
        widths = teacher.evaluate(
            """() => [...document.querySelectorAll('.person')].map((row) => [
                row.querySelector('.person-name').getBoundingClientRect().width,
                row.scrollWidth - row.clientWidth,
            ])"""
        )
        assert all(name >= 40 and overflow <= 1 for name, overflow in widths), widths
        issue_shot(teacher, "teacher-people-13-students", issue=21)

        # The teacher on a phone: the Class tab fits, the tabs fit the width.
        phone = open_room(
            people.page("Ms Rivera (phone)", "#c4314b", viewport=PHONE), room["links"]["owner"]
        )
        show_tab(phone, "Class")
        expect(phone.locator("#class-chat-policy")).to_be_visible()
        for name in ("People", "Class", "Comments", "Chat", "History"):
            box = phone.get_by_role("tab", name=name).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (name, box)
        issue_shot(phone, "teacher-phone-class-tab", issue=21)
        full_shot(phone, "teacher-phone-class-tab-full")
    finally:
        stop.set()
        crowd.join(timeout=10)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_class_tools_have_no_serious_accessibility_problems(
    e2e_server: Any, audited: Any, theme: str
) -> None:
    """axe-core on what the two-way class adds: the teacher's Class tab with a hand and a
    question waiting, the student's composer and the open question field."""
    room = create_room(e2e_server, "broadcast", "python", "Lesson")
    teacher = open_room(audited("Ms Tan", theme=theme), room["links"]["owner"])
    student = open_room(audited("Sam", theme=theme), room["links"]["viewer"])
    ask(student, "What does print return?")
    student.get_by_role("button", name="Raise hand").click()
    expect(student.get_by_label("Your question (optional)")).to_be_visible()
    show_tab(teacher, "Class")
    expect(teacher.locator(".class-questions .question-item")).to_have_count(1)
    expect(teacher.locator(".class-hands .hand-item")).to_have_count(1)
    assert serious_violations(teacher) == [], "teacher"
    assert serious_violations(student) == [], "student"
