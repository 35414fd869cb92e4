"""The ranking: text relevance blended with engagement and recency.

The engine returns up to `CANDIDATES` (or more, for deep pages) best text matches; each is
scored

    score = 0.60 * text + 0.25 * engagement + 0.15 * recency

with every part in [0, 1]:
- text = the engine's relevance (BM25 over caption, hashtags, location and author name, each
  field boosted; a one-typo match counts 0.3 of an exact one) divided by the best among the
  candidates, so the closest text match always scores 1;
- engagement = log(1 + e) / log(1 + max e among the candidates), where e is standing likes +
  comments + shares + saves for a post, followers for a user, posts for a hashtag or location;
- recency = 0.5 ** (age / 72 h) for posts (the time the service answers as), 0 for other kinds,
  whose weight then goes to text and engagement in the same 0.6 : 0.25 proportion.

Text dominates (a post that matches fewer of the words rarely outranks one that matches more),
engagement and recency order the posts that match about equally well. Ties go to the larger id
(the newer entity) so an order is total and pages are stable. `bench/search.py` compares it
with BM25 only and recency only (NDCG@10).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from search.documents import HashtagDoc, LocationDoc, PostDoc, UserDoc
from search.engine import Match

W_TEXT, W_ENGAGEMENT, W_RECENCY = 0.60, 0.25, 0.15
HALF_LIFE_SECONDS = 72 * 3600.0
CANDIDATES = 200


@dataclass(frozen=True)
class Weights:
    text: float = W_TEXT
    engagement: float = W_ENGAGEMENT
    recency: float = W_RECENCY


BLEND = Weights()
BM25_ONLY = Weights(1.0, 0.0, 0.0)
RECENCY_ONLY = Weights(0.0, 0.0, 1.0)


@dataclass(frozen=True)
class Ranked:
    match: Match
    score: float


def engagement_of(match: Match) -> float:
    doc = match.doc
    if isinstance(doc, PostDoc):
        return doc.engagement
    if isinstance(doc, UserDoc):
        return doc.followers
    if isinstance(doc, HashtagDoc | LocationDoc):
        return doc.posts
    return 0.0


def entity_id(match: Match) -> int:
    doc = match.doc
    if isinstance(doc, PostDoc):
        return doc.post_id
    if isinstance(doc, UserDoc):
        return doc.user_id
    if isinstance(doc, LocationDoc):
        return doc.location_id
    return 0


def rank(matches: Sequence[Match], now_ts: float, weights: Weights = BLEND) -> list[Ranked]:
    """`matches` scored and sorted, best first."""
    if not matches:
        return []
    best_text = max(m.text_score for m in matches) or 1.0
    best_engagement = math.log1p(max(max(engagement_of(m) for m in matches), 0.0)) or 1.0
    is_posts = isinstance(matches[0].doc, PostDoc)
    w_text, w_eng, w_rec = weights.text, weights.engagement, weights.recency
    if not is_posts and w_text + w_eng > 0:
        scale = (w_text + w_eng + w_rec) / (w_text + w_eng)
        w_text, w_eng, w_rec = w_text * scale, w_eng * scale, 0.0
    ranked = []
    for m in matches:
        recency = 0.0
        if is_posts and isinstance(m.doc, PostDoc):
            age = max(now_ts - m.doc.created_ts, 0.0)
            recency = 0.5 ** (age / HALF_LIFE_SECONDS)
        score = (
            w_text * (m.text_score / best_text)
            + w_eng * (math.log1p(max(engagement_of(m), 0.0)) / best_engagement)
            + w_rec * recency
        )
        ranked.append(Ranked(m, score))
    ranked.sort(key=lambda r: (-r.score, -entity_id(r.match), r.match.doc.key))
    return ranked
