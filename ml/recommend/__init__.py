"""Recommenders on Spark ALS: who to follow, Explore posts, their evaluation, MovieLens checks."""
