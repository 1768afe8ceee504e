"""The Starlette app: websocket endpoint, health, metrics, settings and CLI."""
