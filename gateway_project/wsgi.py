"""WSGI entry point: ``gunicorn -c gateway_project/gunicorn.conf.py gateway_project.wsgi``."""

import os

import django
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from gateway_project.wsgi_request import GatewayWSGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_project.settings")

django.setup(set_prefix=False)  # get_wsgi_application(), with our handler instead of Django's

from gateway_project.api_lane import ApiLane  # noqa: E402  (its middlewares import models: after setup)

application = ApiLane(GatewayWSGIHandler())  # aggregate routes by the lean lane, the rest by Django

if not settings.SECRET_KEY:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY is not set: set it (or DJANGO_DEBUG=1 for local work)")
