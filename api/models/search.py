"""The full-text index of documents (``doc.search`` ``text``; docs/protocol-choices.md, "Full-text
search"): its structures on each backend, the triggers that keep it in step with titles,
descriptions and keyword tags, and the WHERE clause that asks it.

A doc's searchable text is its title, its description and its keyword tags. Both backends cut it
into words at every character that is not a letter or a digit, fold case, keep accents, and
match whole words (no stemming, no prefixes). One client word that holds punctuation (``e-mail``)
is the phrase of its parts (``e`` then ``mail``).

* SQLite: an FTS5 table ``docs_fts`` (rowid = doc id; columns title, description, tags; the
  ``unicode61`` tokenizer, accents kept), filled by triggers on ``docs`` and ``tags``.
* PostgreSQL: a ``tsvector`` column ``docs.search_vector`` (the ``simple`` configuration: no
  stemming, no stop words) under a GIN index, set by a BEFORE trigger on ``docs`` and by
  statement triggers on ``tags``; beside it, two covering indexes of ``docs`` no model can
  declare (``_COVERING``).

``install`` is what migration 7 runs, and what a fresh schema gets beside the models' tables;
changing it needs a new migration step.
"""

from __future__ import annotations

import operator
import re
from functools import reduce
from typing import Any

from peewee import SQL, Cast, Database, Expression, PostgresqlDatabase, Value, fn

from api.models.docs import Doc

# A token longer than this many UTF-8 bytes is not indexed on PostgreSQL (tsvector's limit): a
# query word holding one matches no doc, on both backends alike (words_of).
MAX_TOKEN_BYTES = 2047
_TOKEN = re.compile(r"[^\W_]+")  # letters and digits; anything else separates words


def words_of(text: str) -> list[str]:
    """The whitespace-separated words of ``text`` that hold a letter or a digit (``"rock &
    roll"`` is ``["rock", "roll"]``), as given: each engine cuts a word into tokens with the
    tokenizer that cut the indexed text (FTS5's unicode61; PostgreSQL's regexp and parser), so a
    word is found on a backend whenever its doc's text holds it there, whatever the script
    (Devanagari or pointed Hebrew, whose combining marks the two treat differently)."""
    return [word for word in text.split() if _TOKEN.search(word)]


def unindexable(word: str) -> bool:
    """Whether ``word`` holds a token PostgreSQL cannot index: no doc can match it there (it
    would drop the token and match the rest of the phrase), so none matches on either backend."""
    return any(len(token.encode()) > MAX_TOKEN_BYTES for token in _TOKEN.findall(word))


def text_match(database: Database, words: list[str], *, indexed: bool = True) -> Expression:
    """Docs whose searchable text holds every word of ``words`` (each from ``words_of``).

    No query syntax can reach either engine: FTS5 gets each word as a double-quoted string (a
    phrase; ``"`` doubled inside, the only character a string gives meaning to), PostgreSQL a
    bound ``phraseto_tsquery`` argument, cut by the same regexp as the indexed text.
    ``indexed`` False (PostgreSQL): checked on each doc the other criteria leave, never through
    the GIN index, whose posting list for a common word costs more than a member's docs."""
    if isinstance(database, PostgresqlDatabase):
        simple = SQL("'simple'::regconfig")
        queries = [fn.phraseto_tsquery(simple, fn.regexp_replace(word, _SEPARATORS, " ", "g"))
                   for word in words]
        # A word PostgreSQL cuts to nothing (its [:alnum:] leaves out ½ or ², which FTS5 indexes)
        # would drop out of the && and match every doc of the other words: it matches none.
        return reduce(operator.and_, [fn.numnode(query) > 0 for query in queries],
                      _vector_match(queries, indexed))
    phrases = " ".join('"' + word.replace('"', '""') + '"' for word in words)
    return Doc.id.in_(SQL("(SELECT rowid FROM docs_fts WHERE docs_fts MATCH ?)", [phrases]))


def keyword_lexeme(norm: str) -> str:
    """PostgreSQL: the lexeme a keyword tag adds to its doc's vector, ``#`` and the hex of its
    normalised UTF-8 (no word lexeme starts with ``#``; 255 characters fit tsvector's limit)."""
    return "#" + norm.encode().hex()


def keywords_match(norms: list[str]) -> Expression:
    """PostgreSQL: docs carrying every keyword tag of ``norms`` (normalised), through the GIN
    index. The lexemes are hex digits after ``#``: nothing in them is tsquery syntax."""
    return _vector_match([Cast(Value(f"'{keyword_lexeme(norm)}'"), "tsquery") for norm in norms],
                         True)


def _vector_match(queries: list[Any], indexed: bool) -> Any:
    query = reduce(lambda a, b: Expression(a, "&&", b), queries)
    # Unqualified: docs is the only table these queries read that has the column.
    match = Expression(SQL("search_vector"), "@@", query)
    return match if indexed else fn.coalesce(match, False)


# -- the structures -----------------------------------------------------------------------------

