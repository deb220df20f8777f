"""Benchmarks: each script prints figures measured in one run; BENCHMARKS.md records them with the command."""
