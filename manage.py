"""Command-line user management: `python -m manage COMMAND` (an entry point, like serve.py
and worker.py: it drives the services, so it lives above them, not in auth/).

    create-user NAME [--admin] [--password-stdin]   a user (an admin with --admin)
    list-users [--limit N] [--offset N]            every account, with role, state, budgets
    set-role NAME user|admin
    disable NAME / enable NAME                     refuse or allow the account's tokens
    set-budget NAME [--daily N|none] [--monthly N|none]
    usage [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--user NAME]
    set-limits NAME [--requests-per-minute N] [--max-running-generations N] ...
                                                   override resource limits (none given: the defaults)
    create-api-key NAME [--name LABEL] [--expires-in-days N]   printed once, alone on stdout

The password is read from a prompt, or from standard input with --password-stdin, never
from the command line (it would land in shell history and process lists). A change is
seen by running servers within USER_POLICY_TTL. A new API key is printed alone on standard
output, so it can be piped into a secret store."""

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable, Mapping
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import select

from auth.passwords import normalize_username
from config import Settings, get_settings
from models.db import User
from services import admin
from services.container import build_api_keys
from services.db import Database
from services.errors import DomainError, NotFound
from services.limits import Limits
from services.limits.overrides import OVERRIDABLE
from services.usage import UsageService
from services.users import create_user

T = TypeVar("T")
# What a command prints: a sentence, or a JSON document.
Result = str | Mapping[str, Any]


async def _with_db(action: Callable[[Database, Settings], Awaitable[T]]) -> T:
    settings = get_settings()
    db = Database(settings)
    try:
        await db.migrate()
        return await action(db, settings)
    finally:
        await db.dispose()


def _budget(value: str) -> int | None:
    if value.lower() == "none":
        return None
    number = int(value)
    if not 0 <= number <= 2_000_000_000:
        raise argparse.ArgumentTypeError("a budget is 0 to 2000000000 tokens, or none")
    return number


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m manage")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create-user", help="create a user")
    create.add_argument("username")
    create.add_argument("--admin", action="store_true", help="with the admin role")
    create.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    listing = sub.add_parser("list-users", help="list accounts")
    listing.add_argument("--limit", type=int, default=100, choices=range(1, 10_001), metavar="1..10000")
    listing.add_argument("--offset", type=int, default=0)
    role = sub.add_parser("set-role", help="make a user an admin, or not")
    role.add_argument("username")
    role.add_argument("role", choices=admin.ROLES)
    for name in ("disable", "enable"):
        sub.add_parser(name, help=f"{name} an account").add_argument("username")
    budget = sub.add_parser("set-budget", help="token budgets per UTC day / month ('none': unlimited)")
    budget.add_argument("username")
    budget.add_argument("--daily", type=_budget, default=argparse.SUPPRESS)
    budget.add_argument("--monthly", type=_budget, default=argparse.SUPPRESS)
    usage = sub.add_parser("usage", help="tokens per user, day and model")
    usage.add_argument("--from", dest="start", type=date.fromisoformat)
    usage.add_argument("--to", dest="end", type=date.fromisoformat)
    usage.add_argument("--user", help="one user's usage (default: everyone's)")
    limits = sub.add_parser("set-limits", help="override a user's resource limits (none given: defaults)")
    limits.add_argument("username")
    for name in OVERRIDABLE:
        limits.add_argument("--" + name.replace("_", "-"), dest=name, type=int, default=None, metavar="N")
    key = sub.add_parser("create-api-key", help="create an API key for a user and print it")
    key.add_argument("username")
    key.add_argument("--name", default="cli", help="a label for the key (default: cli)")
    key.add_argument("--expires-in-days", type=int, default=None, help="default: no expiry")
    return parser


async def _user_id(db: Database, username: str) -> str:
    async with db.sessionmaker() as session:
        user_id = await session.scalar(select(User.id).where(User.username_normalized == normalize_username(username)))
    if user_id is None:
        raise NotFound(f"no user {username!r}", code="user_not_found")
    return user_id


async def _set_limits(db: Database, settings: Settings, args: argparse.Namespace) -> dict[str, int]:
    user_id = await _user_id(db, args.username)
    values = {name: getattr(args, name) for name in OVERRIDABLE if getattr(args, name) is not None}
    limits = Limits(settings, db)
    try:
        await limits.set_user_limits(user_id, values or None)
        return {name: await limits.user_limit(user_id, name) for name in OVERRIDABLE}
    finally:
        await limits.aclose()


async def _create_key(db: Database, settings: Settings, args: argparse.Namespace) -> str:
    user_id = await _user_id(db, args.username)
    keys = build_api_keys(settings, db, settings.resolve_secret_key())
    row, key = await keys.create(user_id, args.name, args.expires_in_days)
    print(f"created API key {row['prefix']} ({row['id']}) for {args.username}; it is shown only now:", file=sys.stderr)
    return key


def _read_password(args: argparse.Namespace) -> str | None:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    password = getpass.getpass("password: ")
    if password != getpass.getpass("again: "):
        print("passwords differ", file=sys.stderr)
        return None
    return password


def _changes(args: argparse.Namespace) -> dict[str, Any]:
    if args.command == "set-role":
        return {"role": args.role}
    if args.command in ("disable", "enable"):
        return {"disabled": args.command == "disable"}
    return {
        f"{period}_token_budget": getattr(args, period) for period in ("daily", "monthly") if hasattr(args, period)
    }  # only those given; "none" removes one


async def _run(args: argparse.Namespace, password: str | None) -> Result:
    async def action(db: Database, settings: Settings) -> Result:
        if args.command == "create-user":
            assert password is not None  # main read it, or stopped
            async with db.sessionmaker() as session:
                user = await create_user(session, args.username, password, "admin" if args.admin else "user")
            return f"created user {user.username} ({user.id}, {user.role})"
        if args.command == "set-limits":
            return await _set_limits(db, settings, args)
        if args.command == "create-api-key":
            return await _create_key(db, settings, args)
        if args.command == "list-users":
            return await admin.list_users(db, args.limit, args.offset)
        if args.command == "usage":
            who = await _user_id(db, args.user) if args.user else None
            return await UsageService(db, 0, settings.usage_max_days).summary(who, args.start, args.end)
        return await admin.update_user(db, _changes(args), username=args.username)

    return await _with_db(action)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    password = _read_password(args) if args.command == "create-user" else None
    if args.command == "create-user" and password is None:
        return 1
    try:
        result = asyncio.run(_run(args, password))
    except DomainError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 1
    print(result if isinstance(result, str) else json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
