"""Sweeps (hyper-parameter searches submitted as one Slurm job array) and pipelines (steps
submitted as jobs chained with ``--dependency``). Server side: parsing the YAML specs needs
PyYAML, adaptive sweeps and pruning need Optuna (both in the ``server`` extra)."""
