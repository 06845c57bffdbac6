"""The admin command line: ``python -m handlers.cli COMMAND ...`` (``make admin ARGS=...``).

Every command reads the same settings as the server (environment, then ``CONFIG_FILE``) and works
while the server runs, on MongoDB or on the embedded database (handlers/admin.py). Passwords are
read from standard input (``--password-stdin``) or prompted for without echo; they never appear in
the process list. Exit status: 0 done, 1 refused (the message says why), 2 invalid configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

from pydantic import StringConstraints
from pymongo.errors import PyMongoError

from config import ConfigError, Settings, load_settings
from config.settings import effective_settings
from config.signing_key import with_signing_key
from handlers import admin
from handlers.accounts import Signup
from realtime.schema import Body, Email, read
from storage.embedded import EmbeddedInUse
from storage.errors import Refused

PROG = "python -m handlers.cli"
LIVE_ENDED = "its open live connections were closed (4003) on every server process"
LIVE_LEFT = (
    "its open live connections end when their access token expires "
    "(without REDIS_URL, or with Redis not answering, they cannot be reached)"
)


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    return getpass.getpass("Password: ")


class HostEmail(Body):
    email: Email


class PasswordReset(HostEmail):
    password: Annotated[str, StringConstraints(min_length=8, max_length=200)]  # as at sign-up


def _email(args: argparse.Namespace) -> str:
    return read(HostEmail, {"email": args.email}).email


def create_host(settings: Settings, args: argparse.Namespace) -> int:
    new = read(Signup, {"email": args.email, "password": _password(args), "name": args.name})
    user_id = asyncio.run(admin.create_host(settings, new.email, new.password, new.name))
    print(f"created host {new.email} (id {user_id})")
    return 0


def list_hosts(settings: Settings, args: argparse.Namespace) -> int:
    hosts = asyncio.run(admin.list_hosts(settings))
    rows = [
        {
            "id": str(h["_id"]),
            "email": h["email"],
            "name": h.get("name", ""),
            "created_at": h["created_at"].isoformat() if h.get("created_at") else None,
            "disabled": h.get("disabled_at") is not None,
        }
        for h in hosts
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        state = "disabled" if row["disabled"] else "active"
        print(f"{row['email']}\t{row['name']}\t{state}\t{row['id']}\t{row['created_at']}")
    print(f"{len(rows)} host(s)", file=sys.stderr)
    return 0


def disable_host(settings: Settings, args: argparse.Namespace) -> int:
    email = _email(args)
    _, kicked = asyncio.run(admin.set_disabled(settings, email, True))
    print(f"disabled host {email}: login refused, its tokens and refresh tokens revoked")
    print(LIVE_ENDED if kicked else LIVE_LEFT)
    return 0


def enable_host(settings: Settings, args: argparse.Namespace) -> int:
    email = _email(args)
    asyncio.run(admin.set_disabled(settings, email, False))
    print(f"enabled host {email}: it can log in again")
    return 0


def reset_password(settings: Settings, args: argparse.Namespace) -> int:
    new = read(PasswordReset, {"email": args.email, "password": _password(args)})
    _, kicked = asyncio.run(admin.reset_password(settings, new.email, new.password))
    print(f"reset the password of {new.email}: its earlier tokens and refresh tokens are revoked")
    print(LIVE_ENDED if kicked else LIVE_LEFT)
    return 0


def mint_token(settings: Settings, args: argparse.Namespace) -> int:
    token = admin.mint_token(
        settings, args.sub, name=args.name, webinar=args.webinar, ttl=args.ttl, kid=args.kid
    )
    print(token)
    return 0


def check_config(settings: Settings, args: argparse.Namespace) -> int:
    shown = effective_settings(settings)
    if args.json:
        print(json.dumps(dict(shown), indent=2, ensure_ascii=False))
    else:
        for env, value in shown:
            print(f"{env}={value}")
    print("configuration is valid", file=sys.stderr)
    return 0


def apply_retention(settings: Settings, args: argparse.Namespace) -> int:
    counts = asyncio.run(admin.apply_retention(settings))
    if not counts:
        print("retention: every retention setting is 0 (keep forever); nothing deleted")
    for kind, n in counts.items():
        print(f"{kind}: deleted {n}")
    return 0


def backup(settings: Settings, args: argparse.Namespace) -> int:
    size = asyncio.run(admin.backup(settings, Path(args.output)))
    print(f"wrote {Path(args.output).resolve()} ({size} bytes)")
    return 0


def restore(settings: Settings, args: argparse.Namespace) -> int:
    aside = admin.restore(settings, Path(args.archive))
    print(f"restored {args.archive} into {settings.data_path / 'mongo'}")
    if aside is not None:
        print(f"the earlier database was moved to {aside}")
    return 0


Command = Callable[[Settings, argparse.Namespace], int]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Administer the webinar server. Settings come from the environment and "
        "CONFIG_FILE, as for the server; every command works while the server runs.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, run: Command, help: str) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help, description=help)
        cmd.set_defaults(run=run)
        return cmd

    def with_password(cmd: argparse.ArgumentParser) -> None:
        cmd.add_argument(
            "--password-stdin", action="store_true", help="read the password from stdin (else prompt)"
        )

    create = command("create-host", create_host, "create a host account (even with sign-up closed)")
    create.add_argument("--email", required=True)
    create.add_argument("--name", default="Host")
    with_password(create)
    hosts = command("list-hosts", list_hosts, "list host accounts (tab-separated, or --json)")
    hosts.add_argument("--json", action="store_true")
    for name, run, what in (
        ("disable-host", disable_host, "disable a host: login refused, every token of theirs revoked"),
        ("enable-host", enable_host, "enable a disabled host again"),
    ):
        command(name, run, what).add_argument("--email", required=True)
    reset = command("reset-password", reset_password, "set a host's password; revokes earlier tokens")
    reset.add_argument("--email", required=True)
    with_password(reset)
    mint = command(
        "mint-token",
        mint_token,
        "print an integrator attendee token (signed with INTEGRATOR_KEYS, iss INTEGRATOR_ISSUER)",
    )
    mint.add_argument("--sub", required=True, help="the integrator's user id (becomes ext:<sub>)")
    mint.add_argument("--name", default="", help="display name")
    mint.add_argument("--webinar", help="the webinar id the token admits to (the wid claim)")
    mint.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    mint.add_argument("--kid", default="", help="the INTEGRATOR_KEYS key to sign with (default the first)")
    check = command("check-config", check_config, "validate the settings and print them, secrets masked")
    check.add_argument("--json", action="store_true")
    command("apply-retention", apply_retention, "delete what the retention settings no longer keep, now")
    back = command(
        "backup", backup, "write a consistent .tar.gz of the embedded database (while the server runs)"
    )
    back.add_argument("--output", required=True, help="the archive to write (must not exist)")
    rest = command(
        "restore", restore, "unpack a backup as the embedded database (server stopped; old one kept aside)"
    )
    rest.add_argument("--archive", required=True, help="an archive written by backup")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = with_signing_key(load_settings(os.environ))  # the key the server signs with
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    run: Command = args.run
    try:
        return run(settings, args)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except (Refused, EmbeddedInUse, ValueError, OSError) as exc:
        print(f"error: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    except (PyMongoError, RuntimeError) as exc:  # the database cannot be reached or started
        print(f"error: database: {exc}".splitlines()[0], file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
