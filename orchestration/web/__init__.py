"""The thin Django layer over the engine: serving view, health, webhooks.

Only this package (and ``orchestration.apps``/``orchestration.tasks``) may import
Django; the engine modules beside it stay framework-free.
"""
