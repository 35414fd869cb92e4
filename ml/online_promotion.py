"""What the registry does with a finished online experiment's verdict (`experiments/results`).

Offline gates compare models on a holdout; an experiment compares them on the users their own
choices shaped. Once an experiment decides (`experiments.analysis.online_outcome`), this module
acts on the verdict, and records every step as MLflow tags so it can be audited:

- the losing arm's model version is tagged `online.lost` (promotion refuses it later);
- a challenger that beat the CURRENT champion online becomes `champion` if it also passes the
  offline gate against the baseline (the figures its own publication recorded:
  `promotion_candidate_<metric>` vs `promotion_baseline_<metric>` on its run); the old champion
  gets the alias `previous` and the tag `online.demoted`, the winner `online.promoted`.
  A winner that fails the offline gate is not promoted: the champion keeps serving, tagged;
- a champion that lost to the BASELINE arm (`<name>@baseline`, which serving routes to the
  logistic regression the gate measures against) loses the alias: `champion` falls back to the
  newest version that was champion once and has lost nothing (online, or offline against the
  baseline: `promotion.demoted`), else the alias is removed and the baseline serves, flagged
  by the registered model's tag `online.fallback`. A model known worse is never kept.

Each experiment acts once: the registered model's tag `online.applied.<experiment>` records the
decision, and a second run of the asset (whose `@champion` arm now resolves to the winner)
changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from ml.gate import PROMOTION_MARGIN, beats, finite
from ml.registry import CHAMPION, ONLINE_LOSS_TAG, client

BASELINE_ALIAS = "baseline"  # an arm `<name>@baseline` serves the baseline policy, not a version
PREVIOUS = "previous"
ONLINE_PROMOTED_TAG = "online.promoted"
ONLINE_DEMOTED_TAG = "online.demoted"
ONLINE_FALLBACK_TAG = "online.fallback"  # on the registered model: what serves after a demotion
APPLIED_PREFIX = "online.applied."


@dataclass(frozen=True)
class Reference:
    name: str
    version: str | None  # None: the baseline policy
    text: str

    @property
    def baseline(self) -> bool:
        return self.version is None


@dataclass(frozen=True)
class OnlineDecision:
    """`action`: promoted (the winner is champion), kept (the champion serves on), fell_back
    (an older version is champion), baseline (no champion: the baseline serves), recorded (the
    loser was tagged, serving unchanged), already_applied, unknown (a reference the registry
    does not know)."""

    action: str
    reason: str
    champion: str | None = None  # the champion version after the decision
    previous: str | None = None


def resolve(mlflow_client: MlflowClient, model: str) -> Reference | None:
    """`<name>@<alias>` (resolved now) or `<name>/<version>`; `<name>@baseline` is the baseline
    policy. None when the registry does not know it."""
    try:
        if "@" in model:
            name, alias = model.split("@", 1)
            if alias == BASELINE_ALIAS:
                return Reference(name, None, model)
            version = str(mlflow_client.get_model_version_by_alias(name, alias).version)
            return Reference(name, version, model)
        name, _, version = model.rpartition("/")
        mlflow_client.get_model_version(name, version)
        return Reference(name, version, model)
    except MlflowException:
        return None


def offline_gate(
    mlflow_client: MlflowClient,
    name: str,
    version: str,
    margin: float = PROMOTION_MARGIN,
    higher_is_better: bool = True,
) -> tuple[bool, str]:
    """Whether the version beat its baseline offline, from what its promotion decision logged on
    its run (the baseline measured on the same holdout); no recorded figure is a refusal."""
    found = mlflow_client.get_model_version(name, version)
    if found.tags.get(ONLINE_LOSS_TAG):
        return False, f"v{version} lost online: {found.tags[ONLINE_LOSS_TAG]}"
    if found.tags.get("promotion.demoted"):
        return False, f"v{version} was demoted offline: {found.tags['promotion.demoted']}"
    metric = found.tags.get("promotion.metric", "")
    metrics = mlflow_client.get_run(found.run_id).data.metrics if found.run_id else {}
    candidate = metrics.get(f"promotion_candidate_{metric}")
    baseline = metrics.get(f"promotion_baseline_{metric}")
    if not metric or candidate is None or baseline is None or not finite(baseline):
        return False, f"v{version} has no offline {metric or 'figure'} against the baseline"
    label = found.tags.get("promotion.baseline") or "baseline"
    if not beats(candidate, baseline, margin, higher_is_better):
        return False, (
            f"v{version} {metric} {candidate:.5f} does not beat the {label} {baseline:.5f} "
            f"by {margin:.0%} offline"
        )
    return True, f"v{version} {metric} {candidate:.5f} beats the {label} {baseline:.5f} offline"


def _tag(mlflow_client: MlflowClient, name: str, version: str, key: str, value: str) -> None:
    """On the version and on its training run."""
    mlflow_client.set_model_version_tag(name, version, key, value)
    run_id = mlflow_client.get_model_version(name, version).run_id
    if run_id:
        mlflow_client.set_tag(run_id, key, value)


def fallback(mlflow_client: MlflowClient, name: str, excluding: str) -> str | None:
    """The newest version, other than `excluding`, that served as champion once (promoted by the
    gate or online) and has lost nothing since."""
    eligible = []
    for found in mlflow_client.search_model_versions(f"name = '{name}'"):
        tags = found.tags
        version = str(found.version)
        was_champion = tags.get("promotion.promoted") == "true" or ONLINE_PROMOTED_TAG in tags
        lost = any(tags.get(k) for k in (ONLINE_LOSS_TAG, ONLINE_DEMOTED_TAG, "promotion.demoted"))
        if version != excluding and was_champion and not lost:
            eligible.append(int(version))
    return str(max(eligible)) if eligible else None


def apply_outcome(
    tracking_uri: str,
    experiment: str,
    winner_model: str,
    loser_model: str,
    reason: str,
    margin: float = PROMOTION_MARGIN,
) -> OnlineDecision:
    """Act on one finished experiment's verdict (see the module docstring); idempotent."""
    mlflow_client = client(tracking_uri)
    winner, loser = resolve(mlflow_client, winner_model), resolve(mlflow_client, loser_model)
    if loser is None or winner is None:
        unknown = loser_model if loser is None else winner_model
        return OnlineDecision("unknown", f"the registry does not know {unknown!r}")
    name = loser.name
    applied = APPLIED_PREFIX + experiment
    registered = mlflow_client.get_registered_model(name)
    if applied in registered.tags:
        return OnlineDecision("already_applied", registered.tags[applied])
    current = _alias(mlflow_client, name, CHAMPION)
    decision = _decide(mlflow_client, name, winner, loser, current, reason, margin)
    mlflow_client.set_registered_model_tag(name, applied, f"{decision.action}: {decision.reason}")
    return decision


