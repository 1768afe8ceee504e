"""Replaying a room's history: the document at any moment, who wrote each character,
and what each row did (the timeline's events, the paste/AI summary).

Pure: no I/O, no asyncio. The server keeps one ``Playback`` per room it was asked
about and ``extend``s it with newer rows; seeking (``state_at``, ``authorship_at``)
starts from the nearest checkpoint, so it replays at most ``checkpoint_every``
updates (250, doubled whenever there would be more than ``MAX_CHECKPOINTS``).

Authorship is kept per file as one author index per UTF-8 byte of its text (the units
pycrdt's ``TextEvent.delta`` counts, so an event applies with two slice operations),
next to a mirror of the text's bytes; answers convert to code points (counts) or UTF-16
units (offsets for the browser). The entry file is the root ``code`` (its path is
``meta.entry`` at the moment asked); the other files are the Texts of ``files``.
Characters from before history began have no author (``UNKNOWN``).

Sizes are judged per update, not per row: a row holds a person's consecutive updates,
and a paste is still the one update it was.
"""

from __future__ import annotations

import bisect
import itertools
import zlib
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Array, Doc, Map, Text

from crdt import schema, structs
from crdt.offsets import utf16_len
from crdt.protocol import ProtocolError
from rooms.history import AI, HistoryBase, HistoryRow, Who, update_key

UNKNOWN = 0xFFFF  # the author index of a character written before history began
CODE_KEY = ""  # the track of the root ``code`` (no workspace path is empty)
CHECKPOINT_EVERY = 250  # updates between checkpoints (bench/history_seek.py)...
# ...until there are this many: then every other one is dropped and the spacing doubles,
# so a very long history costs a bounded number of checkpoints (each a compressed copy
# of the document, which grows with its tombstones) and a seek replays a little more.
MAX_CHECKPOINTS = 256


@dataclass(slots=True)
class Event:
    """What one history row did, for the timeline."""

    ts: float
    ts_first: float
    seq: int
    who: Who
    kind: str
    chars_added: int = 0
    chars_removed: int = 0
    files: list[str] = field(default_factory=list)
    large: int = 0
    run: dict[str, str] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "ts": self.ts,
            "ts_first": self.ts_first,
            "seq": self.seq,
            "who": self.who.as_json(),
            "kind": self.kind,
            "chars_added": self.chars_added,
            "chars_removed": self.chars_removed,
            "files": self.files,
            "large": self.large,
            "run": self.run,
        }


@dataclass(slots=True)
class Stats:
    """One person's characters: typed, pasted (one update at or above the large-insert
    size), inserted by the AI, and how many updates changed a file."""

    typed: int = 0
    pasted: int = 0
    ai: int = 0
    edits: int = 0

    def add(self, other: Stats) -> None:
        self.typed += other.typed
        self.pasted += other.pasted
        self.ai += other.ai
        self.edits += other.edits


class _Track:
    """One Text's bytes and the author of each byte."""

    __slots__ = ("data", "who")

    def __init__(self, data: bytes = b"", who: array[int] | None = None) -> None:
        self.data = bytearray(data)
        self.who: array[int] = who if who is not None else array("H", [UNKNOWN]) * len(data)

    def packed(self) -> tuple[bytes, bytes]:
        """The track compressed, as a checkpoint keeps it: its author runs are long, so
        they shrink to almost nothing, and a checkpoint every 250 updates of a large
        workspace does not hold 3 bytes per byte of text each."""
        return zlib.compress(bytes(self.data), 1), zlib.compress(self.who.tobytes(), 1)

    @classmethod
    def unpacked(cls, packed: tuple[bytes, bytes]) -> _Track:
        who = array("H")
        who.frombytes(zlib.decompress(packed[1]))
        return cls(zlib.decompress(packed[0]), who)

    def runs(self) -> list[list[int]]:
        """[[bytes, author], ...] (author -1: unknown), for a base's JSON."""
        return [
            [len(list(group)), -1 if who == UNKNOWN else who]
            for who, group in itertools.groupby(self.who)
        ]

    @classmethod
    def from_runs(cls, text: str, runs: Any) -> _Track:
        data = text.encode("utf-8")
        who = array("H")
        if isinstance(runs, list):
            for run in runs:
                if isinstance(run, list) and len(run) == 2:
                    length, author = int(run[0]), int(run[1])
                    who.extend(array("H", [UNKNOWN if author < 0 else author]) * length)
        if len(who) != len(data):  # a base that does not match its state: authors unknown
            who = array("H", [UNKNOWN]) * len(data)
        return cls(data, who)


