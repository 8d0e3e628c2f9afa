"""Conveyor beside its peers: `python -m bench` (or `make bench`); see bench/README.md."""
