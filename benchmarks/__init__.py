"""Speed benchmarks of sklearn_epi; each prints a ratio against its baseline."""
