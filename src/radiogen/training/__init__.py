"""Training: the loop (Section 4.2), EMA of the weights, checkpoints and distributed runs."""
