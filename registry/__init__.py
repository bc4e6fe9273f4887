"""The registry: the orchestration layer as data (models, admin, config as code, compiler)."""
