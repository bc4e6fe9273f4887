"""Files that are not YAML mappings are one clear line, never a traceback."""

from __future__ import annotations

import pytest

from registry.config.loading import ConfigSyntaxError, config_parse, config_read


def error_of(text: str) -> str:
    with pytest.raises(ConfigSyntaxError) as caught:
        config_parse(text)
    return str(caught.value)


def test_not_yaml_names_the_line_and_column():
    text = "version: 1\nlayer:\n  name: [Checkout\n  base_path: /v1\n"
    assert error_of(text) == ("gateway.yaml: not valid YAML: expected ',' or ']', but got ':' at line 4, column 12")


def test_bad_indentation():
    assert error_of("version: 1\nlayer: x\n  name: y\n") == (
        "gateway.yaml: not valid YAML: mapping values are not allowed here at line 3, column 7"
    )


def test_not_a_mapping():
    assert error_of("- version: 1\n") == (
        "gateway.yaml: the top level must be a mapping (version, layer, services, endpoints), got a list"
    )


def test_empty_file():
    assert error_of("") == (
        "gateway.yaml: the top level must be a mapping (version, layer, services, endpoints), got nothing"
    )


def test_duplicate_keys_are_refused():
    assert error_of("services:\n  cart: {}\n  cart: {}\n") == (
        "gateway.yaml: not valid YAML: duplicate key 'cart' at line 3, column 3"
    )


def test_json_is_accepted():
    assert config_parse('{"version": 1, "services": {}}') == {"version": 1, "services": {}}


def test_missing_file(tmp_path):
    with pytest.raises(ConfigSyntaxError) as caught:
        config_read(tmp_path / "nope.yaml")
    assert str(caught.value) == f"{tmp_path / 'nope.yaml'}: cannot read: No such file or directory"
