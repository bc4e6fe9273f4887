"""Shared fixtures. Integration tests use the real PostgreSQL and Redis named by
DATABASE_URL and REDIS_URL (set by .ci/run and the Makefile)."""