def _code_points(data: bytes | bytearray) -> int:
    return sum(1 for b in data if b & 0xC0 != 0x80)


@dataclass(slots=True)
class _Change:
    """What the update being applied did (filled by the observers)."""

    added: dict[str, int] = field(default_factory=dict)  # track key -> code points inserted
    removed: dict[str, int] = field(default_factory=dict)
    runs: set[str] = field(default_factory=set)
    touched: set[str] = field(default_factory=set)  # files added, removed or renamed


class _Replica:
    """A document being replayed with its authorship tracks kept by observers."""

    def __init__(self, state: bytes | None, tracks: dict[str, _Track] | None) -> None:
        self.doc: Doc[Any] = Doc()
        if state:
            self.doc.apply_update(state)
        self.tracks: dict[str, _Track] = tracks if tracks is not None else {}
        code = schema.code(self.doc)
        files = schema.files(self.doc)
        if CODE_KEY not in self.tracks:
            self.tracks[CODE_KEY] = _Track(str(code).encode("utf-8"))
        for path, value in files.items():
            if isinstance(value, Text) and path not in self.tracks:
                self.tracks[path] = _Track(str(value).encode("utf-8"))
        self.who = UNKNOWN
        self.change = _Change()
        self._subs = [
            (code, code.observe(self._on_code)),
            (files, files.observe_deep(self._on_files)),
            (schema.runs(self.doc), schema.runs(self.doc).observe_deep(self._on_runs)),
        ]

    def apply(self, update: bytes, who: int) -> _Change:
        self.who = who
        self.change = _Change()
        self.doc.apply_update(update)
        return self.change

    def _on_code(self, event: Any) -> None:
        self._delta(CODE_KEY, event.delta)

    def _on_files(self, events: list[Any]) -> None:
        for event in events:
            path = event.path
            if not path:  # the files map itself: files added, replaced, removed
                self._on_files_map(event.keys)
            elif len(path) == 1 and isinstance(path[0], str) and hasattr(event, "delta"):
                self._delta(path[0], event.delta)

    def _on_files_map(self, keys: dict[str, dict[str, Any]]) -> None:
        """Files gone and files new; a new file with the text of one gone in the same
        update is that file renamed (the browser's rename: a new Text, the old key
        deleted), and keeps its authors."""
        gone: dict[bytes, tuple[str, _Track]] = {}
        for key, info in keys.items():
            if info.get("action") in ("delete", "update") and key in self.tracks:
                old = self.tracks.pop(key)
                gone[bytes(old.data)] = (key, old)
                self.change.touched.add(key)
        for key, info in keys.items():
            value = info.get("newValue")
            if info.get("action") not in ("add", "update") or not isinstance(value, Text):
                continue
            text = str(value)
            data = text.encode("utf-8")
            self.change.touched.add(key)
            moved = gone.pop(data, None)
            if moved is not None:
                self.tracks[key] = moved[1]
            else:
                self.tracks[key] = _Track(data, array("H", [self.who]) * len(data))
                self._count(self.change.added, key, len(text))
        for key, old in gone.values():
            self._count(self.change.removed, key, _code_points(old.data))

    def _on_runs(self, events: list[Any]) -> None:
        for event in events:
            if event.path:
                self.change.runs.add(str(event.path[0]))
            else:
                self.change.runs.update(str(key) for key in event.keys)

    @staticmethod
    def _count(counts: dict[str, int], key: str, n: int) -> None:
        counts[key] = counts.get(key, 0) + n

    def _delta(self, key: str, delta: Sequence[dict[str, Any]]) -> None:
        track = self.tracks.get(key)
        if track is None:
            track = self.tracks[key] = _Track()
        pos = added = removed = 0
        for op in delta:
            if "retain" in op:
                pos += int(op["retain"])
            elif "insert" in op:
                value = op["insert"]
                if not isinstance(value, str):
                    continue
                data = value.encode("utf-8")
                track.data[pos:pos] = data
                track.who[pos:pos] = array("H", [self.who]) * len(data)
                pos += len(data)
                added += len(value)
            elif "delete" in op:
                n = int(op["delete"])
                removed += _code_points(track.data[pos : pos + n])
                del track.data[pos : pos + n]
                del track.who[pos : pos + n]
        if added:
            self._count(self.change.added, key, added)
        if removed:
            self._count(self.change.removed, key, removed)

    def path_of(self, key: str) -> str:
        return schema.entry_path(self.doc) if key == CODE_KEY else key

    def track_of(self, path: str) -> _Track | None:
        if path == schema.entry_path(self.doc):
            return self.tracks.get(CODE_KEY)
        value = schema.files(self.doc).get(path)
        return self.tracks.get(path) if isinstance(value, Text) else None


