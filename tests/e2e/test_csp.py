"""The client works under its Content Security Policy: walked in Chromium (start page,
a pair room with two people, cursors, chat, a comment, the name dialog, a broadcast
room with a raised hand) with no CSP violation; an injected inline script is blocked;
and no request the pages make carries a Referer (join links hold tokens)."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.e2e.conftest import create_room
from tests.e2e.helpers import editor, open_room, show_tab, type_at_end
from tests.serverproc import ServerProcess
from tests.support import wait_until

WATCH_CSP = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


class Watched:
    """Every page of the test: CSP violations (events and console lines) and the Referer
    of every request."""

    def __init__(self, people: Any) -> None:
        self.people = people
        self.console: list[str] = []
        self.referers: list[str] = []
        self.pages: list[Any] = []

    def page(self, name: str, color: str) -> Any:
        page = self.people.page(name, color)
        page.add_init_script(WATCH_CSP)
        page.on("console", lambda m: self.console.append(m.text))
        page.on(
            "request",
            lambda r: (
                self.referers.append(f"{r.url} <- {r.headers['referer']}")
                if r.headers.get("referer")
                else None
            ),
        )
        self.pages.append(page)
        return page

    def violations(self) -> list[str]:
        found = [v for page in self.pages for v in page.evaluate("window.__csp || []")]
        found += [line for line in self.console if "Content Security Policy" in line]
        return found


def test_the_client_runs_under_its_csp_and_sends_no_referer(
    e2e_server: ServerProcess, people: Any, screenshot: Any
) -> None:
    # The test runs an inline script on purpose: the policy's refusal is what it checks.
    people.allow_console(r"Executing inline script violates")
    watched = Watched(people)
    ada = watched.page("Ada", "#c4314b")
    response = ada.goto(e2e_server.http_url + "/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "frame-ancestors 'none'" in policy
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-content-type-options"] == "nosniff"

    # The start page creates a pair room and shows its links.
    ada.get_by_role("button", name="Create room").click()
    owner_url = ada.get_by_role("textbox", name="Owner link").input_value()
    bob_url = ada.get_by_role("textbox", name="Editor link").input_value()
    open_room(ada, owner_url)
    bob = open_room(watched.page("Bob", "#1f7a3a"), bob_url)
    type_at_end(ada, "def greet(name):\n    return f'hi {name}'\n")
    expect(editor(bob)).to_contain_text("return f'hi {name}'")
    # Remote carets and the people list: the inline colour styles.
    show_tab(ada, "People")
    expect(
        ada.locator(".cm-ySelectionInfo", has_text="Bob").or_(
            ada.locator(".person", has_text="Bob")
        )
    ).to_be_visible()
    type_at_end(bob, "\nx = 1")

    # Chat, a comment and the name dialog.
    bob.get_by_role("textbox", name="Chat message").fill("hello from Bob")
    bob.get_by_role("button", name="Send").click()
    expect(bob.locator(".chat-message", has_text="hello from Bob")).to_be_visible()
    bob.locator(".cm-line", has_text="x = 1").click()
    bob.keyboard.press("Home")
    bob.keyboard.press("Shift+End")
    bob.keyboard.press("Control+Alt+m")
    composer = bob.get_by_label("Comment text")
    composer.fill("Name it better")
    composer.press("Control+Enter")
    expect(bob.locator(".comment", has_text="Name it better")).to_be_visible()
    bob.get_by_role("button", name="Change name and colour").click()
    dialog = bob.get_by_role("dialog", name="Your name and colour")
    dialog.get_by_label("Purple").check()
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    screenshot(bob)

    # A broadcast room: the student's controls and the teacher's roster.
    lesson = create_room(e2e_server, "broadcast", "python", "CSP lesson")
    teacher = open_room(watched.page("Tess", "#7b3fc4"), lesson["links"]["owner"])
    student = open_room(watched.page("Sam", "#0f7481"), lesson["links"]["viewer"])
    type_at_end(teacher, "for i in range(3):\n    print(i)\n")
    expect(editor(student)).to_contain_text("print(i)")
    student.get_by_role("button", name="Raise hand").click()
    expect(teacher.locator(".person.hand-up", has_text="Sam")).to_be_visible()
    screenshot(teacher, "broadcast")

    assert watched.violations() == [], watched.violations()
    assert watched.referers == [], watched.referers

    # The policy is in force: an inline script a bug (or an injection) adds never runs.
    ada.evaluate(
        """() => { const s = document.createElement('script');
        s.textContent = 'window.__inline = 1'; document.body.append(s) }"""
    )
    assert ada.evaluate("window.__inline") is None
    wait_until(
        lambda: [v for v in watched.violations() if v.startswith("script-src")],
        what="the blocked inline script reported as a violation",
    )
