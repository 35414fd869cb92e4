"""Who to follow and Explore in Dagster: train (Spark ALS) -> evaluate against popularity ->
register in MLflow -> promote `champion` only when better on the same holdout.

Each asset reads the current follow graph, blocks, mutes, engagements and posts from the dbt
models, closes its ClickHouse client before Spark starts, and leaves the model where serving
loads it: the MLflow registry and `<data_dir>/models/<name>/` (`champion.json` names the
champion's directory).
"""

import base64

import dagster as dg

from appconfig import get_settings
from ml.recommenders.data import Interactions, load_interactions
from ml.recommenders.explore import Explore, ExploreParams
from ml.recommenders.factors import RECOMMENDER_ALS, AlsParams
from ml.recommenders.pipeline import RecommenderRun, explore_run, who_to_follow_run
from ml.recommenders.publish import EXPLORE, WHO_TO_FOLLOW, load_champion, publish_recommender
from ml.recommenders.who_to_follow import WhoToFollowParams
from ml.registry import TrainingLineage
from ml.spark import spark_for_one_job
from orchestration.analytics.lineage import reading_models
from orchestration.models.resources import MlflowResource
from orchestration.resources import ClickHouseResource
from orchestration.skipping import skipped
from visibility import VisibilityGraph

WHO_TO_FOLLOW_KEY = dg.AssetKey(["models", "who_to_follow"])
EXPLORE_KEY = dg.AssetKey(["models", "explore"])
# the dbt models both recommenders read (_read_marts): their asset keys come from the manifest
# when the domain's definitions are built (`assets()`)
SOURCE_MODELS = (
    "int_follow_graph",
    "int_blocks",
    "int_mutes",
    "dim_users",
    "fct_engagements",
    "dim_posts",
    "feat_user__topics",  # Explore's declared signals: signup topics x what a post is about
    "feat_post__topics",
)


# the configs' defaults are the recommenders' own (one place for each number)
_ALS = RECOMMENDER_ALS
_WHO_TO_FOLLOW = WhoToFollowParams()
_EXPLORE = ExploreParams()


class AlsConfig(dg.Config):
    rank: int = _ALS.rank
    max_iter: int = _ALS.max_iter
    reg: float = _ALS.reg
    alpha: float = _ALS.alpha
    seed: int = _ALS.seed
    k: int = 10

    def als(self) -> AlsParams:
        return AlsParams(self.rank, self.max_iter, self.reg, self.alpha, True, self.seed)


class WhoToFollowConfig(AlsConfig):
    k: int = 20  # Recall@20 / NDCG@20, as issue 14 measures who to follow
    learned: bool = _WHO_TO_FOLLOW.learned  # logistic regression over graph features (else blend)
    fof_weight: float = _WHO_TO_FOLLOW.fof_weight
    engagement_weight: float = _WHO_TO_FOLLOW.engagement_weight
    popularity_weight: float = _WHO_TO_FOLLOW.popularity_weight


class ExploreConfig(AlsConfig):
    window_hours: float = _EXPLORE.window_hours
    neighbours: int = _EXPLORE.neighbours
    taste_weight: float = _EXPLORE.taste_weight
    neighbour_weight: float = _EXPLORE.neighbour_weight
    popularity_weight: float = _EXPLORE.popularity_weight
    hybrid: bool = _EXPLORE.hybrid  # learned weights over collaborative + content signals
    max_per_author: int = _EXPLORE.max_per_author  # diversity cap per page
    max_age_hours: float = _EXPLORE.max_age_hours  # freshness: never older at request time


def _read_marts(clickhouse: ClickHouseResource) -> tuple:
    """Interactions and the visibility graph; the client is closed before Spark starts."""
    settings = get_settings()
    with clickhouse.client() as client:
        interactions = load_interactions(client, settings)
        visibility = VisibilityGraph.from_clickhouse(client, settings)
    return interactions, visibility


def _who_to_follow_gap(interactions: Interactions) -> str | None:
    """Why who to follow cannot be trained (None when it can): it needs some follows to hold
    out, i.e. users following at least three accounts (`time_holdout`)."""
    follows = interactions.follows
    if follows.empty:
        return "int_follow_graph is empty: no follows to learn from (run build_analytics first)"
    per_user = follows.groupby("follower_id").size()
    if int((per_user >= 3).sum()) == 0:
        return (
            f"no user follows three accounts or more among {len(follows):,} follows: nothing "
            "to hold out and evaluate against popularity"
        )
    return None


