"""Settings, read from the environment in this one module (contract section 3).

Every variable is optional: without them the gateway runs on embedded defaults
(SQLite, in-process cache and state, Celery tasks run in-process).
"""

from __future__ import annotations

from pathlib import Path

import django_stubs_ext
import environ

# Lets admin/form classes be subscripted (ModelAdmin[Service]) for mypy.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DEBUG: bool = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY: str = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY and DEBUG:
    SECRET_KEY = "insecure-debug-only-key"
# An empty key outside debug is checked where it matters: `gateway check` works
# without one, while the WSGI entry point refuses to start (gateway_project/wsgi.py).
ALLOWED_HOSTS: list[str] = env.list("ALLOWED_HOSTS", default=["*"] if DEBUG else ["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    "gateway_project.observability.ObservabilityConfig",  # tracing before the middleware chain is built
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",  # the admin API's `Authorization: Token <key>` (drf_create_token USER)
    "drf_spectacular",
    "django_prometheus",
    "registry",
    "orchestration.apps.OrchestrationConfig",
    "console",
]


def _switch(name: str, *, default: bool = True) -> bool:
    """An on/off environment switch (on|off, also true|false, 1|0, yes|no)."""
    value = env.str(name, default="on" if default else "off").strip().lower()
    if value in ("on", "true", "1", "yes"):
        return True
    if value in ("off", "false", "0", "no"):
        return False
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"{name} must be 'on' or 'off', not {value!r}")


def _max_in_flight(value: str) -> str:
    """GATEWAY_MAX_IN_FLIGHT: "auto" or a whole number >= 0."""
    value = value.strip().lower()
    if value == "auto" or value.isdigit():
        return value
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"GATEWAY_MAX_IN_FLIGHT must be 'auto' or a whole number, not {value!r}")


# GATEWAY_METRICS=off: no Prometheus series written per request (django-prometheus's
# middleware is left out too); /metrics still answers with scrape-time state.
METRICS_ENABLED: bool = _switch("GATEWAY_METRICS")
# GATEWAY_ACCESS_LOG=off: no access line per aggregate request (other log lines stay).
ACCESS_LOG_ENABLED: bool = _switch("GATEWAY_ACCESS_LOG")

# Behind a TLS-terminating proxy (GATEWAY_TLS_PROXY=on): X-Forwarded-Proto is believed only
# from GATEWAY_TRUSTED_PROXIES (gateway_project/forwarded_proto.py drops it from anyone else
# before Django reads it); cookies are Secure and HTTPS answers carry HSTS.
TLS_PROXY: bool = _switch("GATEWAY_TLS_PROXY", default=False)
if TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("GATEWAY_HSTS_SECONDS", default=31536000)
# Origins allowed to POST to the admin and the console through a proxy (https://gw.example.com).
CSRF_TRUSTED_ORIGINS: list[str] = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Session, authentication and messages run only for the admin, the console and
# /health/downstream (gateway_project/middleware.py): API requests never use them.
MIDDLEWARE = [
    *(["gateway_project.forwarded_proto.ForwardedProtoMiddleware"] if TLS_PROXY else []),  # before any is_secure()
    *(["orchestration.web.ops_metrics.PrometheusBeforeMiddleware"] if METRICS_ENABLED else []),
    "orchestration.web.ops_logging.RequestLogContextMiddleware",  # request id + trace id on every log line
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "gateway_project.middleware.SiteSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "gateway_project.middleware.SiteAuthenticationMiddleware",
    "gateway_project.middleware.SiteMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    *(["orchestration.web.ops_metrics.PrometheusAfterMiddleware"] if METRICS_ENABLED else []),
]

ROOT_URLCONF = "gateway_project.urls"
WSGI_APPLICATION = "gateway_project.wsgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# One connection per greenlet under gevent: never keep them (ARCHITECTURE.md).
DATABASES["default"]["CONN_MAX_AGE"] = 0

REDIS_URL: str | None = env.str("REDIS_URL", default=None)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "SOCKET_CONNECT_TIMEOUT": 0.25,
                "SOCKET_TIMEOUT": 0.25,
                # A Redis outage must never become a client 5xx (contract section 2).
                "IGNORE_EXCEPTIONS": True,
            },
            "KEY_PREFIX": "gw",
        }
    }
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
    # Sessions read from Redis, written to both (layer auth `session` reads them on the
    # aggregate path without a database query; docs/adr/0007). A Redis outage falls back
    # to the database. Without Redis: the database (a per-process cache would keep a
    # logged-out session alive in the other workers).
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "gateway"}}

# Redis behind Sentinel instead of REDIS_URL (gateway_project/redis_ha.py, contract section 9).
from gateway_project import redis_ha  # noqa: E402 - settings are read top to bottom

