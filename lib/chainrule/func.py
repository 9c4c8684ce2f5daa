"""Per-sample gradients, Jacobians and per-loss-term gradients (filled in next)."""
