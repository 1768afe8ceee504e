"""The AI pair-programmer: a server-side virtual participant that reads the room, asks
Claude through the ``anthropic`` SDK, and streams its answer and edits back into the doc.

``service`` (the orchestrator the server talks to) · ``context`` (a question and the
room snapshot it comes with) · ``prompt`` (what Claude is sent) · ``reply`` (its
streamed answer into a chat entry) · ``participant`` (the AI's replica, presence and
writes) · ``edits`` (tool calls as edits or suggestions) · ``anchors`` (positions that
follow the text) · ``budgets`` (queue and token limits) · ``policy`` (who may ask) ·
``settings`` (knobs and metric hooks).
"""
