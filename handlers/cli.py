"""Command line: ``python -m handlers.cli create-host --email E [--name N] [--password-stdin]``.

Creates the first host account even when sign-up is closed. The password is read from standard
input (``--password-stdin``) or prompted for without echo; it never appears in the process list.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys

from config import ConfigError, load_settings
from handlers.accounts import Signup
from realtime.schema import read
from storage import accounts, mongo
from storage.embedded import database_url
from storage.errors import Refused


async def create_host(email: str, password: str, name: str) -> str:
    settings = load_settings(os.environ)
    url, embedded = await database_url(settings.mongodb_url.reveal(), settings.data_path)
    client = mongo.open_client(url)
    try:
        db = client[settings.mongodb_database]
        await accounts.create_indexes(db)
        user = await accounts.Accounts(db).create_host(email, password, name)
        return str(user["_id"])
    finally:
        await client.close()
        if embedded is not None:
            await embedded.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m handlers.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create-host", help="create a host account")
    create.add_argument("--email", required=True)
    create.add_argument("--name", default="Host")
    create.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    args = parser.parse_args(argv)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
    try:
        new = read(Signup, {"email": args.email, "password": password, "name": args.name})
        email = new.email
        user_id = asyncio.run(create_host(new.email, new.password, new.name))
    except (Refused, ConfigError) as exc:
        print(f"error: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    print(f"created host {email} (id {user_id})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
