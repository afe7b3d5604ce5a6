"""Built-in search space files (data only; loaded by `rlnas.model.space`)."""
