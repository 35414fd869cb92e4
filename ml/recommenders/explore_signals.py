"""The per-candidate signals Explore's hybrid weighs, and the learned weights over them.

Collaborative signals come from the ALS factors (the viewer's taste for the author, the votes of
users with similar taste); content-based ones from what the viewer engaged with before training:
the authors, hashtags, media types and places of the posts they liked, commented on, saved or
shared; and declared ones (`Declared`): the topics the viewer picked at signup against what the
post is about and what its author picked, and whether they share a country. The declared ones
exist for every user, so they also reach viewers with few engagements (most Explore viewers:
measured, the validation split has ~60-80 positives for ~70 users). Each is a number per (viewer, candidate post); a logistic regression fitted on a
validation split (`SignalWeights.fit`) decides how much each counts, because hand-set weights
were measured to fall below popularity on the generated workload (explore.py's history).

Profiles are sparse viewer x vocabulary matrices built once at training time, so a request costs
a few sparse row lookups and one sparse matrix-vector product over the candidate pool.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

# the order of the columns of `signal rows`; SignalWeights.coef follows it
SIGNALS = (
    "popularity",  # the post's engagements before training, log-scaled (what popularity ranks by)
    "trending",  # its engagements in the last hours before training, log-scaled
    "taste",  # ALS: the viewer's factor . the author's factor (collaborative)
    "neighbours",  # engagements from the viewer's nearest users in factor space (collaborative)
    "author",  # the viewer's past engagements with this author (authors of liked posts)
    "hashtags",  # the share of the viewer's engaged hashtags this post carries
    "media",  # the viewer's share of engagements on this media type (smoothed)
    "location",  # the viewer's share of engagements on posts tagged with this place
    "topics",  # how much of what the post is about (its hashtags' topics) the viewer picked
    "author_topics",  # the share of the viewer's picked topics the author picked too
    "same_country",  # the viewer and the author live in the same country (1/0)
    "author_reach",  # the author's engagements from everyone, log-scaled (fresh posts have none)
    "age",  # log hours since the post was created (freshness, weighed like the rest)
)
CONTENT_COLUMNS = ("media_type", "hashtags", "location_id")
MEDIA_PRIOR = 5.0  # pseudo-engagements at the global media mix: a viewer with 2 likes is not 100%


@dataclass
class Declared:
    """What users and posts say about themselves rather than what anyone did: signup topics
    (index user_id, a 0/1 column per topic), post topics (index post_id, a share per topic, from
    its hashtags at creation: dbt's feat_post__topics) and countries (user_id -> country)."""

    user_topics: pd.DataFrame
    post_topics: pd.DataFrame
    countries: pd.Series

    @classmethod
    def of(
        cls,
        user_topics: pd.DataFrame | None,
        post_topics: pd.DataFrame | None,
        users: pd.DataFrame | None,
    ) -> Declared | None:
        """From `Interactions`' optional frames; None when there are no topics."""
        if user_topics is None or post_topics is None:
            return None
        topics = [t for t in user_topics.columns if t in post_topics.columns]
        countries = (
            users.set_index("user_id")["country"].astype(str)
            if users is not None and len(users)
            else pd.Series(dtype=object)
        )
        return cls(user_topics[topics], post_topics[topics], countries)


def with_content(posts: pd.DataFrame) -> pd.DataFrame:
    """posts with the content columns Explore reads, defaulted when absent (hand-built frames,
    imports without content): no media type, no hashtags, no place."""
    out = posts.copy()
    if "media_type" not in out:
        out["media_type"] = ""
    if "hashtags" not in out:
        out["hashtags"] = [[] for _ in range(len(out))]
    if "location_id" not in out:
        out["location_id"] = 0
    out["media_type"] = out["media_type"].fillna("").astype(str)
    out["location_id"] = out["location_id"].fillna(0).astype(np.int64)
    out["hashtags"] = [list(t) if t is not None else [] for t in out["hashtags"].tolist()]
    return out


def _normalised_rows(matrix: sparse.csr_matrix) -> sparse.csr_matrix:
    totals = np.asarray(matrix.sum(axis=1)).ravel()
    inverse = np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0)
    return sparse.csr_matrix(sparse.diags(inverse) @ matrix)


def _matrix(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple[int, int]):
    return sparse.csr_matrix((values, (rows, cols)), shape=shape)


