"""The feed ranker: data splits, preprocessing, the Keras model, baselines, evaluation, the
serving scorer (`ml.ranking.scorer.RankerScorer`) and its MLflow publication."""

MODEL_NAME = "feed-ranker"  # the registered model name
BASELINE_ALIAS = "baseline"  # the version whose logistic regression serves without a champion


def baseline_version(name: str, version: str) -> str:
    """How serving names the logistic regression baseline of a registered version."""
    return f"baseline/logistic-regression@{name}/{version}"
