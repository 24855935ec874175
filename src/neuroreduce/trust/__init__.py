"""Where a surrogate can be trusted: held-out stimulus batteries, ensemble-mean predictions,
calibrated ensemble uncertainty, out-of-range input flags and stimulus design with the simulator
in the loop (issue 14)."""