try:
    REDIS_SENTINEL: redis_ha.SentinelSettings | None = redis_ha.parse(
        env.str("REDIS_SENTINELS", default=None),
        env.str("REDIS_SENTINEL_MASTER", default=None),
        db=env.int("REDIS_SENTINEL_DB", default=0),
        password=env.str("REDIS_PASSWORD", default=None),
    )
except redis_ha.SentinelSettingError as error:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(str(error)) from error
if REDIS_SENTINEL is not None:
    if REDIS_URL:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("set REDIS_URL or REDIS_SENTINELS, not both")
    CACHES = {"default": REDIS_SENTINEL.django_cache()}
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True

CELERY_BROKER_URL: str | None = env.str("CELERY_BROKER_URL", default=None)
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
if REDIS_SENTINEL is not None and (CELERY_BROKER_URL or "").startswith("sentinel://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = REDIS_SENTINEL.celery_transport_options()

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Where `collectstatic` puts the admin's and console's CSS/JS, and WhiteNoise serves them
# from (it serves only this directory, as in production: collected at build/deploy time).
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "var" / "static")))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "/admin/login/"

REST_FRAMEWORK: dict[str, object] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Gateway admin API",
    "DESCRIPTION": "Configuration versions, diff, rollback and breakers (contract section 5).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
}
# The admin API's DRF throttles, per user: a runaway pipeline cannot hammer the database.
GATEWAY_ADMIN_API = {
    "READ_RATE": env.str("GATEWAY_ADMIN_API_READ_RATE", default="600/min"),
    "WRITE_RATE": env.str("GATEWAY_ADMIN_API_WRITE_RATE", default="60/min"),
}

# The gateway's own knobs (contract section 3). Secrets stay in the environment:
# the config names env vars (secret_env, token_env...), and they are read at use.
GATEWAY = {
    "MAX_BODY_BYTES": env.int("GATEWAY_MAX_BODY_BYTES", default=1024 * 1024),
    "MAX_DOWNSTREAM_BODY_BYTES": env.int("GATEWAY_MAX_DOWNSTREAM_BODY_BYTES", default=8 * 1024 * 1024),
    "MAX_JSON_DEPTH": env.int("GATEWAY_MAX_JSON_DEPTH", default=64),
    # A request body not fully received in this time gets 408 REQUEST_TIMEOUT; it is read
    # before admission, so a slow one holds no capacity (orchestration/web/request_body.py).
    "BODY_TIMEOUT_MS": env.int("GATEWAY_BODY_TIMEOUT_MS", default=10000),
    "TRUSTED_PROXIES": env.list("GATEWAY_TRUSTED_PROXIES", default=[]),
    "HEALTH_TOKEN": env.str("GATEWAY_HEALTH_TOKEN", default=""),
    "WEBHOOK_SECRET": env.str("GATEWAY_WEBHOOK_SECRET", default=""),
    # X-Gateway-Explain equal to it: Server-Timing per call (contract section 6); empty: never.
    "EXPLAIN_TOKEN": env.str("GATEWAY_EXPLAIN_TOKEN", default=""),
    "CONFIG_POLL_S": env.float("GATEWAY_CONFIG_POLL_S", default=1.0),
    # Aggregate requests run at once per worker process: "auto" (adapts to CPU pressure), a
    # number (fixed) or 0 (no limit); the next wait up to GATEWAY_ADMISSION_WAIT_MS, then get
    # 503 OVERLOADED (orchestration/web/admission.py).
    "MAX_IN_FLIGHT": _max_in_flight(env.str("GATEWAY_MAX_IN_FLIGHT", default="auto")),
    "ADMISSION_WAIT_MS": env.int("GATEWAY_ADMISSION_WAIT_MS", default=10000),
    "METRICS": METRICS_ENABLED,
    "ACCESS_LOG": ACCESS_LOG_ENABLED,
    # The most elements one for_each call may fan out to; over it the call fails (orchestration/fanout.py).
    "MAX_FAN_OUT": env.int("GATEWAY_MAX_FAN_OUT", default=100),
    # cache.cdn (contract section 8): invalidations also POST {"tags": [...]} here, bearer token.
    "CDN_PURGE_URL": env.str("GATEWAY_CDN_PURGE_URL", default=""),
    "CDN_PURGE_TOKEN": env.str("GATEWAY_CDN_PURGE_TOKEN", default=""),
}
DATA_UPLOAD_MAX_MEMORY_SIZE = GATEWAY["MAX_BODY_BYTES"] + 1

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        # "process": which gunicorn worker wrote the line (each holds its own plan, breakers, caches).
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
        },
    },
    "filters": {"request_context": {"()": "orchestration.observability.access_log.RequestContextFilter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["request_context"]},
    },
    "root": {"handlers": ["console"], "level": env.str("GATEWAY_LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # httpx logs every downstream URL at INFO; our access line says what matters.
        "httpx": {"level": "WARNING"},
    },
}
