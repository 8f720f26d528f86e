"""Results stage: the versioned JSON result of a run."""
