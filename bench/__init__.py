"""The benchmark of the DFPS <-> DPS exchange (bench/benchmark.py); see bench/README.md."""
