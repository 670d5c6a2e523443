"""Command-line user management: `python -m auth.cli create-user NAME`.

The password is read from a prompt, or from standard input with --password-stdin, never
from the command line (it would land in shell history and process lists)."""

import argparse
import asyncio
import getpass
import sys

from config import get_settings
from services.db import Database
from services.errors import DomainError
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m auth.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create-user", help="create a user")
    create.add_argument("username")
    create.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    args = parser.parse_args(argv)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("password: ")
        if password != getpass.getpass("again: "):
            print("passwords differ", file=sys.stderr)
            return 1
    try:
        asyncio.run(_create(args.username, password))
    except DomainError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
