"""Django makes a command of every module in ``management/commands``: only real commands
live there (a helper module there made ``manage.py gateway_changes`` crash)."""

from __future__ import annotations

import pytest
from django.core.management import call_command, get_commands, load_command_class
from django.core.management.base import BaseCommand, CommandError


def test_every_registry_command_module_is_a_command() -> None:
    ours = [name for name, app in get_commands().items() if app == "registry"]
    assert ours == ["gateway"]
    for name in ours:
        assert isinstance(load_command_class("registry", name), BaseCommand)


def test_the_change_helpers_are_not_a_command() -> None:
    with pytest.raises(CommandError, match="Unknown command: 'gateway_changes'"):
        call_command("gateway_changes")
