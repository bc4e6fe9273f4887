"""``manage.py gateway check | import | export``."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from registry import models
from registry.config.dumping import config_dump
from registry.config.schema import DOCUMENT
from registry.config.structure import normalize
from tests.registry.conftest import GOOD_FILE


def run(*args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("gateway", *args, stdout=out, stderr=err)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def test_check_good_file_without_a_database():
    # No `db` fixture: any query here would fail the test.
    assert run("check", str(GOOD_FILE)) == (0, f"{GOOD_FILE}: OK (6 services, 2 endpoints, 7 calls)\n", "")


def test_check_prints_every_problem_and_exits_1(document, write_yaml):
    document["version"] = 2
    document["endpoints"][0]["calls"][2]["path"] = "/quote/{{ crt.id }}"
    document["services"]["tax"]["base_url"] = "tax"
    path = write_yaml(document)
    assert run("check", str(path)) == (
        1,
        "",
        "version: unsupported version 2; must be 1\n"
        "services.tax.base_url: invalid URL 'tax': must be http:// or https:// with a host\n"
        "endpoints[0].calls[2].path: unknown call 'crt'\n",
    )


def test_check_not_yaml_is_one_line(write_yaml):
    path = write_yaml("version: 1\nlayer: x\n  name: y\n")
    assert run("check", str(path)) == (
        1,
        "",
        f"{path}: not valid YAML: mapping values are not allowed here at line 3, column 7\n",
    )


def test_check_not_a_mapping_is_one_line(write_yaml):
    path = write_yaml("[1, 2]\n")
    code, out, err = run("check", str(path))
    assert (code, out) == (1, "")
    assert err == f"{path}: the top level must be a mapping (version, layer, services, endpoints), got a list\n"


@pytest.mark.django_db
def test_import_then_export_round_trips(tmp_path, document):
    assert run("import", str(GOOD_FILE))[0] == 0
    first = tmp_path / "first.yaml"
    assert run("export", str(first))[0] == 0
    assert first.read_text() == config_dump(normalize(document, DOCUMENT))
    models.Endpoint.objects.all().delete()
    models.Service.objects.all().delete()
    models.Layer.objects.all().delete()
    assert run("import", str(first))[0] == 0
    code, second, _ = run("export")
    assert (code, second) == (0, first.read_text())


@pytest.mark.django_db
def test_import_replaces_the_whole_configuration(document, write_yaml):
    run("import", str(GOOD_FILE))
    del document["services"]["tax"]
    document["endpoints"] = document["endpoints"][1:]
    code, out, _ = run("import", str(write_yaml(document)))
    assert code == 0
    assert out.startswith(
        f"{write_yaml(document)}: imported (5 services, 1 endpoints, 2 calls); configuration version 2-"
    )
    assert sorted(models.Service.objects.values_list("name", flat=True)) == [
        "cart",
        "inventory",
        "payment",
        "pricing",
        "shipping",
    ]
    assert list(models.Endpoint.objects.values_list("name", flat=True)) == ["dashboard"]
    assert models.Layer.objects.count() == 1


@pytest.mark.django_db
def test_a_bad_import_changes_nothing(document, write_yaml):
    run("import", str(GOOD_FILE))
    before = run("export")[1]
    document["endpoints"][0]["calls"][2]["path"] = "/quote/{{ crt.id }}"
    assert run("import", str(write_yaml(document))) == (1, "", "endpoints[0].calls[2].path: unknown call 'crt'\n")
    assert run("export")[1] == before
    assert models.ConfigVersion.objects.get().counter == 1


@pytest.mark.django_db
def test_an_import_failing_midway_is_rolled_back(monkeypatch):
    run("import", str(GOOD_FILE))
    before = run("export")[1]
    from registry import importing

    real = importing._endpoint_create

    def fail_on_second(endpoint, position, services):
        if position == 1:
            raise RuntimeError("database went away")
        real(endpoint, position, services)

    monkeypatch.setattr(importing, "_endpoint_create", fail_on_second)
    with pytest.raises(RuntimeError):
        run("import", str(GOOD_FILE))
    assert run("export")[1] == before
    assert models.ConfigVersion.objects.get().counter == 1


@pytest.mark.django_db
def test_import_keeps_api_keys():
    from registry.services import api_key_create

    api_key_create(name="mobile", subject="42")
    run("import", str(GOOD_FILE))
    run("import", str(GOOD_FILE))
    assert list(models.ApiKey.objects.values_list("name", flat=True)) == ["mobile"]


@pytest.mark.django_db
def test_export_of_an_empty_database_is_importable(tmp_path):
    path = tmp_path / "empty.yaml"
    run("export", str(path))
    assert run("check", str(path)) == (0, f"{path}: OK (0 services, 0 endpoints, 0 calls)\n", "")


@pytest.mark.django_db
def test_export_never_holds_secret_values(monkeypatch):
    monkeypatch.setenv("INVENTORY_TOKEN", "s3cr3t-inventory-token-value")
    monkeypatch.setenv("GATEWAY_JWT_SECRET", "s3cr3t-jwt-value")
    run("import", str(GOOD_FILE))
    exported = run("export")[1]
    assert "token_env: INVENTORY_TOKEN" in exported
    assert "s3cr3t" not in exported


@pytest.mark.django_db
def test_body_null_differs_from_no_body(document, write_yaml):
    document["endpoints"][0]["calls"][2]["body"] = None
    run("import", str(write_yaml(document)))
    exported = run("export")[1]
    assert "        path: /quote\n        body: null\n" in exported
    assert "        path: /calculate\n        body:\n" in exported
    assert "        path: /carts/{{ request.body.cartId }}\n        query:" in exported  # no body key at all
