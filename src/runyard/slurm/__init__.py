"""The Slurm layer: pure job specs, sbatch rendering and output parsers.

Everything in this package is pure (no subprocess): ``spec`` describes a job, ``script``
renders its sbatch script, ``parse`` turns squeue/sacct/sinfo output into typed records.
"""

from __future__ import annotations

from runyard.slurm.parse import (
    AccountingJob,
    NodeInfo,
    QueueJob,
    StartEstimate,
    parse_sacct_json,
    parse_sinfo_json,
    parse_squeue_json,
    parse_start_estimates,
)
from runyard.slurm.script import render_sbatch
from runyard.slurm.spec import JobSpec

__all__ = [
    "AccountingJob",
    "JobSpec",
    "NodeInfo",
    "QueueJob",
    "StartEstimate",
    "parse_sacct_json",
    "parse_sinfo_json",
    "parse_squeue_json",
    "parse_start_estimates",
    "render_sbatch",
]
