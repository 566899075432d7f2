#!/bin/bash
# Node epilog (runs on slurmd, as root, on every node of the job): records the job's environment.
# A later change posts to the Runyard webhook from here.
mkdir -p /var/log/slurm/epilog
env | sort >"/var/log/slurm/epilog/node-${SLURMD_NODENAME:-unknown}-${SLURM_JOB_ID:-unknown}.env" || true
exit 0