@dataclass(frozen=True, slots=True)
class _Checkpoint:
    """The replica after ``count`` updates, compressed (``_Track.packed``)."""

    count: int  # updates applied (from the first row on)
    packed_state: bytes
    tracks: dict[str, tuple[bytes, bytes]]

    @classmethod
    def of(cls, count: int, replica: _Replica) -> _Checkpoint:
        return cls(
            count,
            zlib.compress(replica.doc.get_update(), 1),
            {key: track.packed() for key, track in replica.tracks.items()},
        )

    @property
    def state(self) -> bytes:
        return zlib.decompress(self.packed_state)


@dataclass(slots=True)
class _RowTotals:
    seq: int
    who: int
    stats: Stats


class Playback:
    """A room's history replayed; ``extend`` it with newer rows as they are recorded."""

    def __init__(
        self,
        base: HistoryBase | None = None,
        *,
        large_insert: int = 200,
        checkpoint_every: int = CHECKPOINT_EVERY,
    ) -> None:
        self.base = base
        self.large_insert = large_insert
        self.checkpoint_every = max(1, checkpoint_every)
        derived = base.derived if base is not None else {}
        self.people: list[Who] = []
        self._index: dict[Who, int] = {}
        for person in derived.get("people", []):
            self._person(Who(str(person["id"]), str(person["name"]), str(person["role"])))
        # client id -> (author index, seq of the row that introduced it)
        self.authors: dict[int, tuple[int, int]] = {
            int(client): (int(who), 0) for client, who in derived.get("authors", {}).items()
        }
        self._base_stats: dict[int, Stats] = {
            int(who): Stats(**counts) for who, counts in derived.get("summary", {}).items()
        }
        self._base_large: list[dict[str, Any]] = list(derived.get("large_inserts", []))
        self.events: list[Event] = []
        self.large_inserts: list[dict[str, Any]] = []  # since the base
        self._rows: list[_RowTotals] = []
        self._row_ts: list[float] = []  # running maximum of rows' ts (for bisect)
        self._row_end: list[int] = []  # updates applied after each row
        self._updates: list[tuple[bytes, int]] = []  # every update since the base, with author
        # Updates applied, by name: the store appends to the last row after it was read,
        # so a row comes again with updates already replayed, which are skipped.
        self._seen: set[tuple[int, int] | str] = set()
        self.first_seq = base.seq if base is not None else 0
        self.last_seq = self.first_seq
        state = base.state if base is not None else None
        tracks = self._base_tracks(state, derived.get("tracks", {}))
        self._live = _Replica(state, tracks)
        self._checkpoints = [_Checkpoint.of(0, self._live)]

    @staticmethod
    def _base_tracks(state: bytes | None, saved: Any) -> dict[str, _Track] | None:
        if not state or not isinstance(saved, dict):
            return None
        doc: Doc[Any] = Doc()
        doc.apply_update(state)
        tracks = {CODE_KEY: _Track.from_runs(schema.code_text(doc), saved.get("code"))}
        saved_files = saved.get("files", {})
        for path, value in schema.files(doc).items():
            if isinstance(value, Text):
                runs = saved_files.get(path) if isinstance(saved_files, dict) else None
                tracks[path] = _Track.from_runs(str(value), runs)
        return tracks

    def _person(self, who: Who) -> int:
        index = self._index.get(who)
        if index is None:
            index = self._index[who] = len(self.people)
            self.people.append(who)
        return index

    # -- recording ---------------------------------------------------------------------

    def extend(self, rows: Iterable[HistoryRow]) -> list[Event]:
        """Replay ``rows`` (in seq order, from the last one seen: the store may have
        appended updates to it since); returns their events, one per part of a row
        (``HistoryRow.split``). Updates already replayed are skipped by name, so the
        row seen before adds an event for what it gained only."""
        out: list[Event] = []
        for row in rows:
            if row.seq < self.last_seq:
                continue
            for part in row.split():
                event = self._row(part)
                if event is not None:
                    out.append(event)
        return out

    def _row(self, row: HistoryRow) -> Event | None:
        who = self._person(row.who)
        event = Event(row.ts, row.ts_first, row.seq, row.who, row.kind)
        totals = Stats()
        files: set[str] = set()
        runs: set[str] = set()
        applied = 0
        for update in row.updates:
            key = update_key(update)
            if key is not None:
                if key in self._seen:
                    continue
                self._seen.add(key)
            applied += 1
            self._learn_authors(update, who, row.seq)
            change = self._live.apply(update, who)
            self._updates.append((update, who))
            added = sum(change.added.values())
            removed = sum(change.removed.values())
            event.chars_added += added
            event.chars_removed += removed
            for key in (*change.added, *change.removed, *change.touched):
                files.add(self._live.path_of(key))
            runs |= change.runs
            if added or removed or change.touched:
                totals.edits += 1
            if added:
                if row.who.role == AI or row.kind == AI:
                    totals.ai += added
                elif added >= self.large_insert:
                    totals.pasted += added
                else:
                    totals.typed += added
                if added >= self.large_insert:
                    event.large = max(event.large, added)
                    biggest = max(change.added, key=lambda key: change.added[key])
                    self.large_inserts.append(
                        {
                            "ts": row.ts,
                            "seq": row.seq,
                            "who": row.who.as_json(),
                            "chars": added,
                            "path": self._live.path_of(biggest),
                        }
                    )
            if len(self._updates) % self.checkpoint_every == 0:
                self._checkpoints.append(_Checkpoint.of(len(self._updates), self._live))
                if len(self._checkpoints) > MAX_CHECKPOINTS:
                    self._checkpoints = self._checkpoints[::2]
                    self.checkpoint_every *= 2
        if not applied:
            return None
        event.files = sorted(files)
        if runs:
            event.run = self._run_of(self._live.doc, runs)
        self._rows.append(_RowTotals(row.seq, who, totals))
        self._row_ts.append(max(row.ts, self._row_ts[-1]) if self._row_ts else row.ts)
        self._row_end.append(len(self._updates))
        self.last_seq = row.seq
        self.events.append(event)
        return event

    def _learn_authors(self, update: bytes, who: int, seq: int) -> None:
        try:
            parsed = structs.parse(update)
        except ProtocolError:
            return
        for struct in parsed.structs:
            if struct.clock == 0 and struct.client not in self.authors:
                self.authors[struct.client] = (who, seq)

    @staticmethod
    def _run_of(doc: Doc[Any], ids: set[str]) -> dict[str, str] | None:
        runs = schema.runs(doc)
        newest: tuple[float, str, str] | None = None
        for run_id in ids:
            record = runs.get(run_id)
            if isinstance(record, Map):
                ts = record.get("ts")
                key = (float(ts) if isinstance(ts, (int, float)) else 0.0, run_id)
                if newest is None or key > newest[:2]:
                    newest = (*key, str(record.get("status", "")))
        return None if newest is None else {"id": newest[1], "status": newest[2]}

    # -- reading -----------------------------------------------------------------------

    @property
    def first_ts(self) -> float | None:
        return self.events[0].ts_first if self.events else None

    @property
    def last_ts(self) -> float | None:
        return self.events[-1].ts if self.events else None

    def _rows_until(self, ts: float) -> int:
        """How many rows had been recorded at ``ts``."""
        return bisect.bisect_right(self._row_ts, ts)

    def seq_at(self, ts: float) -> int:
        rows = self._rows_until(ts)
        return self._rows[rows - 1].seq if rows else self.first_seq

    def _replica_at(self, count: int, tracked: bool) -> _Replica | Doc[Any]:
        index = bisect.bisect_right([c.count for c in self._checkpoints], count) - 1
        checkpoint = self._checkpoints[index]
        if tracked:
            replica = _Replica(
                checkpoint.state, {k: _Track.unpacked(t) for k, t in checkpoint.tracks.items()}
            )
            for update, who in self._updates[checkpoint.count : count]:
                replica.apply(update, who)
            return replica
        doc: Doc[Any] = Doc()
        doc.apply_update(checkpoint.state)
        for update, _ in self._updates[checkpoint.count : count]:
            doc.apply_update(update)
        return doc

    def _count_at(self, ts: float | None) -> int:
        if ts is None:
            return len(self._updates)
        rows = self._rows_until(ts)
        return self._row_end[rows - 1] if rows else 0

    def state_at(self, ts: float | None) -> Doc[Any]:
        """The document as it was at ``ts`` (every row recorded by then applied)."""
        if ts is None:
            return self._live.doc
        doc = self._replica_at(self._count_at(ts), tracked=False)
        assert isinstance(doc, Doc)
        return doc

    def files_at(self, ts: float | None) -> dict[str, str]:
        return schema.workspace(self.state_at(ts))

    def at_json(self, ts: float) -> dict[str, Any]:
        """``GET .../history/at``: the workspace, chat and newest run at ``ts``."""
        doc = self.state_at(ts)
        language = schema.meta(doc).get("language")
        return {
            "ts": ts,
            "seq": self.seq_at(ts),
            "entry": schema.entry_path(doc),
            "language": language if isinstance(language, str) else "",
            "files": schema.workspace(doc),
            "chat": chat_of(doc),
            "run": newest_run(doc),
        }

    def authorship_at(self, path: str, ts: float | None = None) -> dict[str, Any] | None:
        """Who wrote each character of ``path`` at ``ts`` (now when None): spans in
        UTF-16 units indexing ``people``; None when the file did not exist then."""
        if ts is None:
            replica = self._live
        else:
            found = self._replica_at(self._count_at(ts), tracked=True)
            assert isinstance(found, _Replica)
            replica = found
        track = replica.track_of(path)
        if track is None:
            return None
        spans: list[dict[str, int]] = []
        pos = start = 0
        for who, group in itertools.groupby(track.who):
            length = sum(1 for _ in group)
            units = utf16_len(bytes(track.data[start : start + length]).decode("utf-8", "replace"))
            if who != UNKNOWN:
                spans.append({"from": pos, "to": pos + units, "who": who})
            pos += units
            start += length
        return {
            "path": path,
            "text": track.data.decode("utf-8", "replace"),
            "spans": spans,
            "people": [who.as_json() for who in self.people],
        }

    def summary(self, until_seq: int | None = None) -> dict[str, Any]:
        """Per person: typed, pasted, from the AI, edits; and the large inserts."""
        totals = self._totals(until_seq)
        people = [
            {
                "who": self.people[who].as_json(),
                "typed": stats.typed,
                "pasted": stats.pasted,
                "ai": stats.ai,
                "edits": stats.edits,
            }
            for who, stats in sorted(totals.items())
        ]
        large = self._base_large + [
            item for item in self.large_inserts if until_seq is None or item["seq"] <= until_seq
        ]
        return {"people": people, "large_inserts": large}

    def _totals(self, until_seq: int | None) -> dict[int, Stats]:
        totals: dict[int, Stats] = {}
        for who, stats in self._base_stats.items():
            totals.setdefault(who, Stats()).add(stats)
        for row in self._rows:
            if until_seq is not None and row.seq > until_seq:
                break
            totals.setdefault(row.who, Stats()).add(row.stats)
        return totals

    def authors_json(self) -> dict[str, dict[str, str]]:
        """``GET .../authors``: Yjs client id -> the identity that first wrote with it."""
        return {
            str(client): self.people[who].as_json() for client, (who, _) in self.authors.items()
        }

    def base_at(self, seq: int) -> HistoryBase:
        """What folding every row up to ``seq`` leaves: the document then and what was
        derived from the folded rows (authorship, people, authors, summary)."""
        rows = bisect.bisect_right([row.seq for row in self._rows], seq)
        count = self._row_end[rows - 1] if rows else 0
        replica = self._replica_at(count, tracked=True)
        assert isinstance(replica, _Replica)
        last_seq = self._rows[rows - 1].seq if rows else self.first_seq
        if rows:
            ts = self._row_ts[rows - 1]
        else:
            ts = self.base.ts if self.base is not None else 0.0
        code_runs = replica.tracks[CODE_KEY].runs() if CODE_KEY in replica.tracks else []
        files = {
            key: track.runs()
            for key, track in replica.tracks.items()
            if key != CODE_KEY and isinstance(schema.files(replica.doc).get(key), Text)
        }
        summary = {
            str(who): {
                "typed": s.typed,
                "pasted": s.pasted,
                "ai": s.ai,
                "edits": s.edits,
            }
            for who, s in self._totals(last_seq).items()
        }
        derived = {
            "people": [who.as_json() for who in self.people],
            "authors": {
                str(client): who for client, (who, at) in self.authors.items() if at <= last_seq
            },
            "summary": summary,
            "large_inserts": self.summary(last_seq)["large_inserts"],
            "tracks": {"code": code_runs, "files": files},
        }
        return HistoryBase(last_seq, ts, replica.doc.get_update(), derived)


