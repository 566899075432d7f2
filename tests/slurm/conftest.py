"""The dev cluster for tests that run real Slurm commands: ``dev_cluster`` brings it up once per
module (a no-op when it is running). Without it they skip with the reason; on CI they fail."""

from __future__ import annotations

from tests.e2e.test_dev_cluster import cluster as dev_cluster
from tests.e2e.test_dev_cluster import poll

__all__ = ["dev_cluster", "poll"]