def _decide(
    mlflow_client: MlflowClient,
    name: str,
    winner: Reference,
    loser: Reference,
    current: str | None,
    reason: str,
    margin: float,
) -> OnlineDecision:
    if loser.version is not None:
        _tag(mlflow_client, name, loser.version, ONLINE_LOSS_TAG, reason)
    if loser.version is None or loser.version != current or winner.name != name:
        return OnlineDecision("recorded", reason, current)
    # the serving champion lost
    if winner.version is not None:
        passes, why = offline_gate(mlflow_client, name, winner.version, margin)
        if not passes:
            note = f"v{winner.version} beat champion v{current} online but is not promoted: {why}"
            _tag(mlflow_client, name, current, "online.beaten", f"{note}; {reason}")
            return OnlineDecision("kept", f"{note}; {reason}", current)
        mlflow_client.set_registered_model_alias(name, PREVIOUS, current)
        mlflow_client.set_registered_model_alias(name, CHAMPION, winner.version)
        _tag(
            mlflow_client,
            name,
            current,
            ONLINE_DEMOTED_TAG,
            f"replaced by v{winner.version}: {reason}",
        )
        _tag(
            mlflow_client,
            name,
            winner.version,
            ONLINE_PROMOTED_TAG,
            f"beat champion v{current} online ({reason}); {why}",
        )
        return OnlineDecision(
            "promoted", f"v{winner.version} replaces v{current}: {reason}", winner.version, current
        )
    # the champion lost to the baseline policy: never keep a model known worse
    older = fallback(mlflow_client, name, excluding=current)
    _tag(mlflow_client, name, current, ONLINE_DEMOTED_TAG, f"lost to the baseline: {reason}")
    previous = _alias(mlflow_client, name, PREVIOUS)
    if previous is not None and previous in (current, older):
        mlflow_client.delete_registered_model_alias(name, PREVIOUS)
    if older is not None:
        mlflow_client.set_registered_model_alias(name, CHAMPION, older)
        flag = f"v{older} (newest version that lost nothing) replaces v{current}: {reason}"
        mlflow_client.set_registered_model_tag(name, ONLINE_FALLBACK_TAG, flag)
        return OnlineDecision("fell_back", flag, older)
    mlflow_client.delete_registered_model_alias(name, CHAMPION)
    flag = (
        f"baseline serves: champion v{current} lost to it and no older version qualifies; {reason}"
    )
    mlflow_client.set_registered_model_tag(name, ONLINE_FALLBACK_TAG, flag)
    return OnlineDecision("baseline", flag, None)


def _alias(mlflow_client: MlflowClient, name: str, alias: str) -> str | None:
    try:
        return str(mlflow_client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None
