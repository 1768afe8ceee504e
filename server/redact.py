"""Keep credentials out of logs.

uvicorn logs every request target with its query string, and the y-websocket
provider sends the access token as ``?token=...``. A query key is matched as the
server reads it, decoded: ``tok%65n``, ``TOKEN``, ``token+`` and ``token%3D...``
are all the token, so whatever spelling a client used, its value is replaced.
Pairs split by ``&`` or ``;`` and pairs in any text (a message, a field, an
exception) are covered; so is anything shaped like a JWT, wherever it appears.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

SECRET_KEYS = frozenset({"token", "access_token", "secret"})
REDACTED = "[redacted]"
# What may end a key or a value in a query string or in text around it: no match ever
# takes in a quote or a backslash, so redacting rendered JSON keeps it valid JSON.
_EDGE = r"\s\"'\\&;?/,(){}\[\]<>"
PAIR = re.compile(rf"(?<![^{_EDGE}])(?P<key>[^{_EDGE}=]+?)(?:=|%3[dD])(?P<value>[^&;\s\"'\\]*)")
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")


def _pair(match: re.Match[str]) -> str:
    key = match["key"]
    name = unquote_plus(key).strip().lower() if "%" in key or "+" in key else key.lower()
    if name in SECRET_KEYS:
        return f"{name}={REDACTED}"
    return match[0]


def redact(text: str) -> str:
    """``text`` with the value of every secret query key, and every JWT, replaced."""
    if "=" in text or "%3" in text:
        text = PAIR.sub(_pair, text)
    if "eyJ" in text:
        text = JWT.sub(REDACTED, text)
    return text


def redact_value(value: Any) -> Any:
    """Strings redacted, containers walked (a log field may hold a dict or a list)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: REDACTED if _secret_key(k) else redact_value(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(redact_value(v) for v in value)
    if isinstance(value, list):
        return [redact_value(v) for v in value]
    return value


def _secret_key(key: object) -> bool:
    return isinstance(key, str) and key.lower() in SECRET_KEYS


class RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple | Mapping):
            record.args = redact_value(record.args)
        return True


def install(*logger_names: str) -> None:
    for name in logger_names:
        logging.getLogger(name).addFilter(RedactFilter())
