"""Wires the registry, the engine and the edge into one Django project."""

from gateway_project.celery import app as celery_app

__all__ = ["celery_app"]
