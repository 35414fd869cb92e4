"""Great Expectations, run the same way for every domain: a suite over a pandas frame."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd


def suite_result(
    name: str, frame: pd.DataFrame, expectations: Sequence[Any]
) -> tuple[bool, dict[str, Any]]:
    """Run a GE suite on a dataframe: overall success and the failed expectations."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas(f"{name}_source")
        .add_dataframe_asset(f"{name}_frame")
        .add_batch_definition_whole_dataframe(f"{name}_batch")
    )
    suite = context.suites.add(gx.ExpectationSuite(name=f"{name}_suite"))
    for expectation in expectations:
        suite.add_expectation(expectation)
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(data=batch, suite=suite, name=f"{name}_validation")
    )
    result = validation.run(batch_parameters={"dataframe": frame})
    failed = {}
    for r in result.results:
        config = r.expectation_config
        if not r.success and config is not None:
            name = f"{config.type}:{config.kwargs.get('column', '')}"
            failed[name] = str(
                r.result.get("partial_unexpected_list") or r.result.get("observed_value") or ""
            )[:300]
    return bool(result.success), failed
