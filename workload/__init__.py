"""Seeded synthetic workload: app events driven by a hidden ground truth, as landing-zone files."""

from workload.config import BAD_KINDS, WorkloadConfig
from workload.generator import LandingRecord, Workload, generate
from workload.ground_truth import GroundTruth, TruthModel
from workload.writer import WriteResult, write_workload

__all__ = [
    "BAD_KINDS",
    "GroundTruth",
    "LandingRecord",
    "TruthModel",
    "Workload",
    "WorkloadConfig",
    "WriteResult",
    "generate",
    "write_workload",
]
