"""Models: the feed ranker, the recommenders, their evaluation and the MLflow registry."""
