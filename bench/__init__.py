"""Benchmarks of ctswitch (``make bench`` runs ``python -m bench.run_all``)."""
