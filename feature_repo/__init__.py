"""Feast definitions of the platform's features (definitions only: `feast apply` imports them)."""
