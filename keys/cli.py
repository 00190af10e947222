"""``python -m keys``: manage users and keys from scripts (JSON out, one clear line on error)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from keys import store
from keys.db import db, default_database_url, open_database
from keys.models import MODELS


def build_parser() -> argparse.ArgumentParser:
    """The command tree: user add/close/open/admin, create, list, enable, disable, allow,
    rotate, require-hmac, legacy-oauth, ratelimit."""
    parser = argparse.ArgumentParser(prog="python -m keys", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(*names: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(names[0], help=help_text)
        p.add_argument("--db", help="database URL (default: the server's)")
        return p

    user = command("user", help_text="manage users")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    add = user_sub.add_parser("add", help="create a user")
    add.add_argument("username")
    add.add_argument("--password", required=True)
    add.add_argument("--realname", default="")
    add.add_argument("--email", default="")
    add.add_argument("--pro", action="store_true", help="give the account PRO status")
    add.add_argument("--admin", action="store_true",
                     help="make the account a site administrator (every key at /admin/keys)")
    add.add_argument("--db", help="database URL (default: the server's)")
    admin = user_sub.add_parser("admin", help="make a user a site administrator")
    admin.add_argument("username")
    admin.add_argument("--revoke", action="store_true", help="take the administrator role away")
    admin.add_argument("--db", help="database URL (default: the server's)")
    for name, help_text in (("close", "close an account (its tokens get code 108)"),
                            ("open", "reopen a closed account")):
        status = user_sub.add_parser(name, help=help_text)
        status.add_argument("username")
        status.add_argument("--db", help="database URL (default: the server's)")

    create = command("create", help_text="issue a key; prints api_key and secret as JSON")
    create.add_argument("--owner", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--description", default="")
    create.add_argument("--auth", choices=store.AUTH_TYPES, default="desktop")
    create.add_argument("--callback", default="")
    create.add_argument("--always-signed", action="store_true")

    listing = command("list", help_text="list keys as JSON lines")
    listing.add_argument("--owner")
    for name, help_text in (("disable", "disable a key"), ("enable", "enable a key")):
        command(name, help_text=help_text).add_argument("key")

    allow = command("allow", help_text="the addresses a key may be used from (others get code "
                                       "111); without CIDR prints the list")
    allow.add_argument("key")
    allow.add_argument("cidr", nargs="*", help="IPv4/IPv6 addresses or CIDR ranges; "
                                                "replaces the list")
    allow.add_argument("--clear", action="store_true", help="allow every address again")

    rotate = command("rotate", help_text="give a key a new secret; prints api_key and secret as "
                                         "JSON")
    rotate.add_argument("key")
    rotate.add_argument("--grace", type=int, default=0, metavar="SECONDS",
                        help="how long the old secret still signs (0 to 604800; default 0: "
                             "refused at once)")
    for name, help_text in (
            ("require-hmac", "refuse MD5 signatures for a key: HMAC-SHA256 or OAuth only (105)"),
            ("legacy-oauth", "let a key's OAuth 1.0 clients exchange a request token without "
                             "oauth_verifier (off by default: see docs/oauth.md)")):
        switch = command(name, help_text=help_text)
        switch.add_argument("key")
        switch.add_argument("state", choices=("on", "off"))
    ratelimit = command("ratelimit", help_text="a key's own rate limit (code 112 beyond it); "
                                               "without LIMIT prints it")
    ratelimit.add_argument("key")
    ratelimit.add_argument("limit", nargs="?", help='the limits notation, e.g. "3600/hour" or '
                                                    '"10/second;5000/hour"')
    ratelimit.add_argument("--clear", action="store_true",
                           help="back to the server's API_RATELIMIT_PER_KEY")
    return parser


def _key_settings(args: argparse.Namespace) -> object:
    """require-hmac, legacy-oauth and ratelimit: one key setting each, audited as from the CLI."""
    if args.command == "ratelimit":
        if args.clear and args.limit:
            raise store.KeyStoreError("give a LIMIT or --clear, not both")
        if args.clear or args.limit:
            row = store.update_key(args.key, actor=store.CLI_ACTOR,
                                   rate_limit="" if args.clear else args.limit)
        else:
            row = store.key_row(args.key)
        return {"api_key": row.key, "rate_limit": row.rate_limit or None}
    field = args.command.replace("-", "_")
    row = store.update_key(args.key, actor=store.CLI_ACTOR, **{field: args.state == "on"})
    return {"api_key": row.key, field: getattr(row, field)}


def run(args: argparse.Namespace) -> object:
    """Carry out one command; returns what to print as JSON."""
    if args.command == "user":
        if args.user_command in ("close", "open"):
            user = store.set_user_open(args.username, args.user_command == "open")
            return {"user_id": user.id, "username": user.username, "status": user.status}
        if args.user_command == "admin":
            user = store.set_user_admin(args.username, not args.revoke)
            return {"user_id": user.id, "username": user.username, "admin": user.is_admin}
        user = store.add_user(args.username, args.password, realname=args.realname,
                              email=args.email, is_pro=args.pro, is_admin=args.admin)
        return {"user_id": user.id, "username": user.username, "admin": user.is_admin}
    if args.command == "rotate":
        key = store.rotate_secret(args.key, args.grace)
        return {"api_key": key.key, "secret": key.secret,
                "previous_expires_at": key.previous_expires_at or None}
    if args.command == "allow":
        if args.clear and args.cidr:
            raise store.KeyStoreError("give CIDR ranges or --clear, not both")
        if args.clear or args.cidr:
            allowed = store.set_allowed_networks(args.key, args.cidr)
        else:
            allowed = store.allowed_networks(args.key)
        return {"api_key": args.key.strip().lower(), "allowed": allowed}
    if args.command in ("require-hmac", "legacy-oauth", "ratelimit"):
        return _key_settings(args)
    if args.command == "create":
        key = store.create_key(store.get_user_by_username(args.owner), args.name,
                               description=args.description, auth_type=args.auth,
                               callback_url=args.callback, always_signed=args.always_signed)
        return {"api_key": key.key, "secret": key.secret}
    if args.command == "list":
        owner = store.get_user_by_username(args.owner) if args.owner else None
        return [{"api_key": k.key, "owner": k.owner.username, "name": k.name,
                 "auth": k.auth_type, "enabled": k.enabled, "always_signed": k.always_signed,
                 "require_hmac": k.require_hmac, "legacy_oauth": k.legacy_oauth,
                 "rate_limit": k.rate_limit or None,
                 "allowed": list(store.split_networks(k.allowed_ips)),
                 "created_at": k.created_at, "last_used_at": k.last_used_at}
                for k in store.list_keys(owner)]
    key = store.set_enabled(args.key, args.command == "enable")
    return {"api_key": key.key, "enabled": key.enabled}


def main(argv: list[str] | None = None) -> int:
    """Entry point; exit status 1 with one line on stderr when the command cannot be done."""
    args = build_parser().parse_args(argv)
    url = default_database_url(database_url=args.db)
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    open_database(url)
    try:
        with db.connection_context():
            db.create_tables(MODELS, safe=True)
            # No transaction around the whole command: each write is one statement or its own
            # short transaction, so no lock is held while a password is hashed or a list read.
            result = run(args)
    except store.KeyStoreError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # a database we cannot reach, say: one line, no traceback
        print(f"error: {type(error).__name__}: {error}".splitlines()[0], file=sys.stderr)
        return 1
    print(json.dumps(result, indent=None))
    return 0
