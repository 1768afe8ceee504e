"""``codementor serve``: every setting as a flag, each also a ``CODEMENTOR_*`` variable."""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import sys
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import uvicorn

from rooms.roles import Role
from server import admin_cli, collector, datadir, logs, native_stderr
from server.auth import ANY_ROOM, check_strength, issue_token, resolve_secret
from server.names import valid_room_name
from server.settings import FIELDS, Settings, SettingsError, env_name, from_env, parser_for

log = logs.get_logger("codementor.cli")
FD_RESERVE = 256  # the store, Redis, Judge0 and Anthropic connections, files


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="codementor", description="CodeMentor Collab server")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="run the server",
        description="Run the collaborative editing server. Every option can also be set "
        "with the environment variable shown; a flag wins over the variable.",
    )
    defaults = {f.name: f.default for f in fields(Settings)}
    for doc in FIELDS:
        default = defaults[doc.name]
        if doc.secret:
            # Secrets come from the environment only: a flag would show in `ps`.
            serve.epilog = (serve.epilog or "") + f"{env_name(doc.name)}: {doc.help}. "
            continue
        shown = "(unset)" if default is None else default
        serve.add_argument(
            "--" + doc.name.replace("_", "-"),
            dest=doc.name,
            type=parser_for(doc.name),
            default=None,
            metavar=env_name(doc.name),
            help=f"{doc.help} [env {env_name(doc.name)}, default {shown}]",
        )
    token = commands.add_parser(
        "token",
        help="print an access token",
        description="Print a token signed with the server's secret: CODEMENTOR_SECRET, or "
        "in dev mode the one generated under the data dir.",
    )
    token.add_argument("--room", required=True, help="a room name, or * for every room")
    token.add_argument("--role", required=True, choices=[r.value for r in Role])
    token.add_argument("--name", required=True, help="display name")
    token.add_argument("--user", default=None, help="user id (default: a random one)")
    token.add_argument("--ttl", type=int, default=24 * 3600, help="lifetime in seconds")
    token.add_argument("--data-dir", type=Path, default=None, help="where the dev secret lives")
    admin_cli.add_commands(commands)
    return parser


def serve(settings: Settings) -> None:
    # Credentials and the data dir first, before anything is logged: a refusal is one
    # line on stderr.
    check_strength("CODEMENTOR_SECRET", settings.secret)
    check_strength("CODEMENTOR_ADMIN_TOKEN", settings.admin_token)
    datadir.prepare(settings)
    resolve_secret(settings)
    if settings.workers > 1:
        logs.configure(settings.log_level, settings.log_format)
        _serve(settings)  # each worker routes its own native stderr (app_from_env)
        return
    with native_stderr.captured() as stderr:
        logs.configure(settings.log_level, settings.log_format, stderr)
        _serve(settings)


def _serve(settings: Settings) -> None:
    # Imported here, not at the top: the admin commands (export, rooms list, backup...)
    # then start without the app and its AI, Redis and Mongo clients.
    from server import transport
    from server.app import WebSocketFastPath, create_app

    raise_file_limit(settings.max_connections)
    collector.tune()  # each --workers process tunes its own (app_from_env)
    chosen = transport.choose(settings)  # SettingsError (on, misfit) before listening
    log.info("ws_transport", fast_path=chosen.fast, reason=chosen.reason)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level.lower(),
        "log_config": None,  # ours (server.logs): one format for uvicorn's lines too
        "proxy_headers": True,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        "ws_max_size": settings.max_frame_bytes,
        "ws_per_message_deflate": False,
        # A frozen client (a suspended tab) whose kernel still acknowledges our frames
        # is found only by a ping it does not answer.
        "ws_ping_interval": settings.ping_seconds or None,
        "ws_ping_timeout": settings.ping_timeout_seconds,
        "timeout_graceful_shutdown": max(1, round(settings.drain_seconds)),
        "lifespan": "on",
        # The fast transport, or stock uvicorn websockets (server.transport).
        **chosen.options,
    }
    if settings.workers > 1:
        # Each worker builds its own app from the environment; metrics are merged
        # across workers through prometheus-client's multiprocess files.
        export_environment(settings)
        metrics_dir = settings.data_dir / "prometheus-multiproc"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        uvicorn.run("server.app:app_from_env", factory=True, workers=settings.workers, **options)
        return
    app = WebSocketFastPath(create_app(settings))  # raises SettingsError before listening
    uvicorn.Server(uvicorn.Config(app, **options)).run()


def raise_file_limit(connections: int) -> None:
    """Each websocket is a file descriptor, and a soft limit of 1,024 is common: raise
    it to the hard limit, and say so when even that is below the connection limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    if connections and soft != resource.RLIM_INFINITY and soft < connections + FD_RESERVE:
        log.warning(
            "file_limit_below_max_connections",
            open_files=soft,
            max_connections=connections,
            hint="raise `ulimit -n` or lower CODEMENTOR_MAX_CONNECTIONS",
        )


def export_environment(settings: Settings) -> None:
    """Put every setting into ``CODEMENTOR_*`` variables, which worker processes read."""
    for field in fields(Settings):
        value = getattr(settings, field.name)
        if value is not None:
            os.environ[env_name(field.name)] = str(value)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "token":
            print(make_token(args))
            return 0
        if args.command in admin_cli.COMMANDS:
            return admin_cli.run(args)
        options = {k: v for k, v in vars(args).items() if k != "command"}
        settings = from_env(**options)
        settings.validate()
        serve(settings)
    except SettingsError as exc:
        print(f"codementor: {exc}", file=sys.stderr)
        return 2
    return 0


def make_token(args: argparse.Namespace) -> str:
    if args.room != ANY_ROOM and not valid_room_name(args.room):
        raise SettingsError(f"invalid room name {args.room!r}")
    if args.ttl <= 0:
        raise SettingsError("--ttl must be positive")
    settings = from_env(data_dir=args.data_dir)
    secret, _ = resolve_secret(settings)
    return issue_token(
        secret,
        room=args.room,
        role=Role(args.role),
        name=args.name,
        user_id=args.user,
        ttl=args.ttl,
    )


if __name__ == "__main__":
    raise SystemExit(main())
