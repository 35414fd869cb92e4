"""User text -> the words to look for: safe literal matching, never an engine query language.

The text a user types is never handed to a query parser: `"`, `:`, `*`, `~`, parentheses and
every other punctuation only separate words, so any input is either a list of words or a clear
4xx (`QueryError`), never an engine error. Words are cut the way tantivy's `default` tokenizer
cuts indexed text (runs of letters and digits, lower-cased, longer than 40 characters dropped),
so a looked-for word is exactly a term the index can hold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_QUERY_CHARS = 256
MAX_TERMS = 16  # more words add cost, never precision
MAX_TOKEN_CHARS = 40  # tantivy's RemoveLongFilter limit on indexed tokens
_WORD = re.compile(r"[^\W_]+")  # letters and digits, as tantivy's SimpleTokenizer


class QueryError(ValueError):
    """A query that cannot be answered: the message says why (the API turns it into a 422)."""


@dataclass(frozen=True)
class ParsedQuery:
    text: str
    terms: tuple[str, ...]  # every word, lower-cased, in order, without duplicates
    hashtags: tuple[str, ...]  # words written as #tag (a subset of terms)
    mentions: tuple[str, ...]  # words written as @name (a subset of terms)


def tokenize(text: str) -> list[str]:
    """The terms tantivy's default tokenizer makes of `text` (for documents and queries)."""
    return [t for t in (m.lower() for m in _WORD.findall(text)) if len(t) <= MAX_TOKEN_CHARS]


def parse_query(text: str) -> ParsedQuery:
    """Words of `text`; `#word` and `@word` are remembered to weigh hashtags and usernames."""
    if text is None or not text.strip():
        raise QueryError("q is empty: type at least one word")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"q is longer than {MAX_QUERY_CHARS} characters")
    terms = list(dict.fromkeys(tokenize(text)))
    if not terms:
        raise QueryError("q has no letters or digits to search for")
    hashtags = [t for t in dict.fromkeys(tokenize(" ".join(re.findall(r"#([^\W_]+)", text))))]
    mentions = [t for t in dict.fromkeys(tokenize(" ".join(re.findall(r"@([^\W_]+)", text))))]
    return ParsedQuery(text, tuple(terms[:MAX_TERMS]), tuple(hashtags), tuple(mentions))
