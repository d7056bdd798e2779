"""SCONE's run.py contract for Pippin: `submit` (standard library and PyYAML only, imported
by the root run.py outside the project's environment) writes and submits the Slurm job;
`job` (the project's environment) is what that job runs. Import nothing here: run.py
must stay importable without the environment."""
