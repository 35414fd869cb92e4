"""Comment checks: profanity from better-profanity's word list, spam from a small trained model.

better-profanity's own `contains_profanity` compares every word of a text with each of its ~900
listed words and their look-alike spellings one by one: about 3 ms per short comment on an idle
core, too slow for a stream. `ProfanityMatcher` compiles the same list, with the same look-alike
characters (its `CHARS_MAPPING`: `@` or `4` for `a`, `$` for `s`, ...), into one regular
expression; a test checks the two agree.

The spam model is TF-IDF over word and character n-grams with a logistic regression, trained on
the workload's labelled comments (`workload.spam.labelled_comments`); it trains in well under a
second, so every process that checks comments trains its own at start from the same seed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import better_profanity
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

SPAM_THRESHOLD = 0.5
TRAINING_SIZE = 3_000
TRAINING_SEED = 19


class ProfanityMatcher:
    """Whole-word (or phrase) matches of better-profanity's word list, look-alikes included."""

    def __init__(self, words: list[str] | None = None) -> None:
        if words is None:
            path = Path(better_profanity.__file__).with_name("profanity_wordlist.txt")
            words = [w.strip() for w in path.read_text().splitlines() if w.strip()]
        mapping = better_profanity.profanity.CHARS_MAPPING

        def pattern(word: str) -> str:
            parts = []
            for ch in word.lower():
                variants = mapping.get(ch, (ch,))
                parts.append("[" + "".join(re.escape(v) for v in variants) + "]")
            return "".join(parts).replace("[ ]", r"\s+")

        alternation = "|".join(pattern(w) for w in sorted(set(words), key=len, reverse=True))
        self._regex = re.compile(rf"(?<![\w@$*'\"])(?:{alternation})(?![\w@$*'\"])", re.I)

    def __call__(self, text: str) -> bool:
        return self._regex.search(text) is not None


@dataclass(frozen=True)
class CommentVerdict:
    profane: bool
    spam_score: float
    reasons: tuple[str, ...]

    @property
    def flagged(self) -> bool:
        return bool(self.reasons)


def train_spam_model(texts: list[str], labels: list[int]) -> Pipeline:
    features = FeatureUnion(
        [
            ("words", TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True)),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True)),
        ]
    )
    model = Pipeline([("features", features), ("clf", LogisticRegression(C=4.0, max_iter=500))])
    model.fit(texts, labels)
    return model


class CommentChecker:
    """Profanity and spam verdicts for comment texts, one at a time or in bulk."""

    def __init__(self, spam_model: Pipeline, spam_threshold: float = SPAM_THRESHOLD) -> None:
        self.spam_model = spam_model
        self.spam_threshold = spam_threshold
        self.is_profane = ProfanityMatcher()

    @classmethod
    def trained(cls, size: int = TRAINING_SIZE, seed: int = TRAINING_SEED) -> CommentChecker:
        from workload.spam import labelled_comments

        return cls(train_spam_model(*labelled_comments(size, seed=seed)))

    def check_many(self, texts: list[str]) -> list[CommentVerdict]:
        if not texts:
            return []
        scores = self.spam_model.predict_proba(texts)[:, 1].tolist()
        out = []
        for text, score in zip(texts, scores, strict=True):
            profane = self.is_profane(text)
            reasons = []
            if profane:
                reasons.append("profanity")
            if score >= self.spam_threshold:
                reasons.append("spam")
            out.append(CommentVerdict(profane, float(score), tuple(reasons)))
        return out

    def check(self, text: str) -> CommentVerdict:
        return self.check_many([text])[0]


@lru_cache(maxsize=1)
def default_checker() -> CommentChecker:
    return CommentChecker.trained()
