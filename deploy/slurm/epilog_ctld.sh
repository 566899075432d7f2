#!/bin/bash
# Controller epilog (runs on slurmctld, as user slurm, once per job): records the job's environment.
# A later change posts to the Runyard webhook from here.
env | sort >"/var/log/slurm/epilog/ctld-${SLURM_JOB_ID:-unknown}.env" || true
exit 0
