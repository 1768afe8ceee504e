"""The Starlette app: websocket transport, REST API, auth, health, metrics, settings, logs and
CLI. It wires the other packages together; none of them imports it."""