# What of a doc is indexed, on both backends alike: a tsvector holds at most 1 MB (a longer text
# made doc.set answer 500 and stopped migration 7) and numbers positions up to 16,383 only.
INDEXED_CHARS = 32_768  # of the title, and of the description
INDEXED_KEYWORDS = 200  # keyword tags of a doc, the first ones added
_SEPARATORS = "[^[:alnum:]]+"  # PostgreSQL: what cuts words (FTS5's unicode61 cuts alike)
_KEYWORDS_OF = ("(SELECT coalesce(group_concat(tag, ' '), '') FROM (SELECT tag FROM tags "
                "WHERE tags.doc_id = {id} AND tags.type = 'keyword' ORDER BY tags.id "
                f"LIMIT {INDEXED_KEYWORDS}))")
_CUT = "substr({column}, 1, " + str(INDEXED_CHARS) + ")"

_SQLITE = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS docs_fts USING fts5(title, description, tags, "
    "tokenize = 'unicode61 remove_diacritics 0')",
    "CREATE TRIGGER IF NOT EXISTS docs_fts_insert AFTER INSERT ON docs BEGIN "
    "INSERT INTO docs_fts (rowid, title, description, tags) VALUES (new.id, "
    f"{_CUT.format(column='new.title')}, {_CUT.format(column='new.description')}, "
    f"{_KEYWORDS_OF.format(id='new.id')}); END",
    "CREATE TRIGGER IF NOT EXISTS docs_fts_update AFTER UPDATE OF title, description ON docs "
    "WHEN old.title IS NOT new.title OR old.description IS NOT new.description BEGIN "
    f"UPDATE docs_fts SET title = {_CUT.format(column='new.title')}, "
    f"description = {_CUT.format(column='new.description')} WHERE rowid = new.id; END",
    "CREATE TRIGGER IF NOT EXISTS docs_fts_delete AFTER DELETE ON docs BEGIN "
    "DELETE FROM docs_fts WHERE rowid = old.id; END",
    "CREATE TRIGGER IF NOT EXISTS tags_fts_insert AFTER INSERT ON tags "
    "WHEN new.type = 'keyword' BEGIN "
    f"UPDATE docs_fts SET tags = {_KEYWORDS_OF.format(id='new.doc_id')} "
    "WHERE rowid = new.doc_id; END",
    "CREATE TRIGGER IF NOT EXISTS tags_fts_delete AFTER DELETE ON tags "
    "WHEN old.type = 'keyword' BEGIN "
    f"UPDATE docs_fts SET tags = {_KEYWORDS_OF.format(id='old.doc_id')} "
    "WHERE rowid = old.doc_id; END",
    "CREATE TRIGGER IF NOT EXISTS tags_fts_update AFTER UPDATE ON tags BEGIN "
    f"UPDATE docs_fts SET tags = {_KEYWORDS_OF.format(id='old.doc_id')} "
    "WHERE rowid = old.doc_id; "
    f"UPDATE docs_fts SET tags = {_KEYWORDS_OF.format(id='new.doc_id')} "
    "WHERE rowid = new.doc_id; END",
)

_SQLITE_BACKFILL = (
    "DELETE FROM docs_fts",
    "INSERT INTO docs_fts (rowid, title, description, tags) SELECT docs.id, "
    f"{_CUT.format(column='docs.title')}, {_CUT.format(column='docs.description')}, "
    f"{_KEYWORDS_OF.format(id='docs.id')} FROM docs",
)

