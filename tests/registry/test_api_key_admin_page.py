"""A new API key is shown once, in the page answering the add form, and kept nowhere else."""

from __future__ import annotations

import hashlib
import re
from html import unescape

import pytest
from django.contrib.messages import get_messages
from django.contrib.sessions.models import Session
from django.urls import reverse

from registry import models

pytestmark = pytest.mark.django_db

_KEY = re.compile(r"gwk_[A-Za-z0-9_\-]{20,}")


def test_the_add_form_answers_with_the_key_once_and_stores_it_nowhere(admin_client):
    response = admin_client.post(reverse("admin:registry_apikey_add"), {"name": "mobile app", "subject": "user-42"})

    assert response.status_code == 200  # the page itself, not a redirect to a page fed by a message
    page = unescape(response.content.decode())
    shown = _KEY.findall(page)
    key = models.ApiKey.objects.get()
    assert len(shown) == 1
    plaintext = shown[0]
    assert hashlib.sha256(plaintext.encode()).hexdigest() == key.key_hash
    assert "shown only on this page" in page
    assert "no-store" in response["Cache-Control"]
    # Not in a cookie (the messages framework's cookie storage), the session or a pending message.
    assert all(plaintext not in morsel.value for morsel in response.cookies.values())
    assert all(plaintext not in str(session.get_decoded()) for session in Session.objects.all())
    assert [m.message for m in get_messages(response.wsgi_request) if plaintext in str(m.message)] == []

    later = [
        admin_client.get(reverse("admin:registry_apikey_changelist")),
        admin_client.get(reverse("admin:registry_apikey_change", args=[key.pk])),
    ]
    for answer in later:
        assert answer.status_code == 200
        assert plaintext not in answer.content.decode()
        assert all(plaintext not in morsel.value for morsel in answer.cookies.values())
    assert key.prefix in later[0].content.decode()


def test_editing_a_key_shows_no_key(admin_client):
    admin_client.post(reverse("admin:registry_apikey_add"), {"name": "mobile", "subject": "42"})
    key = models.ApiKey.objects.get()

    response = admin_client.post(
        reverse("admin:registry_apikey_change", args=[key.pk]), {"name": "mobile (renamed)"}, follow=True
    )

    assert response.redirect_chain[-1][1] == 302
    assert _KEY.findall(unescape(response.content.decode())) == []
    key.refresh_from_db()
    assert key.name == "mobile (renamed)"
