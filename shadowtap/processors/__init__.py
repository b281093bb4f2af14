"""Processing: filter, sample, deduplicate and scrub captured traffic into the mirror topic."""
