"""The object store: local directory (embedded profile) or S3 (services profile)."""

from objectstore.store import (
    LocalObjectStore,
    ObjectStore,
    S3ObjectStore,
    open_store,
    store_from_settings,
)

__all__ = ["LocalObjectStore", "ObjectStore", "S3ObjectStore", "open_store", "store_from_settings"]