@dataclass
class ContentProfiles:
    """What each viewer engaged with before training, by author, hashtag, media type and place."""

    viewer_ids: pd.Index
    author_ids: pd.Index
    tags: pd.Index
    media_types: pd.Index
    locations: pd.Index
    by_author: sparse.csr_matrix  # viewers x authors: log1p(engagement weight)
    by_tag: sparse.csr_matrix  # viewers x tags: share of the viewer's tag weight
    by_media: np.ndarray  # viewers x media types: smoothed share
    by_location: sparse.csr_matrix  # viewers x places: share of located engagements
    author_reach: np.ndarray  # per author in author_ids: log1p(engagement weight from everyone)
    declared: Declared | None = None

    @classmethod
    def build(
        cls, engagements: pd.DataFrame, posts: pd.DataFrame, declared: Declared | None = None
    ) -> ContentProfiles:
        """engagements: viewer_id, post_id, author_id, weight (own posts are dropped); posts:
        post_id plus the content columns (defaulted when absent)."""
        own = engagements["viewer_id"] == engagements["author_id"]
        frame = engagements.loc[~own, ["viewer_id", "post_id", "author_id", "weight"]].merge(
            with_content(posts)[["post_id", *CONTENT_COLUMNS]], on="post_id", how="left"
        )
        frame = with_content(frame)
        viewers = pd.Index(np.unique(frame["viewer_id"].to_numpy(np.int64)))
        authors = pd.Index(np.unique(frame["author_id"].to_numpy(np.int64)))
        vrow = viewers.get_indexer(frame["viewer_id"])
        weight = frame["weight"].to_numpy(np.float64)
        arow = authors.get_indexer(frame["author_id"])
        by_author = _matrix(vrow, arow, weight, (len(viewers), len(authors)))
        by_author.data = np.log1p(by_author.data)
        reach = np.log1p(np.bincount(arow, weights=weight, minlength=len(authors)))

        exploded = frame[["hashtags"]].assign(row=vrow, weight=weight).explode("hashtags")
        exploded = exploded.dropna(subset=["hashtags"])
        exploded = exploded[exploded["hashtags"] != ""]
        tags = pd.Index(np.unique(exploded["hashtags"].astype(str).to_numpy()))
        by_tag = _normalised_rows(
            _matrix(
                exploded["row"].to_numpy(np.int64),
                tags.get_indexer(exploded["hashtags"].astype(str)),
                exploded["weight"].to_numpy(np.float64),
                (len(viewers), len(tags)),
            )
        )

        media_types = pd.Index(sorted(set(frame["media_type"]) - {""}))
        located = frame["media_type"] != ""
        counts = np.zeros((len(viewers), len(media_types)))
        np.add.at(
            counts,
            (vrow[located.to_numpy()], media_types.get_indexer(frame.loc[located, "media_type"])),
            weight[located.to_numpy()],
        )
        overall = counts.sum(axis=0) / max(counts.sum(), 1e-9)
        by_media = (counts + MEDIA_PRIOR * overall) / (
            counts.sum(axis=1, keepdims=True) + MEDIA_PRIOR
        )

        placed = frame["location_id"].to_numpy(np.int64) > 0
        locations = pd.Index(np.unique(frame.loc[placed, "location_id"].to_numpy(np.int64)))
        by_location = _normalised_rows(
            _matrix(
                vrow[placed],
                locations.get_indexer(frame.loc[placed, "location_id"]),
                weight[placed],
                (len(viewers), len(locations)),
            )
        )
        return cls(
            viewers, authors, tags, media_types, locations,
            by_author, by_tag, by_media, by_location, reach, declared,
        )  # fmt: skip

    def pool(self, pool: pd.DataFrame) -> PoolContent:
        """The candidate pool's posts coded against these profiles' vocabularies."""
        pool = with_content(pool)
        exploded = pool[["hashtags"]].assign(row=np.arange(len(pool))).explode("hashtags")
        exploded = exploded.dropna(subset=["hashtags"])
        codes = self.tags.get_indexer(exploded["hashtags"].astype(str))
        known = codes >= 0
        tags = _matrix(
            exploded["row"].to_numpy(np.int64)[known],
            codes[known],
            np.ones(int(known.sum())),
            (len(pool), len(self.tags)),
        )
        tags.data[:] = 1.0  # a tag repeated on one post counts once
        author_codes = self.author_ids.get_indexer(pool["author_id"].to_numpy(np.int64))
        reach = np.where(author_codes >= 0, self.author_reach[np.maximum(author_codes, 0)], 0.0)
        authors = pool["author_id"].to_numpy(np.int64)
        post_topics = author_topics = None
        author_country = np.full(len(pool), "", dtype=object)
        if self.declared is not None:
            d = self.declared
            ids = pool["post_id"].to_numpy(np.int64)
            post_topics = d.post_topics.reindex(ids).fillna(0.0).to_numpy(np.float64)
            author_topics = d.user_topics.reindex(authors).fillna(0.0).to_numpy(np.float64)
            author_country = d.countries.reindex(authors).fillna("").to_numpy(dtype=object)
        return PoolContent(
            author_codes,
            tags,
            self.media_types.get_indexer(pool["media_type"]),
            self.locations.get_indexer(pool["location_id"].to_numpy(np.int64)),
            reach / (reach.max() or 1.0) if len(reach) else reach,
            post_topics,
            author_topics,
            author_country,
        )

    def viewer_signals(self, viewer_id: int, content: PoolContent) -> np.ndarray:
        """pool x 7: author, hashtags, media, location (zeros if the viewer never engaged),
        topics, author topics, same country (zeros if nothing was declared)."""
        out = np.zeros((len(content.author_codes), 7))
        if self.declared is not None and content.post_topics is not None:
            picked = self.declared.user_topics.reindex([viewer_id]).fillna(0.0).to_numpy()[0]
            out[:, 4] = content.post_topics @ picked
            if content.author_topics is not None and picked.sum() > 0:
                out[:, 5] = (content.author_topics @ picked) / picked.sum()
            country = self.declared.countries.get(viewer_id, "")
            if country:
                out[:, 6] = content.author_country == country
        row = self.viewer_ids.get_indexer([viewer_id])[0]
        if row < 0:
            return out
        authors = self.by_author.getrow(row).toarray().ravel()
        known = content.author_codes >= 0
        out[known, 0] = authors[content.author_codes[known]]
        out[:, 1] = content.tags @ self.by_tag.getrow(row).toarray().ravel()
        media = content.media_codes >= 0
        out[media, 2] = self.by_media[row, content.media_codes[media]]
        places = self.by_location.getrow(row).toarray().ravel()
        placed = content.location_codes >= 0
        out[placed, 3] = places[content.location_codes[placed]]
        return out

    def save(self, directory: Path, posts: np.ndarray | None = None) -> None:
        """`posts`: keep the topics of these posts only (the pool's: every post ever is too
        many to ship with a model)."""
        directory.mkdir(parents=True, exist_ok=True)
        for name in ("by_author", "by_tag", "by_location"):
            sparse.save_npz(directory / f"{name}.npz", getattr(self, name))
        np.save(directory / "by_media.npy", self.by_media)
        np.save(directory / "author_reach.npy", self.author_reach)
        np.save(directory / "viewer_ids.npy", self.viewer_ids.to_numpy(np.int64))
        np.save(directory / "author_ids.npy", self.author_ids.to_numpy(np.int64))
        np.save(directory / "locations.npy", self.locations.to_numpy(np.int64))
        vocab = {"tags": self.tags.tolist(), "media_types": self.media_types.tolist()}
        (directory / "vocab.json").write_text(json.dumps(vocab))
        if self.declared is not None:
            self.declared.user_topics.to_parquet(directory / "user_topics.parquet")
            post_topics = self.declared.post_topics
            if posts is not None:
                post_topics = post_topics[post_topics.index.isin(posts)]
            post_topics.to_parquet(directory / "post_topics.parquet")
            self.declared.countries.rename("country").to_frame().to_parquet(
                directory / "countries.parquet"
            )

    @classmethod
    def load(cls, directory: Path) -> ContentProfiles:
        vocab = json.loads((directory / "vocab.json").read_text())
        declared = None
        if (directory / "user_topics.parquet").exists():
            declared = Declared(
                pd.read_parquet(directory / "user_topics.parquet"),
                pd.read_parquet(directory / "post_topics.parquet"),
                pd.read_parquet(directory / "countries.parquet")["country"],
            )
        return cls(
            pd.Index(np.load(directory / "viewer_ids.npy")),
            pd.Index(np.load(directory / "author_ids.npy")),
            pd.Index(vocab["tags"], dtype=object),
            pd.Index(vocab["media_types"], dtype=object),
            pd.Index(np.load(directory / "locations.npy")),
            sparse.csr_matrix(sparse.load_npz(directory / "by_author.npz")),
            sparse.csr_matrix(sparse.load_npz(directory / "by_tag.npz")),
            np.load(directory / "by_media.npy"),
            sparse.csr_matrix(sparse.load_npz(directory / "by_location.npz")),
            np.load(directory / "author_reach.npy"),
            declared,
        )


