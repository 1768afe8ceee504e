"""Keep credentials out of logs.

uvicorn logs every websocket path with its query string, and the y-websocket
provider sends the access token as ``?token=...``. This filter rewrites such
values before any handler sees the record.
"""

from __future__ import annotations

import logging
import re

SECRET_PARAM = re.compile(r"(?i)\b(token|access_token|secret)=[^&\s\"']+")
REDACTED = r"\1=[redacted]"


def redact(text: str) -> str:
    return SECRET_PARAM.sub(REDACTED, text)


class RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def install(*logger_names: str) -> None:
    for name in logger_names:
        logging.getLogger(name).addFilter(RedactFilter())
