"""Labelled spam comments: what the comment classifier learns from.

A small, fixed share of generated comments is spam, chosen from the comment id (no draw from
the engagement random stream, so the rest of the workload is unchanged); `labelled_comments`
gives a labelled sample of both classes for training and evaluating a classifier.
"""

from __future__ import annotations

import numpy as np

from workload.vocab import COMMENTS

SPAM_EVERY = 40  # about 2.5% of comments are spam
SPAM_OPENERS = (
    "follow me",
    "check my profile",
    "dm me",
    "click the link in my bio",
    "free followers",
    "earn $500 a day",
    "promo code",
    "win a free iphone",
    "crypto giveaway",
    "cheap likes",
)
SPAM_TAILS = (
    "for a free gift 🎁",
    "now!!!",
    "limited offer",
    "100% real",
    "👉 link in bio",
    "send btc to join",
    "visit bit.ly/deal",
    "dont miss out",
)


def is_spam_comment(comment_id: int) -> bool:
    return comment_id % SPAM_EVERY == 0


def spam_text(key: int) -> str:
    opener = SPAM_OPENERS[key % len(SPAM_OPENERS)]
    tail = SPAM_TAILS[(key // len(SPAM_OPENERS)) % len(SPAM_TAILS)]
    return f"{opener} {tail}"


def labelled_comments(n: int, *, seed: int = 0) -> tuple[list[str], list[int]]:
    """n comments (about a third spam) and their labels (1 = spam), reproducible from seed.

    Ordinary comments are the generator's own vocabulary, sometimes with an @mention or a
    second phrase; spam mixes openers and tails the ordinary ones never use."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        if rng.random() < 1 / 3:
            text = spam_text(int(rng.integers(0, 1 << 30)))
            if rng.random() < 0.3:
                text = f"{COMMENTS[int(rng.integers(len(COMMENTS)))]} {text}"
            texts.append(text)
            labels.append(1)
        else:
            text = COMMENTS[int(rng.integers(len(COMMENTS)))]
            if rng.random() < 0.3:
                text = f"@user{int(rng.integers(1, 9999))} {text}"
            if rng.random() < 0.2:
                text = f"{text} {COMMENTS[int(rng.integers(len(COMMENTS)))]}"
            texts.append(text)
            labels.append(0)
    return texts, labels
