"""The REST API's one error, kept apart so every API module can raise it without
importing ``server.api`` (which imports them to route them)."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        fields: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = fields
        self.headers = headers

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"error": self.message}
        if self.fields is not None:
            body["fields"] = self.fields
        return JSONResponse(body, status_code=self.status, headers=self.headers)
