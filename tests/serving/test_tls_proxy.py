"""Behind a TLS proxy (contract section 3): GATEWAY_TLS_PROXY=on believes X-Forwarded-Proto
only from GATEWAY_TRUSTED_PROXIES, makes cookies Secure and sends HSTS; CSRF_TRUSTED_ORIGINS
comes from the environment. Settings are read at start, so each case runs the gateway's
middleware chain (Django's test client) in a fresh interpreter with its own environment."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.support.scripts import run_script

SCRIPT = r"""
import json, django
django.setup()
from django.conf import settings
from django.test import Client


def answer(client, peer, proto):
    extra = {"REMOTE_ADDR": peer, **({"HTTP_X_FORWARDED_PROTO": proto} if proto else {})}
    response = client.get("/admin/login/", **extra)
    cookie = response.cookies.get("csrftoken")
    return {
        "status": response.status_code,
        "secure": response.wsgi_request.is_secure(),
        "hsts": response.headers.get("Strict-Transport-Security"),
        "cookie_secure": bool(cookie and cookie["secure"]),
    }


client = Client(enforce_csrf_checks=True)
report = {
    "trusted": answer(client, "10.0.0.7", "https"),
    "untrusted": answer(client, "203.0.113.9", "https"),
    "trusted_plain": answer(client, "10.0.0.7", None),
}
# A login form posted from the public origin, through the trusted proxy: CSRF's origin check.
token = client.cookies["csrftoken"].value
posted = client.post(
    "/admin/login/",
    {"csrfmiddlewaretoken": token, "username": "", "password": ""},  # invalid form: no query
    REMOTE_ADDR="10.0.0.7", HTTP_X_FORWARDED_PROTO="https", HTTP_ORIGIN="https://gw.example.com",
)
report["post_from_public_origin"] = posted.status_code
report["csrf_trusted_origins"] = settings.CSRF_TRUSTED_ORIGINS
print(json.dumps(report))
"""


def _run(tmp_path: Path, **env: str) -> Any:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "CSRF_", "PYTEST_"))}
    base |= {
        "DJANGO_SETTINGS_MODULE": "gateway_project.settings",
        "DJANGO_SECRET_KEY": "tls-proxy-test",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",  # the login page reads no table
        "GATEWAY_TRUSTED_PROXIES": "10.0.0.0/24",
        "GATEWAY_METRICS": "off",
        "ALLOWED_HOSTS": "testserver",
    }
    return run_script(SCRIPT, env=base | env, timeout_s=60)


def test_tls_proxy_on_believes_the_trusted_proxy_only(tmp_path: Path) -> None:
    report = _run(
        tmp_path, GATEWAY_TLS_PROXY="on", CSRF_TRUSTED_ORIGINS="https://gw.example.com,https://ops.example.com"
    )

    assert report["trusted"] == {
        "status": 200,
        "secure": True,
        "hsts": "max-age=31536000",
        "cookie_secure": True,
    }
    assert report["untrusted"] == {"status": 200, "secure": False, "hsts": None, "cookie_secure": True}
    assert report["trusted_plain"]["secure"] is False
    assert report["csrf_trusted_origins"] == ["https://gw.example.com", "https://ops.example.com"]
    assert report["post_from_public_origin"] == 200  # the login form again (fields missing), not 403


def test_tls_proxy_off_believes_no_one_and_refuses_foreign_origins(tmp_path: Path) -> None:
    report = _run(tmp_path)

    assert report["trusted"] == {"status": 200, "secure": False, "hsts": None, "cookie_secure": False}
    assert report["untrusted"]["secure"] is False
    assert report["csrf_trusted_origins"] == []
    assert report["post_from_public_origin"] == 403
