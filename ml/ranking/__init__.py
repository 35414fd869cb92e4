"""The feed ranker: data splits, preprocessing, the Keras model, baselines, evaluation, the
serving scorer (`ml.ranking.scorer.RankerScorer`) and its MLflow publication."""

MODEL_NAME = "feed-ranker"  # the registered model name
