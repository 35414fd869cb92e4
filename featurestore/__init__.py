"""The feature store: Feast over the marts (offline), SQLite or Redis (online), and fast reads."""

from featurestore.config import (
    PROJECT,
    close_offline_client,
    feature_store,
    offline_session,
    render_config,
    write_repo,
)

__all__ = [
    "PROJECT",
    "close_offline_client",
    "feature_store",
    "offline_session",
    "render_config",
    "write_repo",
]
