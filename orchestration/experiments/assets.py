"""`experiments/results`: per experiment of EXPERIMENTS_DIR, the analysis of
`experiments.analysis` (delta-method CIs of each metric, sample-ratio check, decision) over the
impressions its arms served, read from the marts. Two arms are compared, the config's first
(control) against its second. An interleaving experiment gets the team-draft sign test over
its sessions instead (each impression names the arm that placed the item)."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
from clickhouse_connect.driver.client import Client

from appconfig import Settings, get_settings
from experiments import Experiment, ExperimentRegistry
from experiments.analysis import (
    Outcome,
    Result,
    analyse,
    analyse_interleaving,
    interleaving_decision,
    online_outcome,
)
from ml.online_promotion import apply_outcome
from ml.tracking import tracking_uri
from orchestration.resources import ClickHouseResource

EXPERIMENT_RESULTS = dg.AssetKey(["experiments", "results"])
SOURCE_MODELS = ("fct_experiment_arms", "fct_training_impressions")  # dbt models it reads


def experiment_impressions(client: Client, settings: Settings, name: str) -> pd.DataFrame:
    """One row per impression of the experiment: arm, user_id, session_id, position, engaged
    (the label of fct_training_impressions, as in fct_experiment_arms)."""
    return client.query_df(
        f"""
        select
            views.arm as arm,
            impressions.viewer_id as user_id,
            toString(ifNull(views.request_id, impressions.impression_id)) as session_id,
            impressions.position as position,
            impressions.is_engaged as engaged
        from {settings.staging_database}.stg_raw__views as views
        inner join {settings.marts_database}.fct_training_impressions as impressions
            on impressions.impression_id = views.event_id
        where views.experiment = %(name)s
        """,
        parameters={"name": name},
    )


def result_of(experiment: Experiment, impressions: pd.DataFrame) -> Result | None:
    if impressions.empty:
        return None
    control, treatment = experiment.arms[0].name, experiment.arms[1].name
    shares = {arm.name: arm.share for arm in experiment.arms}
    return analyse(impressions, shares, control, treatment)


def markdown(result: Result) -> str:
    rows = [
        "| metric | control | treatment | difference | 95% CI | lift |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for c in result.comparisons.values():
        rows.append(
            f"| {c.metric} | {c.control:.4f} | {c.treatment:.4f} | {c.difference:+.4f} | "
            f"[{c.low:+.4f}, {c.high:+.4f}] | {c.lift:+.1%} |"
        )
    return "\n".join(rows)


def judge(
    experiment: Experiment, impressions: pd.DataFrame, now: datetime
) -> tuple[dict[str, Any], Outcome | None]:
    """The asset's metadata for one experiment, and its verdict (None unless the experiment is
    finished and one arm won significantly: see `online_outcome`)."""
    name = experiment.name
    if impressions.empty:
        return {f"{name}/decision": "no impressions yet"}, None
    if experiment.interleaved:
        first, second = experiment.arms[0].name, experiment.arms[1].name
        found = analyse_interleaving(impressions, first, second)
        metadata: dict[str, Any] = {
            f"{name}/decision": interleaving_decision(found, first, second),
            f"{name}/sessions_won": {first: found.wins_a, second: found.wins_b, "ties": found.ties},
            f"{name}/sign_test_p_value": round(found.p_value, 6),
        }
        return metadata, online_outcome(experiment, now, interleaved=found)
    result = result_of(experiment, impressions)
    assert result is not None
    metadata = {
        f"{name}/decision": result.decision,
        f"{name}/users": result.users,
        f"{name}/srm_p_value": round(result.srm_p_value, 6),
        f"{name}/comparisons": dg.MetadataValue.md(markdown(result)),
    }
    return metadata, online_outcome(experiment, now, result=result)


@dg.asset(
    key=EXPERIMENT_RESULTS,
    group_name="experiments",
    owners=["team:experimentation"],
    kinds={"python"},
    pool="clickhouse",
    description="Each experiment's verdict: per arm engagement per impression and per session, "
    "sessions per user and position-weighted engagement, the treatment-minus-control "
    "difference with a 95% delta-method CI (users are the unit), the sample-ratio-mismatch "
    "p-value and the decision (ship / keep / no difference / invalid); the team-draft sign test "
    "for interleaving experiments. A finished experiment's verdict acts on the model registry: "
    "the loser is tagged so that promotion refuses it, a challenger that beat the champion "
    "(and passes the offline gate against the baseline) becomes champion, the old one "
    "`previous`, and a champion that lost to the baseline arm falls back to the newest version "
    "that lost nothing, else to the baseline.",
)
def experiment_results(
    context: dg.AssetExecutionContext, clickhouse: ClickHouseResource
) -> dg.MaterializeResult:
    settings = get_settings()
    registry = ExperimentRegistry(Path(settings.experiments_dir))
    metadata: dict[str, Any] = {"refused_configs": dict(registry.errors)}
    now = datetime.now(UTC)
    with clickhouse.client() as client:
        for name, experiment in sorted(registry.experiments.items()):
            impressions = experiment_impressions(client, settings, name)
            found, outcome = judge(experiment, impressions, now)
            metadata.update(found)
            context.log.info(f"{name}: {found[f'{name}/decision']}")
            if outcome is not None:
                decided = apply_outcome(
                    tracking_uri(settings),
                    name,
                    outcome.winner.model,
                    outcome.loser.model,
                    outcome.reason,
                )
                metadata[f"{name}/registry"] = f"{decided.action}: {decided.reason}"
                if decided.action not in ("unknown", "already_applied"):
                    metadata[f"{name}/champion_after"] = decided.champion or "baseline"
                context.log.warning(f"{name}: registry {decided.action}: {decided.reason}")
    return dg.MaterializeResult(metadata=metadata)
