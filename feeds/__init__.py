"""Precomputed home feeds: the feed store (Redis or SQLite) and hybrid fan-out (push and pull)."""
