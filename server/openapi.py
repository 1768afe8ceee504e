"""The OpenAPI 3.1 document for ``/api``, built from the same pydantic models the
handlers validate with, so the document cannot drift from the checks."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from server import ai, api, class_api, exercises_api, files_api, history_api, runs, spotlight_api

MODELS: tuple[type[BaseModel], ...] = (
    api.CreateRoom,
    api.UpdateRoom,
    api.CreateToken,
    api.ChangeRole,
    api.JoinRoom,
    api.Joined,
    api.RoomCreated,
    api.RoomDetails,
    api.TokenIssued,
    api.RoleChanged,
    api.Features,
    api.ErrorBody,
    runs.RunRequest,
    runs.RunAccepted,
    runs.RunRecord,
    ai.AskRequest,
    ai.AskAccepted,
    ai.SuggestionAction,
    ai.SuggestionResolved,
    ai.ChangeUndone,
    files_api.FileInfo,
    files_api.FileWritten,
    files_api.ArchiveApplied,
    history_api.HistoryPage,
    history_api.HistoryAt,
    history_api.Authorship,
    history_api.HistorySummary,
    history_api.AtMoment,
    history_api.Restored,
    spotlight_api.SpotlightRequest,
    spotlight_api.SpotlightShown,
    exercises_api.CreateExercise,
    exercises_api.ExerciseCreated,
    exercises_api.ExerciseView,
    exercises_api.ExerciseJoined,
    exercises_api.StudentEntry,
    exercises_api.CheckRequest,
    exercises_api.CheckRecord,
    class_api.ClassPolicyBody,
    class_api.PostMessage,
    class_api.RaiseHand,
    class_api.StaffClassView,
    class_api.StudentClassView,
    class_api.MessagePosted,
    class_api.ChatEntry,
    class_api.HandRaised,
    class_api.Lowered,
    class_api.MutedEntry,
    class_api.RoleReverted,
)

ROOM = {"name": "room", "in": "path", "required": True, "schema": {"type": "string"}}
USER = {
    "name": "user",
    "in": "path",
    "required": True,
    "description": "a connection id (conn) or a user id",
    "schema": {"type": "string"},
}
ENTRY_ID = {"name": "entry_id", "in": "path", "required": True, "schema": {"type": "string"}}
FILE_PATH = {
    "name": "path",
    "in": "path",
    "required": True,
    "description": "a file's path in normal form (crdt/paths.py), / between folders",
    "schema": {"type": "string"},
}
ZIP = {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}}
RUN_ID = {"name": "run_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _query(name: str, description: str, schema: dict[str, Any], required: bool = False) -> Any:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    }


SECONDS = {"type": "number", "minimum": 0}
HISTORY_READ = "Owner, editor, reviewer; viewers when the room allows it (history_viewers)"


def _history_paths(room_errors: tuple[int, ...]) -> dict[str, Any]:
    """The history endpoints (server/history_api.py); 409 when history is off."""
    errors = (*room_errors, 409, 422)
    binary = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    at_ok = {"content": {**_json(history_api.HistoryAt)["content"], **binary}}
    return {
        "/api/rooms/{room}/history": {
            "get": _operation(
                f"{HISTORY_READ}: the timeline, one event per history row",
                (200, _json(history_api.HistoryPage)),
                errors,
                params=(
                    ROOM,
                    _query("from", "unix seconds, inclusive", SECONDS),
                    _query("to", "unix seconds, inclusive", SECONDS),
                    _query(
                        "limit",
                        "events at most (default 1000)",
                        {"type": "integer", "minimum": 1, "maximum": 10000},
                    ),
                ),  # fmt: skip
            )
        },
        "/api/rooms/{room}/history/at": {
            "get": _operation(
                f"{HISTORY_READ}: the files, chat and newest run at ts; ?format=yjs the "
                "document then as one Yjs update",
                (200, at_ok),
                errors,
                params=(
                    ROOM,
                    _query("ts", "unix seconds", SECONDS, required=True),
                    _query("format", "json (default) or yjs", {"enum": ["json", "yjs"]}),
                ),
            )
        },
        "/api/rooms/{room}/history/authorship": {
            "get": _operation(
                f"{HISTORY_READ}: who wrote each character of a file (UTF-16 offsets); 422 "
                "for a path that was not a file then",
                (200, _json(history_api.Authorship)),
                errors,
                params=(
                    ROOM,
                    _query("path", "a workspace file", {"type": "string"}, required=True),
                    _query("ts", "unix seconds (default: now)", SECONDS),
                ),
            )
        },
        "/api/rooms/{room}/history/summary": {
            "get": _operation(
                f"{HISTORY_READ}: per person characters typed, pasted, from the AI; large inserts",
                (200, _json(history_api.HistorySummary)),
                (*room_errors, 409),
            )
        },
        "/api/rooms/{room}/authors": {
            "get": _operation(
                f"{HISTORY_READ}: each Yjs client id to the verified identity that first "
                "wrote with it",
                (
                    200,
                    {
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "additionalProperties": _ref(history_api.WhoBody),
                                }
                            }
                        }
                    },
                ),  # fmt: skip
                (*room_errors, 409),
            )
        },
        "/api/rooms/{room}/history/restore": {
            "post": _operation(
                "Owner and editor: set the workspace back to ts as one edit of the caller's",
                (200, _json(history_api.Restored)),
                (*errors, 413),
                body=history_api.AtMoment,
            )
        },
        "/api/rooms/{room}/history/fork": {
            "post": _operation(
                f"{HISTORY_READ}: a new pair room seeded with the workspace at ts (in "
                "broadcast rooms only when forks are allowed; 429 over the hourly limit)",
                (201, _json(api.RoomCreated)),
                (*errors, 413),
                body=history_api.AtMoment,
            )
        },
    }


ROOM_FILE = {
    "content": {
        "application/vnd.codementor.room+zip": {"schema": {"type": "string", "format": "binary"}}
    }
}


def _transfer_paths(room_errors: tuple[int, ...]) -> dict[str, Any]:
    """Export and import of whole rooms as .cmroom files (server/transfer_api.py)."""
    imported = _operation(
        "Create a room from a .cmroom file (the body; at most CODEMENTOR_MAX_IMPORT_BYTES, "
        "else 413), named ?as or as in the file (admin token when CODEMENTOR_ADMIN_TOKEN is "
        "set). 400 not a room file (truncated, foreign, a newer version, a checksum "
        "mismatch); 409 the name is taken; 422 a bad ?as, or a name with a '.' (the "
        "server's own class rooms)",
        (201, _json(api.RoomCreated)),
        (400, 401, 403, 409, 413, 422),
        params=(_query("as", "the new room's name (default: the file's)", {"type": "string"}),),
        raw_body=ROOM_FILE,
    )
    imported["responses"]["400"]["description"] = "not a room file this server can read"
    return {
        "/api/rooms/import": {"post": imported},
        "/api/rooms/{room}/export": {
            "get": _operation(
                "Owner: the room as a .cmroom file (settings, document with its records, "
                "history), with a Content-Disposition filename",
                (200, ROOM_FILE),
                room_errors,
            )
        },
    }


EXERCISE_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}


def _exercise_paths(room_errors: tuple[int, ...]) -> dict[str, Any]:
    """Exercises in personal rooms (server/exercises_api.py)."""
    ex = exercises_api
    csv = {"content": {"text/csv": {"schema": {"type": "string"}}}}
    students = {
        "content": {
            "application/json": {"schema": {"type": "array", "items": _ref(ex.StudentEntry)}}
        }
    }
    return {
        "/api/rooms/{room}/exercises": {
            "post": _operation(
                "Class owner/editor: make an exercise from the class's workspace or given "
                "files, with tests (stdin -> expected stdout, visible or hidden) and a due time",
                (201, _json(ex.ExerciseCreated)),
                (*room_errors, 413, 422),
                body=ex.CreateExercise,
            )
        },
        "/api/exercises/{id}": {
            "get": _operation(
                "A token of the class, the exercise room or one's own student room: the "
                "exercise; hidden tests' stdin and expected output for staff only",
                (200, _json(ex.ExerciseView)),
                room_errors,
                params=(EXERCISE_ID,),
            )
        },
        "/api/exercises/{id}/join": {
            "post": _operation(
                "A class member with a personal token: one's own room (made once, seeded "
                "from the starter), an editor token expiring at the due time (viewer after)",
                (200, _json(ex.ExerciseJoined)),
                room_errors,
                params=(EXERCISE_ID,),
            )
        },
        "/api/exercises/{id}/students": {
            "get": _operation(
                "Staff: the students who joined, with an owner link to each one's room",
                (200, students),
                room_errors,
                params=(EXERCISE_ID,),
            )
        },
        "/api/exercises/{id}/check": {
            "post": _operation(
                "The student's own-room token, or staff with {student}: run every test on "
                "Judge0; the record (also in the room's runs). 409 while one runs or after "
                "the due time (locked), 503 without a runner",
                (200, _json(ex.CheckRecord)),
                (*room_errors, 409, 422, 503),
                body=ex.CheckRequest,
                params=(EXERCISE_ID,),
            )
        },
        "/api/exercises/{id}/grades.csv": {
            "get": _operation(
                "Staff: CSV of student, user_id, tests_passed, tests_total, last_run_status, "
                "last_check_at, submitted_at, room",
                (200, csv),
                room_errors,
                params=(EXERCISE_ID,),
            )
        },
    }


def _class_paths(room_errors: tuple[int, ...]) -> dict[str, Any]:
    """The two-way class (server/class_api.py). 409: a server room (staff, exercise), or
    a student's exercise room where only hands apply."""
    errors = (*room_errors, 409)
    staff = "Class staff (owners and editors of the class room)"
    key = {"name": "key", "in": "path", "required": True, "description": "a person key "
           "(from a hand or question entry)", "schema": {"type": "string"}}  # fmt: skip
    question_id = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    view = {
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        _ref(class_api.StaffClassView),
                        _ref(class_api.StudentClassView),
                    ]
                }
            }
        }
    }
    return {
        "/api/rooms/{room}/class": {
            "get": _operation(
                "The class's chat and AI policies; staff also get the staff room, a viewer "
                "token to it, hands (oldest raised first), questions and who is muted; "
                "anyone else their own hand",
                (200, view),
                errors,
            ),
            "put": _operation(
                "Owner: set the chat policy (open, questions, closed) and the AI policy "
                "for students (off, hints, full)",
                (200, view),
                (*errors, 413, 422),
                body=class_api.ClassPolicyBody,
            ),
        },
        "/api/rooms/{room}/messages": {
            "post": _operation(
                "Personal tokens: post a message. Students (viewers): to the chat when the "
                "policy is open, to the staff as a question under questions, 403 when "
                "closed or muted; others post to the chat. 429 past 10 a minute",
                (201, _json(class_api.MessagePosted)),
                (*errors, 413, 422),
                body=class_api.PostMessage,
            )
        },
        "/api/rooms/{room}/questions/{id}/publish": {
            "post": _operation(
                f"{staff}: publish a student's question to the chat, in the student's "
                "name; it leaves the staff's inbox",
                (200, _json(class_api.ChatEntry)),
                errors,
                params=(ROOM, question_id),
            )
        },
        "/api/rooms/{room}/questions/{id}": {
            "delete": _operation(
                f"{staff}: dismiss a question", (204, {}), errors, params=(ROOM, question_id)
            )
        },
        "/api/rooms/{room}/hand": {
            "post": _operation(
                "Personal tokens: raise one's hand with an optional question (a re-raise "
                "changes the question and keeps the time it was raised)",
                (200, _json(class_api.HandRaised)),
                (*errors, 413, 422),
                body=class_api.RaiseHand,
            ),
            "delete": _operation(
                "Personal tokens: lower one's own hand", (200, _json(class_api.Lowered)), errors
            ),
        },
        "/api/rooms/{room}/hands": {
            "delete": _operation(
                f"{staff}: lower every hand", (200, _json(class_api.Lowered)), errors
            )
        },
        "/api/rooms/{room}/hands/{key}": {
            "delete": _operation(
                f"{staff}: lower one person's hand",
                (200, _json(class_api.Lowered)),
                errors,
                params=(ROOM, key),
            )
        },
        "/api/rooms/{room}/muted/{key}": {
            "put": _operation(
                f"{staff}: mute a person: their messages and questions are refused (403)",
                (200, _json(class_api.MutedEntry)),
                errors,
                params=(ROOM, key),
            ),
            "delete": _operation(
                f"{staff}: unmute a person", (204, {}), errors, params=(ROOM, key)
            ),
        },
    }


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(model: type[BaseModel]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": _ref(model)}}}


def _spotlight_paths(room_errors: tuple[int, ...]) -> dict[str, Any]:
    """The classroom's spotlight (server/spotlight_api.py), from the class and the grid."""
    return {
        "/api/exercises/{id}/spotlight": {
            "post": _operation(
                "Staff (an exercise-room token, or the class's owner and editors): show a "
                "student room of this exercise to the class until DELETE",
                (200, _json(spotlight_api.SpotlightShown)),
                (*room_errors, 422),
                body=spotlight_api.SpotlightRequest,
                params=(EXERCISE_ID,),
            ),
            "delete": _operation(
                "Staff: end the spotlight of the exercise's class (404 when none is on)",
                (204, {}),
                room_errors,
                params=(EXERCISE_ID,),
            ),
        },
        "/api/rooms/{room}/spotlight": {
            "post": _operation(
                "The class's owner and editors: show a student room of one of the class's "
                "exercises to the class (its files, kept fresh, read-only) until DELETE",
                (200, _json(spotlight_api.SpotlightShown)),
                (*room_errors, 422),
                body=spotlight_api.SpotlightRequest,
            ),
            "delete": _operation(
                "The class's owner and editors: end the spotlight (404 when none is on)",
                (204, {}),
                room_errors,
            ),
        },
    }


def _operation(
    summary: str,
    ok: tuple[int, dict[str, Any]],
    errors: tuple[int, ...],
    body: type[BaseModel] | None = None,
    params: tuple[dict[str, Any], ...] = (ROOM,),
    secured: bool = True,
    raw_body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    responses: dict[str, Any] = {str(ok[0]): {"description": "success", **ok[1]}}
    for status in (*errors, 429):
        responses[str(status)] = {"description": api.ERROR_STATUSES[status], **_json(api.ErrorBody)}
    op: dict[str, Any] = {"summary": summary, "parameters": list(params), "responses": responses}
    if body is not None:
        op["requestBody"] = {"required": True, **_json(body)}
    if raw_body is not None:
        op["requestBody"] = {"required": True, **raw_body}
    if not secured:
        op["security"] = []
    return op


def build() -> dict[str, Any]:
    _, schemas = models_json_schema(
        [(m, "validation") for m in MODELS], ref_template="#/components/schemas/{model}"
    )
    text = {"content": {"text/plain": {"schema": {"type": "string"}}}}
    room_errors = (401, 403, 404)
    return {
        "openapi": "3.1.0",
        "info": {"title": "CodeMentor Collab", "version": "0.1.0"},
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
        "security": [{"bearer": []}],
        "paths": {
            "/api/config": {
                "get": _operation(
                    "Features this server has on",
                    (200, _json(api.Features)),
                    (),
                    params=(),
                    secured=False,
                )
            },
            "/api/rooms": {
                "post": _operation(
                    "Create a room (admin token when CODEMENTOR_ADMIN_TOKEN is set; without "
                    "one, 429 past CODEMENTOR_ROOMS_PER_ADDRESS_PER_HOUR)",
                    (201, _json(api.RoomCreated)),
                    (401, 403, 413, 422),
                    body=api.CreateRoom,
                    params=(),
                )
            },
            "/api/rooms/{room}": {
                "get": _operation(
                    "A room's settings and peers", (200, _json(api.RoomDetails)), room_errors
                ),
                "patch": _operation(
                    "Owner: change title, language, (pair rooms) AI edits or (broadcast "
                    "rooms) whether students may fork",
                    (200, _json(api.RoomDetails)),
                    (*room_errors, 409, 413, 422),
                    body=api.UpdateRoom,
                ),
                "delete": _operation(
                    "Owner (or the admin token): delete the room for good: its peers are "
                    "closed with 4404, its document, history and records leave the store and "
                    "Redis, on every instance",
                    (204, {}),
                    room_errors,
                ),
            },
            "/api/rooms/{room}/tokens": {
                "post": _operation(
                    "Owner: issue a token",
                    (201, _json(api.TokenIssued)),
                    (*room_errors, 413, 422),
                    body=api.CreateToken,
                )
            },
            "/api/rooms/{room}/join": {
                "post": _operation(
                    "Exchange any token for this room (dev mode with anonymous joins: none) "
                    "for a personal one carrying a display name, with the same role, iat "
                    "and exp; a personal bearer keeps its user id",
                    (201, _json(api.Joined)),
                    (*room_errors, 413, 422),
                    body=api.JoinRoom,
                )
            },
            "/api/rooms/{room}/peers/{user}/role": {
                "put": _operation(
                    "Owner: change a connected peer's role now",
                    (200, _json(api.RoleChanged)),
                    (*room_errors, 413, 422),
                    body=api.ChangeRole,
                    params=(ROOM, USER),
                ),
                "delete": _operation(
                    "Owner: take a grant back now: the peer returns to its token's role",
                    (200, _json(class_api.RoleReverted)),
                    room_errors,
                    params=(ROOM, USER),
                ),
            },
            "/api/rooms/{room}/snapshot": {
                "get": _operation(
                    "The entry file as text, ?format=yjs the whole document as one Yjs "
                    "update, ?format=zip the workspace's archive",
                    (
                        200,
                        {
                            "content": {
                                **text["content"],
                                "application/octet-stream": {
                                    "schema": {"type": "string", "format": "binary"}
                                },
                                **ZIP["content"],
                            }
                        },
                    ),
                    (*room_errors, 422),
                    params=(
                        ROOM,
                        {
                            "name": "format",
                            "in": "query",
                            "required": False,
                            "schema": {"enum": ["text", "yjs", "zip"]},
                        },
                    ),
                )
            },
            "/api/rooms/{room}/files": {
                "get": _operation(
                    "The workspace's files: the entry file first, the others by path",
                    (
                        200,
                        {
                            "content": {
                                "application/json": {
                                    "schema": {"type": "array", "items": _ref(files_api.FileInfo)}
                                }
                            }
                        },
                    ),
                    room_errors,
                )
            },
            "/api/rooms/{room}/files/{path}": {
                "get": _operation(
                    "One file's text (404 unknown file)",
                    (200, text),
                    (*room_errors, 422),
                    params=(ROOM, FILE_PATH),
                ),
                "put": _operation(
                    "Owner and editor: create or replace a file (body: its UTF-8 text) as a "
                    "server edit every peer sees; the entry file's path edits code. 422 names "
                    "the path and the rule (path form, file, count and workspace limits)",
                    (200, _json(files_api.FileWritten)),
                    (*room_errors, 413, 422),
                    params=(ROOM, FILE_PATH),
                    raw_body=text,
                ),
                "delete": _operation(
                    "Owner and editor: delete a file (409 for the entry file)",
                    (204, {}),
                    (*room_errors, 409, 422),
                    params=(ROOM, FILE_PATH),
                ),
            },
            "/api/rooms/{room}/archive": {
                "get": _operation(
                    "The workspace as a zip (deterministic bytes: entry file first, then by "
                    "path, dated 1980-01-01, mode 0644)",
                    (200, ZIP),
                    room_errors,
                ),
                "post": _operation(
                    "Owner and editor: add or replace files from a zip, all or none. 413 "
                    "past the file count, file or workspace bytes, or a compression ratio "
                    "over 100 (checked before extracting); 422 a bad path, a file not "
                    "UTF-8, or the workspace with the zip over a limit; 400 not a zip",
                    (200, _json(files_api.ArchiveApplied)),
                    (*room_errors, 400, 413, 422),
                    raw_body=ZIP,
                ),
            },
            "/api/rooms/{room}/runs": {
                "post": _operation(
                    "Owner and editor (broadcast: owner), and reviewers when the room's "
                    "reviewers_run is on: run the code on Judge0; the run's progress and "
                    "result are written into the document's runs map",
                    (202, _json(runs.RunAccepted)),
                    (*room_errors, 409, 413, 422, 503),
                    body=runs.RunRequest,
                )
            },
            "/api/rooms/{room}/runs/{run_id}": {
                "get": _operation(
                    "One run, as stored in the runs map",
                    (200, _json(runs.RunRecord)),
                    room_errors,
                    params=(ROOM, RUN_ID),
                )
            },
            "/api/rooms/{room}/runs/{run_id}/cancel": {
                "post": _operation(
                    "The person who started the run, owners and editors: stop a run still "
                    "queued or running; it ends cancelled for everyone (404 unknown run, 409 "
                    "it already ended)",
                    (200, _json(runs.RunRecord)),
                    (*room_errors, 409),
                    params=(ROOM, RUN_ID),
                )
            },
            "/api/rooms/{room}/ai": {
                "post": _operation(
                    "Pair: owner and editor; review: owner and reviewer; broadcast: owner. Ask "
                    "the AI pair-programmer; its answer streams into the chat. In a class: "
                    "403 when the AI is off for the exercise (or for students of the class); "
                    "under hints the AI explains but never changes the code",
                    (202, _json(ai.AskAccepted)),
                    (*room_errors, 413, 422, 429, 503),
                    body=ai.AskRequest,
                ),
                "delete": _operation(
                    "Stop the AI's current answer in this room",
                    (200, {}),
                    (*room_errors, 503),
                ),
            },
            "/api/rooms/{room}/ai/suggestions/{entry_id}": {
                "post": _operation(
                    "Apply or dismiss an AI suggestion (a chat entry of kind suggestion)",
                    (200, _json(ai.SuggestionResolved)),
                    (*room_errors, 409, 422, 503),
                    body=ai.SuggestionAction,
                    params=(ROOM, ENTRY_ID),
                )
            },
            "/api/rooms/{room}/ai/changes/{entry_id}/undo": {
                "post": _operation(
                    "Owner and editor: revert the AI code change recorded on a chat entry "
                    "(an AI edit, an applied suggestion) as one unit (409 when already undone "
                    "or its text was edited since)",
                    (200, _json(ai.ChangeUndone)),
                    (*room_errors, 409, 503),
                    params=(ROOM, ENTRY_ID),
                )
            },
            "/api/rooms/{room}/fork": {
                "post": _operation(
                    "Broadcast rooms: fork into a new pair room owned by the caller (403 when "
                    "the owner forbids forks; 429 over the per-user hourly limits or "
                    "CODEMENTOR_ROOMS_PER_USER)",
                    (201, _json(api.RoomCreated)),
                    (*room_errors, 409),
                )
            },
            "/api/rooms/{room}/rotate": {
                "post": _operation(
                    "Owner: rotate the room's links. Every token issued before is refused "
                    "(401; websockets are closed with 4401); answers new links and a new "
                    "owner token",
                    (200, _json(api.RoomCreated)),
                    room_errors,
                )
            },
            **_history_paths(room_errors),
            **_spotlight_paths(room_errors),
            **_exercise_paths(room_errors),
            **_class_paths(room_errors),
            **_transfer_paths(room_errors),
        },
    }
