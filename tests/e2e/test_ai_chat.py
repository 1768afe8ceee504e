"""The AI in chat, in the browser: the question is the asker's own message before the
answer, answers render as Markdown without ever letting raw HTML into the page, code in
them is highlighted, and a suggestion is one card. A real server whose real
``anthropic`` SDK talks to the Messages API double."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.anthropic_double import AnthropicDouble, Reply
from tests.e2e.conftest import PHONE, create_room, personal_link
from tests.e2e.helpers import open_room, show_tab, type_at_end
from tests.serverproc import ServerProcess

AI = "CodeMentor AI"
ANSWER = """## The fix
The bug is in `f`:

- it returns **1**
- it should return 2

```python
def f():
    return 2  # fixed
```

See [the docs](https://docs.python.org/3/) and [this](javascript:window.__xss=3).

<img src=x onerror="window.__xss=1"> <script>window.__xss=2</script>"""


def console_errors(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return errors


def ask(page: Page, question: str) -> None:
    show_tab(page, "Chat")
    page.get_by_role("textbox", name="Chat message").fill(question)
    page.get_by_role("button", name="Ask AI").click()


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["wide", "phone"])
def test_question_then_a_safe_markdown_answer(
    ai_server: ServerProcess,
    double: AnthropicDouble,
    people: Any,
    screenshot: Any,
    viewport: dict[str, int] | None,
) -> None:
    double.script(Reply([("text", ANSWER[:40]), ("sleep", 0.2), ("text", ANSWER[40:])]))
    room = create_room(ai_server, "pair", "python", "AI chat")
    page = people.page("Ada", "#2f5bd3", viewport=viewport)
    errors = console_errors(page)
    open_room(page, personal_link(ai_server, room, "owner", "Ada"))
    type_at_end(page, "def f():\n    return 1\n")
    ask(page, "Why does f return 1?")

    log = page.locator(".chat-log")
    messages = log.locator(".chat-message")
    # The question first, as Ada's own message (not the AI's), then the answer.
    expect(messages).to_have_count(2)
    question, answer = messages.nth(0), messages.nth(1)
    expect(question.locator(".author")).to_have_text("Ada")
    expect(question).not_to_have_class("ai")
    expect(question.locator(".chat-text")).to_have_text("Why does f return 1?")
    expect(answer.locator(".author")).to_have_text(AI)
    expect(answer).to_have_attribute("aria-busy", "false")

    text = answer.locator(".chat-text")
    expect(text.locator("h2")).to_have_text("The fix")
    expect(text.locator("li")).to_have_count(2)
    expect(text.locator("strong")).to_have_text("1")
    expect(text.locator("p code")).to_have_text("f")
    # The code block: monospaced and highlighted with the editor's Python parser.
    block = text.locator("pre code")
    expect(block).to_have_text("def f():\n    return 2  # fixed\n")
    expect(block.locator(".tok-keyword").first).to_have_text("def")
    expect(block.locator(".tok-comment")).to_have_text("# fixed")
    assert "monospace" in block.evaluate("(el) => getComputedStyle(el).fontFamily")
    # Links: http(s) only, and they open with no opener and no referrer.
    docs = text.get_by_role("link", name="the docs")
    expect(docs).to_have_attribute("href", "https://docs.python.org/3/")
    expect(docs).to_have_attribute("rel", "noopener noreferrer")
    expect(text.locator("a")).to_have_count(1)
    # Raw HTML is shown as text; no element of it reaches the page.
    expect(text).to_contain_text('<img src=x onerror="window.__xss=1">')
    expect(text).to_contain_text("<script>window.__xss=2</script>")
    assert log.locator("img, script, iframe, [onerror]").count() == 0
    assert page.evaluate("() => window.__xss") is None
    block.scroll_into_view_if_needed()
    screenshot(page)
    assert not errors, errors


def test_a_suggestion_is_one_card_and_an_ai_mention_is_not_posted_twice(
    ai_server: ServerProcess, double: AnthropicDouble, people: Any, screenshot: Any
) -> None:
    edit = {"start_line": 2, "end_line": 2, "new_text": "    return 2\n"}
    double.script(
        Reply([("text", "Return **2**: the caller expects it."), ("tool", "replace_range", edit)]),
        Reply([("text", "Hello Rita!")]),
    )
    room = create_room(ai_server, "review", "python", "AI card")
    olga = people.page("Olga", "#7b3fc4")
    errors = console_errors(olga)
    open_room(olga, personal_link(ai_server, room, "owner", "Olga"))
    type_at_end(olga, "def f():\n    return 1\nprint(f())\n")
    rita = open_room(people.page("Rita", "#0f7481"), room["links"]["reviewer"])
    ask(rita, "Should f return 2?")

    show_tab(olga, "Chat")  # a review room opens on Comments
    log = olga.locator(".chat-log")
    expect(log.locator(".chat-message")).to_have_count(2)  # the question and one card
    card = log.locator(".chat-message.ai")
    expect(card).to_have_count(1)
    expect(card).to_have_class("chat-message ai suggestion-entry")
    expect(card.locator(".chat-text strong")).to_have_text("2")
    expect(card.locator(".chat-text")).to_have_text("Return 2: the caller expects it.")
    expect(card.locator(".ai-diff del")).to_have_text("−    return 1")
    expect(card.locator(".ai-diff ins")).to_have_text("+    return 2")
    expect(card.get_by_role("button", name="Apply")).to_be_visible()
    expect(card.get_by_role("button", name="Dismiss")).to_be_visible()
    assert "suggested an edit" not in (log.text_content() or "")
    screenshot(olga, "open")

    card.get_by_role("button", name="Apply").click()
    expect(card.locator(".suggestion-status")).to_have_text("Applied")
    expect(card.get_by_role("button", name="Undo AI change")).to_be_visible()
    # The reviewer may not edit code: no undo action for her.
    rita_card = rita.locator(".chat-message.ai")
    expect(rita_card.locator(".suggestion-status")).to_have_text("Applied")
    expect(rita_card.get_by_role("button", name="Undo AI change")).to_be_hidden()
    screenshot(olga)

    # An @ai mention is the asker's own message already: it is not posted again.
    rita.get_by_role("textbox", name="Chat message").fill("@ai hello?")
    rita.get_by_role("button", name="Send").click()
    expect(log.locator(".chat-message.ai").last.locator(".chat-text")).to_have_text("Hello Rita!")
    expect(log.locator(".chat-message", has_text="@ai hello?")).to_have_count(1)
    assert not errors, errors
