"""Online experiments: config files with arms, deterministic assignment, interleaving, analysis.

This package sits beside `contracts/` at the bottom of the layers: it imports nothing of the
platform, so ingestion (which dead-letters impressions of unknown arms), serving (which routes
each request to its arm's model) and the analysis can all read the same experiment files.
"""

from experiments.config import (
    Arm,
    Experiment,
    ExperimentConfigError,
    load_experiment,
    parse_experiment,
)
from experiments.registry import ExperimentRegistry

__all__ = [
    "Arm",
    "Experiment",
    "ExperimentConfigError",
    "ExperimentRegistry",
    "load_experiment",
    "parse_experiment",
]
