"""Milliseconds per ``doc.search`` and ``doc.getList`` call at scale, through the whole pipeline.

    python bench/search_bench.py [--db URL] [--docs 100000] [--members 5000] [--repeat 30]
                                 [--reuse] [--explain] [--only geo,getList]

``--db`` is ``sqlite:///path`` or ``postgresql://user@host:5432/db`` (an empty database: the
schema is created and filled); without it, a temporary SQLite file. ``--reuse`` times a database
an earlier run filled (same ``--docs``) instead of filling it. Documents are bulk-loaded (SQLite:
executemany in batches; PostgreSQL: COPY), with the real full-text triggers or the same SQL
function they use: titles and descriptions drawn from a vocabulary of 4,000 words with a Zipf
distribution (a few words in a fifth of the docs, most in a handful), 0-5 keyword tags from the
same law, owners with a Zipf law over ``--members`` members, a third geotagged (half of those
around 150 cities, Paris the largest), a tenth not public, a tenth not for all audiences.

Each case then runs ``--repeat`` times through falcon's TestClient (dispatch, binding, the
queries, JSON), anonymous with an API key, and prints its median and 95th percentile in ms and
the ``total`` it answered. ``--explain`` prints, per case, the plan of every query on ``docs``
(PostgreSQL: the index each scan uses). A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import logging
import math
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import falcon.testing
from peewee import PostgresqlDatabase

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.app import build_context, create_app  # noqa: E402
from api.config import Settings  # noqa: E402
from api.models.docs import Doc, Tag, Thumb  # noqa: E402
from keys import store  # noqa: E402
from keys.db import db  # noqa: E402
from keys.models import User  # noqa: E402
from keys.passwords import hash_password  # noqa: E402

VOCABULARY = 4000
SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "pe", "da", "go", "li", "mo", "ta",
             "be", "ri", "zu", "fa", "no", "she")
PARIS = (48.8566, 2.3522)
BASE_TIME = 1_500_000_000
BATCH = 20_000


def vocabulary(rng: random.Random) -> list[str]:
    """VOCABULARY distinct pseudo-words, most frequent first (rank 0 is the commonest)."""
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < VOCABULARY:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


class Zipf:
    """Draws indexes 0..n-1 with P(k) proportional to 1 / (k + 1) ** s."""

    def __init__(self, n: int, s: float, rng: random.Random) -> None:
        self.indexes = range(n)
        self.cumulative = list(itertools.accumulate(1 / (k + 1) ** s for k in range(n)))
        self.rng = rng

    def draw(self, k: int = 1) -> list[int]:
        return self.rng.choices(self.indexes, cum_weights=self.cumulative, k=k)


class World:
    """The random choices the rows are made of, seeded (the same data on every run)."""

    def __init__(self, members: int, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.words = vocabulary(self.rng)
        self.word = Zipf(len(self.words), 1.0, self.rng)
        self.owner = Zipf(members, 0.8, self.rng)
        cities = [PARIS] + [(self.rng.uniform(-45, 60), self.rng.uniform(-120, 140))
                            for _ in range(149)]
        self.cities = cities
        self.city = Zipf(len(cities), 1.0, self.rng)

    def text(self, count: int) -> str:
        return " ".join(self.words[k] for k in self.word.draw(count))

    def place(self) -> tuple[float | None, float | None]:
        rng = self.rng
        roll = rng.random()
        if roll < 1 / 6:
            lat, lng = self.cities[self.city.draw()[0]]
            return lat + rng.gauss(0, 0.08), lng + rng.gauss(0, 0.12)
        if roll < 1 / 3:
            return rng.uniform(-60, 70), rng.uniform(-170, 170)
        return None, None


def doc_rows(world: World, first_id: int, count: int, user_ids: list[int]
             ) -> Iterator[tuple[dict[str, Any], list[str]]]:
    """(doc values, keyword tags) for docs first_id .. first_id + count - 1."""
    rng = world.rng
    for n in range(first_id, first_id + count):
        lat, lng = world.place()
        roll = rng.random()
        share = ({"is_public": True} if roll < 0.9 else
                 {"is_public": False, "is_family": roll < 0.95, "is_friend": roll > 0.93})
        posted = BASE_TIME + n * 60 + rng.randrange(60)
        tags = list(dict.fromkeys(world.words[k] for k in world.word.draw(rng.randrange(6))))
        yield ({
            "id": n, "owner": user_ids[world.owner.draw()[0]],
            "media": rng.choices(("photo", "video", "audio", "other"), (85, 10, 3, 2))[0],
            "title": world.text(rng.randint(1, 4)),
            "description": world.text(rng.choice((0, 0, 5, 10, 20))),
            "created": time.strftime("%Y-%m-%d %H:%M:%S",
                                     time.gmtime(posted - rng.randrange(86400 * 3650))),
            "posted_at": posted, "modified_at": posted,
            "safety": rng.choices((1, 2, 3), (90, 7, 3))[0],
            "license": rng.choices((0, 1, 3, 5, 7, 9, 11, 255), (50, 10, 10, 3, 10, 7, 5, 5))[0],
            "faves": int(rng.paretovariate(1.5)) - 1, "visits": int(rng.paretovariate(1.2) * 10),
            "comments": rng.randrange(5), "lat": lat, "lng": lng,
            "secret": f"{n:016x}", "original_secret": f"{n:015x}o", "md5": f"{n:032x}",
            "original_ext": "jpg", "width": 1024, "height": 768, **share}, tags)


def full_row(model: Any, values: dict[str, Any]) -> list[Any]:
    """Every column of ``model`` in its order (``columns``): the values given, else the field's
    default."""
    row = []
    for field in fields(model):
        value = values.get(field.name, values.get(field.column_name, _MISSING))
        if value is _MISSING:
            value = field.default() if callable(field.default) else field.default
        row.append(value)
    return row


_MISSING = object()


def fields(model: Any) -> list[Any]:
    """The fields a load gives: users and docs with their ids (tags and thumbs refer to them),
    tags and thumbs numbered by the database."""
    given_ids = model in (User, Doc)
    return [f for f in model._meta.sorted_fields if given_ids or f is not model._meta.primary_key]


def columns(model: Any) -> list[str]:
    return [field.column_name for field in fields(model)]


# -- loading ------------------------------------------------------------------------------------

def populate(count: int, members: int) -> None:
    """``members`` members (bulk) and ``count`` docs with a thumb and their tags."""
    started = time.perf_counter()
    world = World(members)
    password_hash = hash_password("bench-password")
    users = [full_row(User, {"id": i, "username": f"member{i}", "realname": f"Member {i}",
                             "password_hash": password_hash}) for i in range(1, members + 1)]
    postgresql = isinstance(db.obj, PostgresqlDatabase)
    loader = _copy if postgresql else _insert
    with db.connection_context():
        with db.atomic():
            loader(User, users)
            for start in range(1, count + 1, BATCH):
                size = min(BATCH, count + 1 - start)
                docs, tags, thumbs = [], [], []
                for values, keywords in doc_rows(world, start, size, list(range(1, members + 1))):
                    docs.append((full_row(Doc, values), " ".join(keywords)))
                    tags += [full_row(Tag, {"doc": values["id"], "tag": word, "norm": word,
                                            "created_at": values["posted_at"]})
                             for word in keywords]
                    thumbs.append(full_row(Thumb, {"doc": values["id"], "label": "75x",
                                                   "w": 75, "h": 75}))
                (_load_pg_docs if postgresql else _load_sqlite_docs)(docs, tags)
                loader(Thumb, thumbs)
                print(f"\r{start + size - 1} docs", end="", file=sys.stderr, flush=True)
            _number_from(max(count, members))
        print(file=sys.stderr)
        if postgresql:
            db.execute_sql("VACUUM ANALYZE")
        else:
            db.execute_sql("ANALYZE")
    print(f"{count} docs, {members} members loaded in {time.perf_counter() - started:.0f} s")


def _insert(model: Any, rows: list[list[Any]]) -> None:
    """SQLite: one executemany per table and batch."""
    names = columns(model)
    sql = (f'INSERT INTO "{model._meta.table_name}" ({", ".join(names)}) '
           f'VALUES ({", ".join("?" * len(names))})')
    db.connection().executemany(sql, rows)


def _load_sqlite_docs(docs: list[tuple[list[Any], str]], tags: list[list[Any]]) -> None:
    """Tags first (foreign keys off for the load), so the docs' insert trigger puts each doc in
    the full-text index once, with its tags, instead of once per tag."""
    db.execute_sql("PRAGMA defer_foreign_keys = ON")
    _insert(Tag, tags)
    _insert(Doc, [row for row, _tags in docs])


def _copy(model: Any, rows: list[list[Any]], table: str | None = None) -> None:
    """PostgreSQL: COPY FROM STDIN in text format."""
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join(_copy_value(value) for value in row))
        buffer.write("\n")
    buffer.seek(0)
    names = ", ".join(f'"{name}"' for name in columns(model))
    cursor = db.cursor()
    cursor.copy_expert(f'COPY "{table or model._meta.table_name}" ({names}) FROM STDIN', buffer)


def _copy_value(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    return (str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
            .replace("\r", "\\r"))


def _load_pg_docs(docs: list[tuple[list[Any], str]], tags: list[list[Any]]) -> None:
    """COPY into a staging table, then one INSERT that computes each vector with the function
    the triggers use (title, description, keyword tags), then the tags with their statement
    trigger off: each doc written once."""
    names = ", ".join(f'"{name}"' for name in columns(Doc))
    db.execute_sql('CREATE TEMP TABLE IF NOT EXISTS bench_docs '
                   '(LIKE docs INCLUDING DEFAULTS, bench_tags text) ON COMMIT DELETE ROWS')
    buffer = io.StringIO()
    for row, keywords in docs:
        buffer.write("\t".join(_copy_value(value) for value in [*row, keywords]) + "\n")
    buffer.seek(0)
    db.cursor().copy_expert(f'COPY bench_docs ({names}, bench_tags) FROM STDIN', buffer)
    db.execute_sql("ALTER TABLE docs DISABLE TRIGGER docs_search_insert")
    db.execute_sql(f'INSERT INTO docs ({names}, search_vector) SELECT {names}, '
                   "ipernity_search_vector(title || ' ' || description || ' ' || bench_tags, "
                   "string_to_array(bench_tags, ' ')) "
                   "FROM bench_docs")
    db.execute_sql("ALTER TABLE docs ENABLE TRIGGER docs_search_insert")
    db.execute_sql("TRUNCATE bench_docs")
    db.execute_sql("ALTER TABLE tags DISABLE TRIGGER tags_search_insert")
    _copy(Tag, tags)
    db.execute_sql("ALTER TABLE tags ENABLE TRIGGER tags_search_insert")


def _number_from(highest: int) -> None:
    """Ids given later start above the ones the load chose."""
    if isinstance(db.obj, PostgresqlDatabase):
        for table in ("users", "docs", "tags", "thumbs"):
            db.execute_sql(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                           f'(SELECT coalesce(max(id), 1) FROM "{table}"))')


# -- timing -------------------------------------------------------------------------------------

def cases(world: World, members: int) -> dict[str, tuple[str, dict[str, str]]]:
    """Name → (method, parameters)."""
    words = world.words
    owner = f"member{max(1, members // 50)}"  # a member with a few hundred docs
    paris = {"lat": str(PARIS[0]), "lng": str(PARIS[1])}
    search = "doc.search"
    return {
        "text, common word": (search, {"text": words[2]}),
        "text, rare word": (search, {"text": words[2500]}),
        "text, two words": (search, {"text": f"{words[12]} {words[40]}"}),
        "text, common, popular": (search, {"text": words[5], "sort": "popular"}),
        "tags (all of 2)": (search, {"tags": f"{words[3]},{words[8]}"}),
        "tags, rare": (search, {"tags": words[1800]}),
        "geo 5 km": (search, paris),
        "geo 30 km, popular": (search, {**paris, "dist": "30000", "sort": "popular"}),
        "geo 5 km + text": (search, {**paris, "text": words[4]}),
        "posted-desc (default)": (search, {}),
        "posted-desc, page 10": (search, {"sort": "posted-desc", "page": "10"}),
        "posted-asc": (search, {"sort": "posted-asc"}),
        "popular": (search, {"sort": "popular"}),
        "created-desc": (search, {"sort": "created-desc"}),
        "created-asc, media": (search, {"sort": "created-asc", "media": "photo,video"}),
        "license 5": (search, {"license": "5"}),
        "media audio": (search, {"media": "audio"}),
        "posted range": (search, {"posted_min": str(BASE_TIME + 60 * 1000),
                                  "posted_max": str(BASE_TIME + 60 * 50_000)}),
        "owner": (search, {"user_id": owner}),
        "owner + text": (search, {"user_id": owner, "text": words[2]}),
        "doc.getList": ("doc.getList", {"user_id": owner}),
        "doc.getList, page 5": ("doc.getList", {"user_id": owner, "page": "5"}),
    }


class _Statements(logging.Handler):
    """Collects the (sql, params) peewee logs at DEBUG for every statement it runs."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: list[tuple[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, tuple) and len(record.msg) == 2:
            self.seen.append(record.msg)


