"""Edge policies applied before a plan runs: client auth, rate limits, cache."""
