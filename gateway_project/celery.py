"""The Celery application (cache-invalidation webhooks run here).

Without ``CELERY_BROKER_URL`` tasks run in-process (``task_always_eager``), the
embedded default. The worker is started with ``celery -A gateway_project worker``.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_project.settings")

app = Celery("gateway_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
