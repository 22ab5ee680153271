"""A cluster on 127.0.0.1 for the multi-worker tests: free ports, and each worker's TF_CONFIG (the benchmarks'
helpers, which start clusters too)."""

from benchmarks.measure import free_ports, tf_config

__all__ = ["free_ports", "tf_config"]
