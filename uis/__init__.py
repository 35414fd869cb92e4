"""The web UIs beside Dagster's, each started on the current profile's state: MLflow's tracking
and model registry, dbt's docs of the analytics project, Feast's registry browser."""

from uis.launchers import dbt_docs, feast_ui, mlflow_ui

__all__ = ["dbt_docs", "feast_ui", "mlflow_ui"]