@dataclass
class PoolContent:
    """The pool's posts as codes into the profiles' vocabularies (-1: unknown)."""

    author_codes: np.ndarray
    tags: sparse.csr_matrix  # pool x tags, binary
    media_codes: np.ndarray
    location_codes: np.ndarray
    author_reach: np.ndarray  # per pool post, scaled to [0, 1]
    post_topics: np.ndarray | None = None  # pool x topics: what each post is about
    author_topics: np.ndarray | None = None  # pool x topics: what each post's author picked
    author_country: np.ndarray | None = None  # per pool post: its author's country ("": unknown)


@dataclass
class SignalWeights:
    """A logistic regression over standardised SIGNALS: the hybrid's ranking score."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    rows: int = 0  # the validation rows it was fitted on (0: not fitted from data)
    positives: int = 0
    # NDCG@10 on the validation users, each fold scored by a fit on the other folds, beside
    # popularity's on the same users: what decided between these weights and popularity alone
    validation_ndcg: float = float("nan")
    validation_popularity_ndcg: float = float("nan")

    def score(self, signals: np.ndarray) -> np.ndarray:
        return np.asarray(((signals - self.mean) / self.scale) @ self.coef + self.intercept)

    def weights(self) -> dict[str, float]:
        return {name: float(w) for name, w in zip(SIGNALS, self.coef, strict=True)}

    @classmethod
    def fit(cls, signals: np.ndarray, labels: np.ndarray, c: float = 0.01) -> SignalWeights:
        """`c`: sklearn's inverse L2 strength. Strong (0.01) because the validation split holds
        few positives (~60-80 on 1,000 users x 3 days): at C=1 the weights fitted its noise
        (in-sample NDCG@10 1.5-1.6x popularity, 0.6-0.7x on the holdout after it; seeds 7 and 11)."""
        from sklearn.linear_model import LogisticRegression

        mean = signals.mean(axis=0)
        scale = signals.std(axis=0)
        scale[scale == 0] = 1.0
        model = LogisticRegression(C=c, max_iter=1000)
        model.fit((signals - mean) / scale, labels)
        return cls(
            mean, scale, model.coef_[0].copy(), float(model.intercept_[0]),
            len(labels), int(labels.sum()),
        )  # fmt: skip

    @classmethod
    def popularity_only(cls) -> SignalWeights:
        """Weights that rank by popularity alone: what the fit falls back to when the learned
        weights ranked worse than popularity on the validation users they were not fitted on."""
        coef = np.zeros(len(SIGNALS))
        coef[SIGNALS.index("popularity")] = 1.0
        return cls(np.zeros(len(SIGNALS)), np.ones(len(SIGNALS)), coef, 0.0)

    def to_json(self) -> dict[str, object]:
        return {
            "signals": list(SIGNALS),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
            "rows": self.rows,
            "positives": self.positives,
            "validation_ndcg": self.validation_ndcg,
            "validation_popularity_ndcg": self.validation_popularity_ndcg,
        }

    @classmethod
    def from_json(cls, data: dict) -> SignalWeights:
        if list(data["signals"]) != list(SIGNALS):
            raise ValueError(f"weights for signals {data['signals']}, this code has {SIGNALS}")
        return cls(
            np.asarray(data["mean"]),
            np.asarray(data["scale"]),
            np.asarray(data["coef"]),
            float(data["intercept"]),
            int(data.get("rows", 0)),
            int(data.get("positives", 0)),
            float(data.get("validation_ndcg", float("nan"))),
            float(data.get("validation_popularity_ndcg", float("nan"))),
        )
