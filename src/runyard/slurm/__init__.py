"""The Slurm layer: job specs, sbatch rendering, output parsers, and the one runner.

``spec`` describes a job, ``script`` renders its sbatch script and ``parse`` turns
squeue/sacct/sinfo/scontrol output into typed records: all pure (no subprocess). ``runner`` is the
only module that executes Slurm commands (argv lists, timeouts, stderr captured); import
``LocalSlurm`` from ``runyard.slurm.runner``.
"""

from __future__ import annotations

from runyard.slurm.parse import (
    AccountingJob,
    NodeInfo,
    PartitionInfo,
    QueueJob,
    StartEstimate,
    parse_partitions,
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
    "PartitionInfo",
    "QueueJob",
    "StartEstimate",
    "parse_partitions",
    "parse_sacct_json",
    "parse_sinfo_json",
    "parse_squeue_json",
    "parse_start_estimates",
    "render_sbatch",
]
