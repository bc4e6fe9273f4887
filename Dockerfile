# The gateway's image: one image for the web server, the Celery worker and the migration job
# (docs/deployment.md). Multi-stage: the build stage compiles nothing into the runtime image.
#   docker build -t orchestration-gateway .
#   docker run -e DATABASE_URL=... -e REDIS_URL=... -e DJANGO_SECRET_KEY=... -p 8000:8000 orchestration-gateway

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY requirements/base.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install -r /tmp/requirements.txt
WORKDIR /app
COPY manage.py pyproject.toml ./
COPY gateway_project gateway_project
COPY orchestration orchestration
COPY registry registry
COPY console console
COPY examples examples
# The admin's and console's static files, served by whitenoise from the image.
RUN DJANGO_SECRET_KEY=build-only /opt/venv/bin/python manage.py collectstatic --noinput -v 0

FROM python:3.11-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=gateway_project.settings \
    PORT=8000
RUN groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid gateway --home-dir /app --shell /usr/sbin/nologin gateway
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=root:root /app /app
WORKDIR /app
# Not root; the code is not writable by the user that runs it. gunicorn writes only under /tmp.
USER 10001:10001
EXPOSE 8000
# Liveness only (/healthz touches nothing): readiness (/readyz) is the load balancer's business.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"8000\")}/healthz', timeout=2)"]
# SIGTERM drains (GATEWAY_DRAIN_S): give `docker stop` a longer timeout (compose: stop_grace_period).
STOPSIGNAL SIGTERM
CMD ["gunicorn", "-c", "gateway_project/gunicorn.conf.py", "gateway_project.wsgi"]