def _publish(
    context: dg.AssetExecutionContext, run: RecommenderRun, mlflow: MlflowResource, source: str
) -> dg.MaterializeResult:
    settings = get_settings()
    models_dir = settings.data_dir / "models"
    context.log.info(f"{run.name} on the holdout: {run.metrics}")
    published = publish_recommender(
        run.model,
        name=run.name,
        tracking_uri=mlflow.uri(),
        models_dir=models_dir,
        metrics={f"holdout_{k}": v for k, v in run.metrics.items()},
        params=run.params,
        evaluate=run.holdout_ndcg,
        lineage=TrainingLineage("dbt-marts", settings.analytics_schema, source),
        baseline=run.baseline_ndcg,
        metric_name=f"holdout_ndcg_at_{run.params['k']}",
        artifact_location=mlflow.artifact_location(run.name),
        run_name=f"{run.name} {context.run.run_id[:8]}",
        json_artifacts={"evaluation/details.json": run.details},
    )
    decision = published.decision
    context.log.info(f"promotion: {decision.reason}")
    k = int(run.params["k"])
    metadata: dict[str, object] = {
        "model": f"{run.name}/{published.version}",
        "kind": getattr(run.model, "kind", run.name),
        "promoted": decision.promoted,
        "promotion_reason": decision.reason,
        "serving": decision.serving,
        "champion_version_before": decision.champion_version or "",
        "candidate_holdout_ndcg": round(decision.candidate, 4),
        "mlflow_run_id": published.run.run_id,
        "local_path": dg.MetadataValue.path(str(published.local_dir)),
        f"recall_at_{k}": round(run.metrics[f"recall_at_{k}"], 4),
        f"ndcg_at_{k}": round(run.metrics[f"ndcg_at_{k}"], 4),
        f"popularity_recall_at_{k}": round(run.metrics[f"popularity_recall_at_{k}"], 4),
        f"popularity_ndcg_at_{k}": round(run.metrics[f"popularity_ndcg_at_{k}"], 4),
        "evaluated_users": int(run.metrics["evaluated_users"]),
        "plot_recall_ndcg_vs_popularity": dg.MetadataValue.md(
            "![recall and NDCG vs popularity](data:image/png;base64,"
            f"{base64.b64encode(published.plot_png).decode()})"
        ),
    }
    for key in (f"collaborative_ndcg_at_{k}", f"collaborative_recall_at_{k}"):
        if key in run.metrics:
            metadata[key] = round(run.metrics[key], 4)
    weights = {k[7:]: round(v, 4) for k, v in run.metrics.items() if k.startswith("weight_")}
    if weights:
        metadata["learned_signal_weights"] = dg.MetadataValue.json(weights)
    if decision.champion is not None:
        metadata["champion_holdout_ndcg"] = round(decision.champion, 4)
    if decision.baseline is not None:
        metadata["baseline_holdout_ndcg"] = round(decision.baseline, 4)
    return dg.MaterializeResult(metadata=metadata)  # type: ignore[arg-type]


@dg.asset(
    key=WHO_TO_FOLLOW_KEY,
    group_name="models",
    kinds={"spark", "mlflow"},
    pool="clickhouse",
    description="Who to follow: Spark ALS on the follow graph (+ engagements) blended with "
    "friends-of-friends and a popularity prior; Recall/NDCG@k on each user's latest follows vs "
    "popularity; registered as `who-to-follow`, `champion` moves only when NDCG is better.",
)
def who_to_follow(
    context: dg.AssetExecutionContext,
    config: WhoToFollowConfig,
    clickhouse: ClickHouseResource,
    mlflow: MlflowResource,
) -> dg.MaterializeResult:
    interactions, visibility = _read_marts(clickhouse)
    gap = _who_to_follow_gap(interactions)
    if gap is not None:
        return skipped(context, gap)
    context.log.info(
        f"training on {len(interactions.follows)} follows and "
        f"{len(interactions.engagements)} engagements; {visibility!r}"
    )
    params = WhoToFollowParams(
        config.als(),
        config.fof_weight,
        config.engagement_weight,
        config.popularity_weight,
        learned=config.learned,
    )
    with spark_for_one_job() as spark:
        run = who_to_follow_run(spark, interactions, visibility, params, config.k)
    source = f"{get_settings().intermediate_database}.int_follow_graph"
    return _publish(context, run, mlflow, source)


@dg.asset(
    key=EXPLORE_KEY,
    group_name="models",
    kinds={"spark", "mlflow"},
    pool="clickhouse",
    description="Explore: recent posts from outside a user's follows, ranked by a logistic "
    "regression (fitted on a validation split) over collaborative signals (ALS taste, nearest "
    "users' engagements) and content ones (authors, hashtags, media types, places the user "
    "engaged with), declared ones (signup topics against post topics and the author's, same "
    "country), popularity and age; weights that rank unseen validation users below popularity "
    "are replaced by popularity alone; at most k posts per author, none too old. NDCG@k on "
    "held-out engagements vs popularity and the collaborative-only blend; registered as "
    "`explore`, `champion` moves only when it beats the champion and popularity.",
)
def explore(
    context: dg.AssetExecutionContext,
    config: ExploreConfig,
    clickhouse: ClickHouseResource,
    mlflow: MlflowResource,
) -> dg.MaterializeResult:
    interactions, visibility = _read_marts(clickhouse)
    gap = interactions.explore_gap()
    if gap is not None:
        return skipped(context, gap)
    context.log.info(f"training on {len(interactions.engagements)} engagements; {visibility!r}")
    params = ExploreParams(
        config.als(),
        config.window_hours,
        config.neighbours,
        config.taste_weight,
        config.neighbour_weight,
        config.popularity_weight,
        hybrid=config.hybrid,
        max_per_author=config.max_per_author,
        max_age_hours=config.max_age_hours,
    )
    with spark_for_one_job() as spark:
        run = explore_run(spark, interactions, visibility, params, config.k)
    source = f"{get_settings().marts_database}.fct_engagements"
    return _publish(context, run, mlflow, source)


