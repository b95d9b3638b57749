"""Benchmarks whose figures are measured side by side in one run and written as JSON."""
