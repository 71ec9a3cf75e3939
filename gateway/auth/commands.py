"""`camgate password`, `camgate token ...` and `camgate setup-code`: manage accounts in the
state directory (they take effect at once in a running camgate: it re-reads the file, and
ends the sessions and viewers of a changed password, a removed account or a revoked token)."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import sys
from pathlib import Path

from gateway.auth import setup_code
from gateway.auth.passwords import PasswordError, check_new_password, hash_password
from gateway.auth.roles import Role
from gateway.auth.store import USERS, AuthFileError, AuthStore


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    password = commands.add_parser(
        "password",
        help="set the admin (or viewer) password",
        description="Reads the new password from the terminal (twice) or one line of stdin.",
    )
    password.add_argument("--user", choices=USERS, default="admin")
    password.add_argument(
        "--remove", action="store_true", help="remove the account (viewer: no viewer sign-in)"
    )
    token = commands.add_parser("token", help="API tokens for scripts, WHEP players, Prometheus")
    actions = token.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="make a token and print it (shown only once)")
    create.add_argument("name")
    create.add_argument("--role", choices=("admin", "viewer"), default="viewer")
    actions.add_parser("list", help="list tokens (names and roles, never the tokens)")
    revoke = actions.add_parser("revoke", help="revoke a token by name")
    revoke.add_argument("name")
    commands.add_parser(
        "setup-code",
        help="show the one-time code that choosing the first admin password asks for",
    )


COMMANDS = ("password", "token", "setup-code")


def run(args: argparse.Namespace, state_dir: Path) -> int:
    try:
        if args.command == "setup-code":
            return _setup_code(state_dir)
        store = AuthStore(state_dir)
        if args.command == "password":
            return _password(store, args.user, args.remove)
        return _token(store, args)
    except AuthFileError as exc:
        print(f"camgate: {exc}", file=sys.stderr)
        return 1


def _setup_code(state_dir: Path) -> int:
    code = setup_code.read(state_dir)
    if code is None:
        print(
            "camgate: no setup code: the admin password is set, or camgate has not started "
            f"yet with this state directory ({state_dir})",
            file=sys.stderr,
        )
        return 1
    print(code)
    return 0


def _password(store: AuthStore, user: str, remove: bool) -> int:
    if remove:
        store.set_password_hash(user, None)
        print(f"{user}: account removed")
        return 0
    if sys.stdin.isatty():
        password = getpass.getpass(f"New {user} password: ")
        if getpass.getpass("Repeat it: ") != password:
            print("camgate: the passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        check_new_password(password)
    except PasswordError as exc:
        print(f"camgate: {exc}", file=sys.stderr)
        return 1
    store.set_password_hash(user, hash_password(password))
    print(f"{user}: password set (browsers signed in with the old one are signed out)")
    return 0


def _token(store: AuthStore, args: argparse.Namespace) -> int:
    if args.token_command == "create":
        try:
            token = store.create_token(args.name, Role[args.role.upper()])
        except ValueError as exc:
            print(f"camgate: {exc}", file=sys.stderr)
            return 1
        print(token)
        print(
            f"(token {args.name!r}, role {args.role}: send it as 'Authorization: Bearer <token>')",
            file=sys.stderr,
        )
        return 0
    if args.token_command == "list":
        for info in store.tokens():
            created = dt.datetime.fromtimestamp(info.created).strftime("%Y-%m-%d %H:%M")
            print(f"{info.name}\t{info.role.name.lower()}\tcreated {created}")
        return 0
    if not store.revoke_token(args.name):
        print(f"camgate: no token named {args.name!r}", file=sys.stderr)
        return 1
    print(f"token {args.name!r} revoked")
    return 0
