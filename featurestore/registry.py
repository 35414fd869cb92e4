"""`feast apply` from code: the definitions in feature_repo/, built for these settings."""

from __future__ import annotations

from dataclasses import dataclass

from feast import FeatureStore
from feast.project import Project
from feast.repo_contents import RepoContents
from feast.repo_operations import apply_total_with_repo_instance

from appconfig import Settings
from feature_repo.definitions import FeatureRepo, build


@dataclass(frozen=True)
class Applied:
    project: str
    entities: list[str]
    feature_views: list[str]
    on_demand_feature_views: list[str]
    feature_services: list[str]


def definitions(settings: Settings) -> FeatureRepo:
    return build(settings.features_database)


def apply_definitions(store: FeatureStore, settings: Settings) -> Applied:
    """Register every object (and remove those no longer defined), then create online tables.

    Like `feast apply`, this never queries the offline store: every view's schema is explicit.
    """
    repo = definitions(settings)
    contents = RepoContents(
        projects=[Project(name=store.project)],
        data_sources=list(repo.sources.values()),
        feature_views=list(repo.feature_views.values()),
        on_demand_feature_views=list(repo.on_demand_feature_views.values()),
        stream_feature_views=[],
        label_views=[],
        entities=list(repo.entities.values()),
        feature_services=list(repo.feature_services.values()),
        permissions=[],
    )
    apply_total_with_repo_instance(
        store, store.project, store.registry, contents, skip_source_validation=True
    )
    return Applied(
        project=store.project,
        entities=sorted(repo.entities),
        feature_views=sorted(repo.feature_views),
        on_demand_feature_views=sorted(repo.on_demand_feature_views),
        feature_services=sorted(repo.feature_services),
    )
