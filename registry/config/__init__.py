"""Config as code: parse, check, normalise, dump ``gateway.yaml``, and build a Plan from it.

Nothing in this package touches the database, so ``gateway check`` and the
engine's tests use it as is; ``registry.services`` and ``registry.selectors``
move documents in and out of the models.
"""
