"""The fuzzer behind ``tests/corpus/yrs``: mutate real updates on top of a seeded
document and keep the ones pycrdt's yrs gets wrong on a bare ``Doc``.

    .venv/bin/python -m tests.fuzz_yrs --cases 50000 --out tests/corpus/yrs

Each kept case is a file of two hex lines, the seed update and the hostile one,
named for what the hostile update did to a bare document: ``panic-*`` (a Rust
panic), ``runtime-*`` (``RuntimeError``), ``silent-*`` (applied without an error,
yet the document's views disagree with its encoding). ``tests/test_hostile_updates.py``
replays every file against a real server. Rust's panic reports go to stderr;
run with ``2>/dev/null`` to keep the terminal quiet.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pycrdt import Array, Doc, Map, Text

from crdt.protocol import write_var_uint
from crdt.updates import decode_state_vector

SNIPPETS = ["XYZ", "é", "a", "\U0001f642b", "\n"]


def seeded(rng: random.Random) -> tuple[Doc[Any], list[bytes]]:
    """A document a few people edited (text, chat, meta), and every update they made."""
    base: Doc[Any] = Doc(client_id=rng.randrange(1, 2**53))
    base.get("code", type=Text).insert(0, "hello world\n" * 3)
    doc, updates = base, [base.get_update()]
    for _ in range(rng.randint(1, 3)):
        person: Doc[Any] = Doc(client_id=rng.randrange(1, 2**53))
        person.apply_update(doc.get_update())
        doc = person
        doc.observe(lambda event: updates.append(event.update))
        text = doc.get("code", type=Text)
        for _ in range(rng.randint(1, 6)):
            current, roll = str(text), rng.random()
            at = rng.randint(0, len(current))
            if roll < 0.45:
                text.insert(len(current[:at].encode()), rng.choice(SNIPPETS))
            elif roll < 0.65 and len(current) > 2:
                at = min(at, len(current) - 2)
                del text[len(current[:at].encode()) : len(current[: at + 1].encode())]
            elif roll < 0.8:
                doc.get("chat", type=Array).append(Map({"id": "x", "text": "hi"}))
            else:
                doc.get("meta", type=Map)["k"] = rng.choice(["v", 1.5, True])
    return doc, updates


def mutated(rng: random.Random, update: bytes) -> bytes:
    """A few random byte edits: replace, a run of 0xFF (huge varints), cut, insert, flip."""
    data = bytearray(update)
    for _ in range(rng.randint(1, 3)):
        roll = rng.random()
        at = rng.randrange(len(data)) if data else 0
        if roll < 0.3 and data:
            data[at] = rng.randrange(256)
        elif roll < 0.5 and data:
            data[at : at + 1] = bytes([0xFF] * rng.randint(1, 5) + [rng.randrange(128)])
        elif roll < 0.65 and data:
            del data[at : at + rng.randint(1, 4)]
        elif roll < 0.8:
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
        elif data:
            data[at] ^= 1 << rng.randrange(8)
    return bytes(data)


def forged(rng: random.Random, doc: Doc[Any]) -> bytes:
    """One item whose origins are picked among the document's ids: what a hostile
    client writes on purpose (contradictory, far apart, across types)."""
    state = decode_state_vector(doc.get_state())
    ids = [(c, k) for c, n in state.items() for k in range(n)]
    client = rng.choice([*state, rng.randrange(1, 2**53)])
    clock = state.get(client, 0) + (rng.randint(1, 3) if rng.random() < 0.15 else 0)
    origin, right = rng.choice(ids), rng.choice(ids)
    info = rng.choice([0xC4, 0x84, 0x44, 0xC1, 0xC8, 0x04, 0x87])
    out = b"\x01\x01" + write_var_uint(client) + write_var_uint(clock) + bytes([info])
    if info & 0x80:
        out += write_var_uint(origin[0]) + write_var_uint(origin[1])
    if info & 0x40:
        out += write_var_uint(right[0]) + write_var_uint(right[1])
    if not info & 0xC0:
        out += b"\x01\x04code"
    kind = info & 0x1F
    out += {4: b"\x03XYZ", 1: b"\x01", 8: b"\x01\x77\x01a", 7: b"\x01"}[kind]
    return out + b"\x00"


def views(doc: Doc[Any]) -> tuple[str, Any, Any]:
    return (
        str(doc.get("code", type=Text)),
        doc.get("chat", type=Array).to_py(),
        doc.get("meta", type=Map).to_py(),
    )


def outcome(seed: bytes, bad: bytes) -> str | None:
    """What ``bad`` does to a bare document holding ``seed``: None when nothing wrong."""
    doc: Doc[Any] = Doc()
    doc.apply_update(seed)
    try:
        doc.apply_update(bad)
        kind = "silent"
    except ValueError:
        return None  # undecodable: refused before anything changed
    except RuntimeError:
        kind = "runtime"
    except BaseException as exc:
        if type(exc).__name__ != "PanicException":
            raise
        kind = "panic"
    try:
        fresh: Doc[Any] = Doc()
        fresh.apply_update(doc.get_update())
        agree = views(fresh) == views(doc)
    except BaseException:
        agree = False
    return None if kind == "silent" and agree else kind


def run(cases: int, seed: int, keep: Callable[[str, bytes, bytes], None]) -> None:
    rng = random.Random(seed)
    for _ in range(cases):
        doc, updates = seeded(rng)
        start = doc.get_update()
        bad = forged(rng, doc) if rng.random() < 0.5 else mutated(rng, rng.choice(updates))
        kind = outcome(start, bad)
        if kind is not None:
            keep(kind, start, bad)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max", type=int, default=12, help="most files kept per kind")
    args = parser.parse_args()
    os.environ["RUST_BACKTRACE"] = "0"
    args.out.mkdir(parents=True, exist_ok=True)
    kept: dict[str, int] = {}

    def keep(kind: str, start: bytes, bad: bytes) -> None:
        if kept.get(kind, 0) >= args.max:
            return
        kept[kind] = kept.get(kind, 0) + 1
        name = f"{kind}-{hashlib.sha256(bad).hexdigest()[:10]}.hex"
        (args.out / name).write_text(f"{start.hex()}\n{bad.hex()}\n")

    run(args.cases, args.seed, keep)
    print(kept)


if __name__ == "__main__":
    main()
