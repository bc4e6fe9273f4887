"""Configuration versions: one immutable row per change, numbered in commit order,
each holding exactly the configuration after its change, even under real concurrent
transactions on PostgreSQL; and the commands of contract section 5."""

from __future__ import annotations

import copy
import threading
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.db import connection, transaction

from registry import models
from registry.models import ConfigRevision
from registry.services import api_key_create, config_import, config_version_bump
from registry.versioning import Author

SERVICES = ("cart", "inventory", "pricing", "payment", "shipping", "tax")


def run(*args: str) -> tuple[int, str, str]:
    """``manage.py gateway ARGS``: exit code, stdout, stderr."""
    import io

    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("gateway", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.django_db(transaction=True)
def test_concurrent_changes_serialise_and_no_version_loses_another(document):
    """Six admin-style saves hold their row changes at once, then record: each version's
    document must be the previous one plus exactly its own change."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL's row locks (DATABASE_URL)")
    config_import(document=document)
    barrier, errors = threading.Barrier(len(SERVICES)), []

    def change(name: str) -> None:
        try:
            with transaction.atomic():
                models.Service.objects.filter(name=name).update(timeout_ms=4321)
                barrier.wait(timeout=10)  # every transaction has written before any records
                config_version_bump(author=Author(source="admin"))
        except Exception as exc:  # noqa: BLE001 - any failure of a thread is reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=change, args=(name,)) for name in SERVICES]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    revisions = list(ConfigRevision.objects.order_by("number"))
    assert [r.number for r in revisions] == list(range(1, len(SERVICES) + 2))
    changed: set[str] = set()
    for revision in revisions[1:]:
        now = {n for n, s in revision.document["services"].items() if s["timeout_ms"] == 4321}
        assert len(now - changed) == 1 and changed <= now, (revision.number, now, changed)
        changed = now
    assert changed == set(SERVICES)
    assert models.ConfigVersion.objects.get(pk=1).counter == len(SERVICES) + 1


@pytest.mark.django_db
def test_versions_are_immutable(document):
    config_import(document=document)
    revision = ConfigRevision.objects.get()
    revision.comment = "rewritten"
    with pytest.raises(models.ImmutableVersion):
        revision.save()
    with pytest.raises(models.ImmutableVersion):
        revision.delete()


@pytest.mark.django_db
def test_api_key_changes_make_versions_too(document):
    config_import(document=document)
    api_key_create(name="mobile", subject="42")
    latest = ConfigRevision.objects.order_by("-number").first()
    assert (latest.number, latest.summary) == (2, "api key 'mobile' created")


@pytest.fixture
def files(document, write_yaml, tmp_path, monkeypatch) -> dict[str, Path]:
    for name in ("GATEWAY_JWT_SECRET", "PRICING_API_KEY", "INVENTORY_TOKEN"):
        monkeypatch.setenv(name, "s3cret")
    for key in ("cert_file", "key_file", "ca_file"):
        (tmp_path / key).write_text("pem")
        document["services"]["payment"]["auth"][key] = str(tmp_path / key)
    faster = copy.deepcopy(document)
    faster["endpoints"][0]["calls"][3]["timeout_ms"] = 300
    return {"v1": write_yaml(document, "v1.yaml"), "faster": write_yaml(faster, "faster.yaml")}


@pytest.mark.django_db
def test_diff_exit_codes(files, write_yaml):
    assert run("import", str(files["v1"]))[0] == 0
    assert run("diff", str(files["v1"])) == (0, "", "")
    code, out, _ = run("diff", str(files["faster"]))
    assert code == 1 and "-        timeout_ms: 500\n+        timeout_ms: 300\n" in out
    bad = write_yaml({"version": 1, "layer": {}, "services": {}, "endpoints": [{"name": 3}]}, "bad.yaml")
    code, _, err = run("diff", str(bad))
    assert code == 2 and "endpoints[0]" in err
    assert run("diff", str(files["v1"]) + ".missing")[0] == 2


@pytest.mark.django_db
def test_import_dry_run_expect_version_and_comment(files):
    run("import", str(files["v1"]))
    code, out, _ = run("import", str(files["faster"]), "--dry-run")
    assert code == 0 and "+        timeout_ms: 300" in out and ConfigRevision.objects.count() == 1
    code, _, err = run("import", str(files["faster"]), "--expect-version", "7")
    assert code == 3 and "version 1, not 7" in err and ConfigRevision.objects.count() == 1
    assert models.Call.objects.get(call_id="shipping").timeout_ms == 500
    code, out, _ = run("import", str(files["faster"]), "--expect-version", "1", "--comment", "ship faster")
    assert code == 0, out
    latest = ConfigRevision.objects.get(number=2)
    assert (latest.who, latest.source, latest.comment) == ("import", "import", "ship faster")
    assert latest.summary == "endpoint checkout-summary: calls.shipping.timeout_ms 500 → 300"


@pytest.mark.django_db
def test_history_rollback_and_export_version(files):
    run("import", str(files["v1"]))
    exported_v1 = run("export")[1]
    run("import", str(files["faster"]), "--comment", "ship faster")
    code, out, _ = run("history")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2
    assert lines[0].split()[0] == "2" and "import" in lines[0] and "500 → 300" in lines[0] and "ship faster" in lines[0]
    assert lines[1].split()[0] == "1" and "initial configuration" in lines[1]
    assert len(run("history", "--limit", "1")[1].splitlines()) == 1
    code, out, _ = run("rollback", "1", "--comment", "too tight")
    assert code == 0 and "configuration version 3" in out
    assert run("export")[1] == exported_v1  # byte for byte: key order of templates included
    assert run("export", "--version", "1")[1] == exported_v1
    third = ConfigRevision.objects.get(number=3)
    assert (third.source, third.comment) == ("rollback", "too tight")
    code, out, _ = run("export", "--version", "2")
    assert code == 0 and yaml.safe_load(out)["endpoints"][0]["calls"][3]["timeout_ms"] == 300
    assert run("export", "--version", "9")[0] == 1
    assert run("rollback", "9")[0] == 1


@pytest.mark.django_db
def test_rollback_refused_when_a_secret_it_needs_is_gone(files, monkeypatch):
    run("import", str(files["v1"]))
    run("import", str(files["faster"]))
    monkeypatch.delenv("PRICING_API_KEY")
    code, _, err = run("rollback", "1")
    assert code == 1 and "services.pricing.auth.key_env: environment variable PRICING_API_KEY is not set" in err
    assert ConfigRevision.objects.count() == 2
    assert models.Call.objects.get(call_id="shipping").timeout_ms == 300


@pytest.mark.django_db(transaction=True)
def test_the_database_going_away_mid_change_leaves_the_previous_version_serving(document, monkeypatch):
    """The connection dies after the configuration rows were replaced but before the version
    is recorded: nothing of the change stays, and workers (which poll the version and load
    the configuration) keep serving the previous version."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL to terminate the change's backend (DATABASE_URL)")
    import psycopg
    from django.db.utils import Error as DatabaseError

    from registry import compiler, services
    from registry.selectors import config_document_get, config_version_read

    config_import(document=document)
    served_version, served_document = config_version_read(), config_document_get()
    changed = copy.deepcopy(document)
    changed["services"]["cart"]["timeout_ms"] = 123
    record = services.version_record

    def record_after_the_database_went_away(**kwargs):
        backend = connection.cursor().connection.info.backend_pid
        settings = connection.settings_dict
        with psycopg.connect(
            host=settings["HOST"], port=settings["PORT"] or 5432, user=settings["USER"], dbname=settings["NAME"]
        ) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
        return record(**kwargs)

    monkeypatch.setattr(services, "version_record", record_after_the_database_went_away)
    with pytest.raises(DatabaseError):
        services.config_replace(document=changed, author=Author(source="api"))
    connection.close()

    assert config_version_read() == served_version
    assert ConfigRevision.objects.count() == 1
    assert config_document_get() == served_document
    assert compiler.compile_plan().services["cart"].timeout_ms == document["services"]["cart"]["timeout_ms"]