# PostgreSQL. ``ipernity_search_vector(words, keywords)`` is the one place text becomes a
# tsvector: every run of characters other than letters and digits becomes a space first, so the
# words are cut where FTS5's unicode61 cuts them (the default parser would also index ``e-mail``
# whole, a host name or a number with a dot as one token); each keyword tag (normalised) adds
# ``keyword_lexeme``, which doc.search's ``tags`` looks up in the same GIN index.
_POSTGRESQL = (
    "ALTER TABLE docs ADD COLUMN IF NOT EXISTS search_vector tsvector",
    "CREATE OR REPLACE FUNCTION ipernity_search_vector(words text, keywords text[]) "
    "RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT to_tsvector("
    f"'simple'::regconfig, regexp_replace(words, '{_SEPARATORS}', ' ', 'g')) || "
    "array_to_tsvector(ARRAY(SELECT '#' || encode(convert_to(k, 'UTF8'), 'hex') "
    "FROM unnest(keywords) AS k)) $$",
    # VOLATILE on purpose: inside a trigger each query then sees what other transactions
    # committed before it, after the row lock was waited for (no tag lost to a race).
    "CREATE OR REPLACE FUNCTION ipernity_doc_vector(doc integer, title text, description text) "
    "RETURNS tsvector LANGUAGE sql VOLATILE AS $$ SELECT ipernity_search_vector("
    f"left(title, {INDEXED_CHARS}) || ' ' || left(description, {INDEXED_CHARS}) || ' ' || "
    "coalesce(string_agg(tag, ' '), ''), coalesce(array_agg(norm), '{}')) FROM (SELECT tag, "
    "norm FROM tags WHERE tags.doc_id = doc AND tags.type = 'keyword' ORDER BY tags.id "
    f"LIMIT {INDEXED_KEYWORDS}) AS keywords $$",
    "CREATE OR REPLACE FUNCTION docs_search_refresh() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN NEW.search_vector := ipernity_doc_vector(NEW.id, NEW.title, NEW.description); "
    "RETURN NEW; END $$",
    # Statement triggers: a bulk insert of tags rewrites each doc's vector once, not per tag.
    "CREATE OR REPLACE FUNCTION tags_search_refresh() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "DECLARE ids integer[]; BEGIN "
    "IF TG_OP = 'UPDATE' THEN "
    "SELECT array_agg(DISTINCT doc_id) INTO ids FROM (SELECT doc_id FROM changed "
    "UNION SELECT doc_id FROM gone) AS both_sides; "
    "ELSE SELECT array_agg(DISTINCT doc_id) INTO ids FROM changed; END IF; "
    "PERFORM 1 FROM docs WHERE id = ANY(ids) ORDER BY id FOR UPDATE; "
    "UPDATE docs SET search_vector = ipernity_doc_vector(id, title, description) "
    "WHERE id = ANY(ids); "
    "RETURN NULL; END $$",
    "DROP TRIGGER IF EXISTS docs_search_insert ON docs",
    "CREATE TRIGGER docs_search_insert BEFORE INSERT ON docs FOR EACH ROW "
    "EXECUTE FUNCTION docs_search_refresh()",
    "DROP TRIGGER IF EXISTS docs_search_update ON docs",
    "CREATE TRIGGER docs_search_update BEFORE UPDATE OF title, description ON docs FOR EACH ROW "
    "WHEN (OLD.title IS DISTINCT FROM NEW.title "
    "OR OLD.description IS DISTINCT FROM NEW.description) "
    "EXECUTE FUNCTION docs_search_refresh()",
    "DROP TRIGGER IF EXISTS tags_search_insert ON tags",
    "CREATE TRIGGER tags_search_insert AFTER INSERT ON tags REFERENCING NEW TABLE AS changed "
    "FOR EACH STATEMENT EXECUTE FUNCTION tags_search_refresh()",
    "DROP TRIGGER IF EXISTS tags_search_delete ON tags",
    "CREATE TRIGGER tags_search_delete AFTER DELETE ON tags REFERENCING OLD TABLE AS changed "
    "FOR EACH STATEMENT EXECUTE FUNCTION tags_search_refresh()",
    "DROP TRIGGER IF EXISTS tags_search_update ON tags",
    "CREATE TRIGGER tags_search_update AFTER UPDATE ON tags "
    "REFERENCING OLD TABLE AS gone NEW TABLE AS changed "
    "FOR EACH STATEMENT EXECUTE FUNCTION tags_search_refresh()",
)

# PostgreSQL covering indexes (INCLUDE, which SQLite lacks), so that what reads many index
# entries for a few rows never visits the table for each (an index-only scan):
# * a radius search (doc.search lat/lng) sorts every doc of its box: the geotagged docs alone,
#   by (lat, lng), carry every column a filter or a sort other than text and tags reads, and the
#   id the page's rows are then fetched by (api/methods/doc/lists.py, ``ids_first``);
# * a member's docs newest first (doc.getList, doc.search user_id): the count of those the
#   caller may see reads the share flags and safety from the index.
_COVERING = (
    "CREATE INDEX IF NOT EXISTS docs_geo_covering ON docs (lat, lng) INCLUDE (id, is_public, "
    "is_family, is_friend, owner_id, safety, media, license, faves, visits, posted_at, created) "
    "WHERE lat IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS docs_owner_covering ON docs (owner_id, posted_at, id) "
    "INCLUDE (is_public, is_family, is_friend, safety, media)",
)

_POSTGRESQL_BACKFILL = (
    "UPDATE docs SET search_vector = ipernity_doc_vector(id, title, description)",
    "CREATE INDEX IF NOT EXISTS docs_search_vector ON docs USING gin (search_vector)",
    *_COVERING,
    # Statistics of the new column at once: the estimated totals (api/methods/doc/lists.py)
    # read them, and autovacuum may not analyse a large table for a while (1,001 for 66,667).
    "ANALYZE docs",
)


def installed(database: Database) -> bool:
    """Whether the full-text structures exist (or the docs table does not)."""
    if not database.table_exists("docs"):
        return True
    if isinstance(database, PostgresqlDatabase):
        return any(c.name == "search_vector" for c in database.get_columns("docs"))
    return database.table_exists("docs_fts")


def install(database: Database) -> None:
    """Create the full-text structures and triggers (each only when missing), then index every
    doc already there (a rebuild: right whatever the index held). Needs ``docs`` and ``tags``."""
    postgresql = isinstance(database, PostgresqlDatabase)
    for sql in (*_POSTGRESQL, *_POSTGRESQL_BACKFILL) if postgresql else (*_SQLITE,
                                                                          *_SQLITE_BACKFILL):
        database.execute_sql(sql)
