"""Command-line user management: `python -m auth.cli create-user NAME` and
`python -m auth.cli create-api-key NAME [--name LABEL] [--expires-in-days N]`.

The password is read from a prompt, or from standard input with --password-stdin, never
from the command line (it would land in shell history and process lists). A new API key is
printed once, alone on standard output, so it can be piped into a secret store."""

import argparse
import asyncio
import getpass
import sys

from sqlalchemy import select

from config import get_settings
from models.db import User
from services.container import build_api_keys
from services.db import Database
from services.errors import DomainError, NotFound
from services.users import create_user


async def _create(username: str, password: str) -> None:
    db = Database(get_settings())
    try:
        await db.migrate()
        async with db.sessionmaker() as session:
            user = await create_user(session, username, password)
        print(f"created user {user.username} ({user.id})")
    finally:
        await db.dispose()


async def _create_key(username: str, name: str, expires_in_days: int | None) -> None:
    settings = get_settings()
    db = Database(settings)
    try:
        await db.migrate()
        async with db.sessionmaker() as session:
            user_id = await session.scalar(select(User.id).where(User.username == username))
        if user_id is None:
            raise NotFound(f"no user {username!r}", code="user_not_found")
        keys = build_api_keys(settings, db, settings.resolve_secret_key())
        row, key = await keys.create(user_id, name, expires_in_days)
        print(f"created API key {row['prefix']} ({row['id']}) for {username}; it is shown only now:",
              file=sys.stderr)
        print(key)
    finally:
        await db.dispose()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m auth.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create-user", help="create a user")
    create.add_argument("username")
    create.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    key = sub.add_parser("create-api-key", help="create an API key for a user and print it")
    key.add_argument("username")
    key.add_argument("--name", default="cli", help="a label for the key (default: cli)")
    key.add_argument("--expires-in-days", type=int, default=None, help="default: no expiry")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "create-api-key":
        return _run(_create_key(args.username, args.name, args.expires_in_days))
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("password: ")
        if password != getpass.getpass("again: "):
            print("passwords differ", file=sys.stderr)
            return 1
    return _run(_create(args.username, password))


def _run(coro) -> int:
    try:
        asyncio.run(coro)
    except DomainError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