@contextmanager
def statements() -> Iterator[list[tuple[str, Any]]]:
    """Every statement the database runs in the block, with its parameters."""
    logger, handler = logging.getLogger("peewee"), _Statements()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler.seen
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def explain(sql: str, params: Any) -> str:
    """The plan's nodes, one per line, with the index each scan uses and its actual time."""
    postgresql = isinstance(db.obj, PostgresqlDatabase)
    with db.connection_context():
        if not postgresql:
            rows = db.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall()
            return "\n".join(f"      {row[-1]}" for row in rows)
        (plan,) = db.execute_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params).fetchone()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    lines: list[str] = []

    def walk(node: dict[str, Any], depth: int) -> None:
        what = node["Node Type"]
        if "Index Name" in node:
            what += f" using {node['Index Name']}"
        elif "Relation Name" in node:
            what += f" on {node['Relation Name']}"
        lines.append(f"      {'  ' * depth}{what}  ({node['Actual Rows']} rows, "
                     f"{node['Actual Total Time']:.2f} ms)")
        for child in node.get("Plans", []):
            walk(child, depth + 1)

    walk(plan[0]["Plan"], 0)
    return "\n".join(lines)


def run(client: falcon.testing.TestClient, key: str, table: dict[str, tuple[str, dict]],
        repeat: int, show_plans: bool) -> None:
    print(f"{'case':24} {'total':>8} {'median ms':>10} {'p95 ms':>8}")
    for name, (method, params) in table.items():
        query = {"api_key": key, "per_page": "20", **params}
        first = client.simulate_get(f"/api/{method}/json", params=query).json
        if first["api"]["status"] != "ok":
            raise SystemExit(f"{name}: {first['api']}")
        times = []
        for _ in range(repeat):
            begin = time.perf_counter()
            client.simulate_get(f"/api/{method}/json", params=query)
            times.append((time.perf_counter() - begin) * 1000)
        p95 = sorted(times)[max(0, math.ceil(len(times) * 0.95) - 1)]
        print(f"{name:24} {first['docs']['total']:>8} {statistics.median(times):10.2f} "
              f"{p95:8.2f}", flush=True)
        if show_plans:
            with statements() as seen:
                client.simulate_get(f"/api/{method}/json", params=query)
            for sql, params_ in seen:
                if '"docs"' in sql and not sql.startswith("EXPLAIN"):
                    print(f"    {sql[:160]}{'…' if len(sql) > 160 else ''}")
                    print(explain(sql, params_))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="", help="sqlite:///path or postgresql://…; "
                                                 "default: a temporary SQLite file")
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--members", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--reuse", action="store_true", help="time an already filled database")
    parser.add_argument("--explain", action="store_true", help="print each case's query plans")
    parser.add_argument("--only", default="", help="comma list: run only the cases whose name "
                                                   "holds one of these")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{tmp}/bench.sqlite3"
        settings = Settings(data_dir=tmp, database_url=url, access_log=False,
                            ratelimit_per_key="", ratelimit_per_address="")
        ctx = build_context(settings)  # creates or migrates the schema
        client = falcon.testing.TestClient(create_app(settings, ctx=ctx))
        with db.connection_context():
            present = Doc.select().count()
        if not args.reuse:
            if present:
                raise SystemExit(f"{url} already holds {present} docs: use --reuse, or an "
                                 "empty database")
            populate(args.docs, args.members)
        with db.connection_context():
            owner = User.get_or_none(User.username == "bench") or store.add_user(
                "bench", "bench-password")
            key = store.create_key(owner, "bench").key
        backend = "PostgreSQL" if isinstance(db.obj, PostgresqlDatabase) else "SQLite"
        print(f"{backend}, {args.docs} docs, {args.members} members, {args.repeat} calls a case")
        table = cases(World(args.members), args.members)
        wanted = [part.strip() for part in args.only.split(",") if part.strip()]
        if wanted:
            table = {name: case for name, case in table.items()
                     if any(part in name for part in wanted)}
        run(client, key, table, args.repeat, args.explain)
        for worker in ctx.background:
            worker.stop()


if __name__ == "__main__":
    main()
