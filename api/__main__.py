"""``python -m api migrate [--db URL] [--data-dir DIR]``: the one-time schema step that runs
before the app processes start (README, "Running several processes"); serve.py --migrate-only."""

from __future__ import annotations

import argparse
import logging
import sys

from api.config import Settings
from api.server import migrate_only


def main(argv: list[str] | None = None) -> int:
    """Run the subcommand; its exit status (``migrate``: 0 with the version reached printed)."""
    parser = argparse.ArgumentParser(prog="python -m api", description="ipernity-compatible API")
    commands = parser.add_subparsers(dest="command", required=True)
    migrate = commands.add_parser("migrate", help="migrate the schema under the migration lock "
                                                  "and print the version reached")
    migrate.add_argument("--db", dest="database_url", help="database URL (API_DATABASE_URL)")
    migrate.add_argument("--data-dir", help="data directory (API_DATA_DIR, default ./data)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    return migrate_only(Settings.from_env(database_url=args.database_url, data_dir=args.data_dir))


if __name__ == "__main__":
    sys.exit(main())
