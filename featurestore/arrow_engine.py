"""Feast's local compute engine, handing each Arrow batch to the online store whole.

Feast's `LocalOutputNode` converts every batch to per-row protobufs before the online store
sees it (`feast.utils._convert_arrow_to_proto`). This engine is the same engine (same query,
filter and dedup nodes, same batches of `online_write_batch_size`, same registry bookkeeping in
`FeatureStore.materialize`) with one change in its output node: when the online store has an
`online_write_arrow(config, view, batch, join_keys) -> bool` method, the batch goes there, and
the store builds the rows column-wise (`featurestore.arrow_rows`). A store without the method,
or one that returns False for a batch, gets Feast's rows as before.

`feature_store.yaml` names it as `batch_engine: featurestore.arrow_engine.ArrowWriteComputeEngine`
(`featurestore.config`); the Feast CLI's `feast materialize` uses it too.
"""

from __future__ import annotations

from typing import Literal

from feast.infra.common.materialization_job import MaterializationJobStatus, MaterializationTask
from feast.infra.compute_engines.dag.context import ExecutionContext
from feast.infra.compute_engines.local.arrow_table_value import ArrowTableValue
from feast.infra.compute_engines.local.compute import (
    LocalComputeEngine,
    LocalComputeEngineConfig,
)
from feast.infra.compute_engines.local.feature_builder import LocalFeatureBuilder
from feast.infra.compute_engines.local.job import LocalMaterializationJob
from feast.infra.compute_engines.local.nodes import LocalOutputNode
from feast.infra.registry.base_registry import BaseRegistry
from feast.utils import _convert_arrow_to_proto, _validate_vector_field_lengths

ENGINE_TYPE = "featurestore.arrow_engine.ArrowWriteComputeEngine"


class ArrowOutputNode(LocalOutputNode):
    """`LocalOutputNode`, with the online write handed Arrow batches when the store takes them."""

    def execute(self, context: ExecutionContext) -> ArrowTableValue:
        store = context.online_store
        write_arrow = getattr(store, "online_write_arrow", None)
        if write_arrow is None or not self.feature_view.online:
            return super().execute(context)
        table = self.get_single_table(context).data
        output = ArrowTableValue(data=table)
        context.node_outputs[self.name] = output
        if table.num_rows == 0:
            return output
        join_keys = {
            entity.name: entity.dtype.to_value_type() for entity in self.feature_view.entity_columns
        }
        batch_size = context.repo_config.materialization_config.online_write_batch_size
        batches = [table] if batch_size is None else table.to_batches(max_chunksize=batch_size)
        for batch in batches:
            _validate_vector_field_lengths(batch, self.feature_view)
            if write_arrow(context.repo_config, self.feature_view, batch, join_keys):
                continue
            store.online_write_batch(
                config=context.repo_config,
                table=self.feature_view,
                data=_convert_arrow_to_proto(batch, self.feature_view, join_keys),
                progress=lambda x: None,
            )
        if self.feature_view.offline:
            context.offline_store.offline_write_batch(
                config=context.repo_config,
                feature_view=self.feature_view,
                table=table,
                progress=lambda x: None,
            )
        return output


class ArrowFeatureBuilder(LocalFeatureBuilder):
    def build_output_nodes(self, view, input_node):
        # as Feast's builder does (its view is a FeatureView, the node's hint a narrower type)
        node = ArrowOutputNode("output", self.dag_root.view, inputs=[input_node])  # type: ignore[arg-type]
        self.nodes.append(node)
        return node


class ArrowWriteComputeEngineConfig(LocalComputeEngineConfig):
    type: Literal["featurestore.arrow_engine.ArrowWriteComputeEngine"] = (
        "featurestore.arrow_engine.ArrowWriteComputeEngine"  # type: ignore[assignment]
    )


class ArrowWriteComputeEngine(LocalComputeEngine):
    """`LocalComputeEngine` materializing through `ArrowOutputNode` (retrieval unchanged)."""

    def _materialize_one(
        self, registry: BaseRegistry, task: MaterializationTask, **kwargs
    ) -> LocalMaterializationJob:
        job_id = f"{task.feature_view.name}-{task.start_time}-{task.end_time}"
        context = self.get_execution_context(registry, task)
        backend = self._get_backend(context)
        try:
            ArrowFeatureBuilder(registry, task, backend=backend).build().execute(context)
            return LocalMaterializationJob(job_id=job_id, status=MaterializationJobStatus.SUCCEEDED)
        except Exception as e:
            return LocalMaterializationJob(
                job_id=job_id, status=MaterializationJobStatus.ERROR, error=e
            )
