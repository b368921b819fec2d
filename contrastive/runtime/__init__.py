"""Run plumbing: checkpoint files, RNG state, preemption, threads, the log file, loggers, sweeps, safe loading."""