class NoChampion(LookupError):
    """The model has no champion to check yet."""


class PrivacyCheckConfig(dg.Config):
    users: int = 300  # viewers sampled (the most connected first: the most to leak)
    k: int = 30


def _privacy_violations(
    name: str, clickhouse: ClickHouseResource, config: PrivacyCheckConfig
) -> tuple[list[dict[str, int]], int, int, str]:
    """Ask the champion for every sampled viewer against the marts' current graph and count
    what the rules forbid; returns (violations, viewers asked, items checked, version)."""
    settings = get_settings()
    with clickhouse.client() as client:
        graph = VisibilityGraph.from_clickhouse(client, settings)
    try:
        model, version = load_champion(name, graph, models_dir=settings.data_dir / "models")
    except LookupError as error:  # only the champion lookup: a KeyError below is a finding
        raise NoChampion(str(error)) from error
    viewers = sorted(graph.viewers(), key=lambda v: -len(graph.follows(v)))[: config.users]
    violations: list[dict[str, int]] = []
    checked = 0
    author_of: dict[int, int] = {}
    if isinstance(model, Explore):
        author_of = dict(
            zip(model.pool["post_id"].tolist(), model.pool["author_id"].tolist(), strict=True)
        )
    for viewer in viewers:
        if isinstance(model, Explore):
            for post, _ in model.recommend(viewer, config.k):
                checked += 1
                author = author_of.get(post)
                if (
                    author is None  # a post outside the model's pool: unexplained, a violation
                    or not graph.can_see_post(viewer, post, author)
                    or author == viewer
                    or graph.is_following(viewer, author)
                ):
                    violations.append(
                        {"viewer": viewer, "post": post, "author": -1 if author is None else author}
                    )
        else:
            for candidate, _ in model.recommend(viewer, config.k):
                checked += 1
                if not graph.can_suggest(viewer, candidate):
                    violations.append({"viewer": viewer, "candidate": candidate})
    return violations, len(viewers), checked, version


def _privacy_check(
    name: str, clickhouse: ClickHouseResource, config: PrivacyCheckConfig
) -> dg.AssetCheckResult:
    """Fails unless something was checked: no champion, or no viewer asked, proves nothing."""
    try:
        violations, viewers, checked, version = _privacy_violations(name, clickhouse, config)
    except NoChampion as error:
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"note": f"nothing checked, no champion: {error}", "items_checked": 0},
        )
    return dg.AssetCheckResult(
        passed=checked > 0 and not violations,
        metadata={
            "champion_version": version,
            "viewers": viewers,
            "items_checked": checked,
            "violations": len(violations),
            "first_violations": dg.MetadataValue.json(violations[:20]),
        },
    )


@dg.asset_check(
    asset=WHO_TO_FOLLOW_KEY,
    name="suggestions_respect_visibility",
    description="The champion's suggestions for the most connected users, against the current "
    "marts: never the user, someone they follow, or anyone blocked, blocking or muted.",
)
def suggestions_respect_visibility(
    config: PrivacyCheckConfig, clickhouse: ClickHouseResource
) -> dg.AssetCheckResult:
    return _privacy_check(WHO_TO_FOLLOW, clickhouse, config)


@dg.asset_check(
    asset=EXPLORE_KEY,
    name="explore_respects_visibility",
    description="The champion's Explore posts for the most connected users, against the current "
    "marts: never deleted, hidden, private-unfollowed, followed or own posts.",
)
def explore_respects_visibility(
    config: PrivacyCheckConfig, clickhouse: ClickHouseResource
) -> dg.AssetCheckResult:
    return _privacy_check(EXPLORE, clickhouse, config)


def assets() -> list[dg.AssetsDefinition]:
    """Both recommenders, downstream of the dbt models they read."""
    return [reading_models(asset, *SOURCE_MODELS) for asset in (who_to_follow, explore)]


CHECKS = [suggestions_respect_visibility, explore_respects_visibility]
__all__ = ["CHECKS", "EXPLORE", "WHO_TO_FOLLOW", "assets"]
