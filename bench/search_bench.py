"""Milliseconds per ``doc.search`` over 10,000 documents, through the whole call pipeline.

    python bench/search_bench.py [--docs 10000] [--repeat 50]

Builds a temporary SQLite database (docs spread over 50 members, ~1/3 placed around Paris, three
keywords each), then times text, tags, geo-radius and sorted searches with falcon's TestClient,
so dispatch, binding, the queries and JSON rendering are all in the figure. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import falcon.testing

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.app import build_context, create_app  # noqa: E402
from api.config import Settings  # noqa: E402
from api.models.docs import Doc, Tag, Thumb  # noqa: E402
from keys import store  # noqa: E402
from keys.db import db  # noqa: E402

WORDS = ("sunset", "beach", "car", "city", "tree", "river", "mountain", "night", "cat", "dog",
         "street", "bridge", "snow", "flower", "portrait", "market", "train", "boat", "sky", "rain")

CASES = {
    "text": {"text": "sunset"},
    "text, two words": {"text": "beach car"},
    "tags (all of 2)": {"tags": "sunset,beach"},
    "geo 5 km": {"lat": "48.8566", "lng": "2.3522"},
    "geo 30 km, popular": {"lat": "48.8566", "lng": "2.3522", "dist": "30000", "sort": "popular"},
    "posted-desc, page 10": {"sort": "posted-desc", "page": "10"},
    "created-asc, media": {"sort": "created-asc", "media": "photo,video"},
    "user + tags": {"user_id": "member7", "tags": "river"},
}


def populate(count: int, rng: random.Random) -> None:
    """``count`` public docs with a 75x thumb and three keyword tags each, inserted in bulk."""
    users = [store.add_user(f"member{i}", "bench-password") for i in range(50)]
    base = 1_600_000_000
    with db.atomic():
        rows = []
        for n in range(count):
            near = n % 3 == 0
            words = rng.sample(WORDS, 3)
            rows.append({
                "owner": users[n % len(users)].id, "media": rng.choice(("photo",) * 9 + ("video",)),
                "title": f"{words[0]} {n}", "description": f"A {words[1]} seen at {n}",
                "created": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(base - n * 3600)),
                "posted_at": base + n * 60, "modified_at": base + n * 60,
                "safety": 1, "license": rng.choice((0, 1, 3)), "faves": rng.randrange(50),
                "visits": rng.randrange(1000), "secret": f"{n:08x}", "original_secret": f"{n:08x}",
                "lat": 48.8566 + rng.uniform(-0.5, 0.5) if near else rng.uniform(-60, 60),
                "lng": 2.3522 + rng.uniform(-0.5, 0.5) if near else rng.uniform(-170, 170)})
        for start in range(0, len(rows), 500):
            Doc.insert_many(rows[start:start + 500]).execute()
        ids = [d.id for d in Doc.select(Doc.id).order_by(Doc.id)]
        thumbs = [{"doc": i, "label": "75x", "w": 75, "h": 75} for i in ids]
        tags = [{"doc": i, "tag": w, "norm": w} for i in ids for w in rng.sample(WORDS, 3)]
        for start in range(0, len(ids), 500):
            Thumb.insert_many(thumbs[start:start + 500]).execute()
        for start in range(0, len(tags), 500):
            Tag.insert_many(tags[start:start + 500]).execute()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=tmp, database_url=f"sqlite:///{tmp}/bench.sqlite3",
                            access_log=False)
        ctx = build_context(settings)
        client = falcon.testing.TestClient(create_app(settings, ctx=ctx))
        started = time.perf_counter()
        populate(args.docs, random.Random(7))
        key = store.create_key(store.add_user("bench", "bench-password"), "bench")
        print(f"{args.docs} docs built in {time.perf_counter() - started:.1f} s")
        for name, params in CASES.items():
            query = {"api_key": key.key, "per_page": "20", **params}
            first = client.simulate_get("/api/doc.search/json", params=query).json
            if first["api"]["status"] != "ok":
                raise SystemExit(f"{name}: {first['api']}")
            times = []
            for _ in range(args.repeat):
                begin = time.perf_counter()
                client.simulate_get("/api/doc.search/json", params=query)
                times.append((time.perf_counter() - begin) * 1000)
            p95 = sorted(times)[int(len(times) * 0.95) - 1]
            print(f"{name:24} total={first['docs']['total']:>6}  "
                  f"median {statistics.median(times):6.2f} ms  p95 {p95:6.2f} ms")
        for worker in ctx.background:
            worker.stop()


if __name__ == "__main__":
    main()
