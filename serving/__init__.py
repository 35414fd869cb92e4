"""The HTTP service online callers use: features, ranking, feeds, recommendations, trending."""