def chat_of(doc: Doc[Any]) -> list[dict[str, Any]]:
    """The chat entries of ``doc``, as the history API shows them."""
    out: list[dict[str, Any]] = []
    chat: Array[Any] = schema.chat(doc)
    for entry in chat:
        if not isinstance(entry, Map):
            continue
        text = entry.get("text")
        ts = entry.get("ts")
        out.append(
            {
                "author": str(entry.get("author", "")),
                "author_role": str(entry.get("author_role", "")),
                "text": str(text) if text is not None else "",
                "ts": float(ts) if isinstance(ts, (int, float)) else None,
                "ai": bool(entry.get("ai", False)),
            }
        )
    return out


RUN_FIELDS = ("id", "status", "stdout", "stderr", "compile_output", "exit_code", "entry")


def newest_run(doc: Doc[Any]) -> dict[str, Any] | None:
    """The run asked for last in ``doc``, with its outputs as they stood."""
    best: tuple[float, str] | None = None
    runs = schema.runs(doc)
    for run_id, record in runs.items():
        if isinstance(record, Map):
            ts = record.get("ts")
            key = (float(ts) if isinstance(ts, (int, float)) else 0.0, str(run_id))
            if best is None or key > best:
                best = key
    if best is None:
        return None
    record = runs.get(best[1])
    assert isinstance(record, Map)
    return {name: _plain(record.get(name)) for name in RUN_FIELDS}


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
