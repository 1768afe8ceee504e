"""``codementor serve``: every setting as a flag, each also a ``CODEMENTOR_*`` variable."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import fields

import uvicorn

from server.app import create_app
from server.settings import FIELDS, Settings, SettingsError, env_name, from_env, parser_for


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
    return parser


def serve(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        ws_max_size=settings.max_frame_bytes,
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=10,
        lifespan="on",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = {k: v for k, v in vars(args).items() if k != "command"}
    try:
        settings = from_env(**options)
        settings.validate()
    except SettingsError as exc:
        print(f"codementor: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        serve(settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
