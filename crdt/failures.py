"""How yrs (through pycrdt) fails, and what each failure leaves behind.

``Doc.apply_update`` fails in three ways (pycrdt ``src/doc.rs``):

- ``ValueError``: the bytes did not decode. Decoding comes before integration, so
  the document is exactly as it was.
- ``RuntimeError``: integration itself refused ("Cannot apply update: ..."). It
  may have integrated part of the update first.
- a Rust panic, which pyo3 raises as ``pyo3_runtime.PanicException``. That class
  derives from ``BaseException``, so ``except Exception`` lets it through, and a
  panic in the middle of integrating leaves the document's views disagreeing
  with its own encoding (seen in practice: the text showed characters its encoded
  state did not contain).

After the last two the document can no longer be trusted and must be rebuilt
from what was accepted before. pyo3 registers no importable module for the panic
class, so it is recognised by name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager


def is_panic(exc: BaseException) -> bool:
    """Is ``exc`` a Rust panic surfaced by pyo3?"""
    kind = type(exc)
    return kind.__name__ == "PanicException" and kind.__module__ == "pyo3_runtime"


def is_yrs_failure(exc: BaseException) -> bool:
    """Did yrs refuse (any of the three ways above), as opposed to a bug of ours or a
    ``KeyboardInterrupt``/``CancelledError`` passing through?"""
    return isinstance(exc, ValueError | RuntimeError) or is_panic(exc)


def leaves_doc_intact(exc: BaseException) -> bool:
    """True when the failed call cannot have changed the document (decoding failed)."""
    return isinstance(exc, ValueError)


@contextmanager
def raised_as(error: Callable[[str], Exception]) -> Iterator[None]:
    """A yrs failure in the block is raised as ``error(describe(failure))``, an error the
    caller's callers expect; anything else passes unchanged. For calls whose failure
    cannot hurt the live document (a read, a throwaway copy): ``except Exception``
    would let a panic through."""
    try:
        yield
    except BaseException as exc:
        if not is_yrs_failure(exc):
            raise
        raise error(describe(exc)) from exc


def describe(exc: BaseException) -> str:
    """A short, single-line account for logs (no traceback, no document content)."""
    kind = "panic" if is_panic(exc) else type(exc).__name__
    message = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{kind}: {message}" if message else kind
