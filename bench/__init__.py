"""ordermill's benchmark harness: throughput, latency, CPU and memory per order (not tests)."""
