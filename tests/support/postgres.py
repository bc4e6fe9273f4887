"""PostgreSQL seen from outside the test's own connection."""

from __future__ import annotations

import psycopg
from django.db import connection


def backends_on_test_database() -> set[int]:
    """PostgreSQL backends on the test database, seen from outside it."""
    settings_dict = connection.settings_dict
    with psycopg.connect(
        host=settings_dict["HOST"] or "127.0.0.1",
        port=settings_dict["PORT"] or 5432,
        user=settings_dict["USER"],
        password=settings_dict["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as admin:
        rows = admin.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (settings_dict["NAME"],)).fetchall()
    return {row[0] for row in rows}
