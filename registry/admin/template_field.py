"""A form field for JSON-shaped templates, written as JSON or YAML text."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from registry.config.loading import ConfigSyntaxError, value_parse


class _Typed(str):
    """Text as the user typed it (distinguishes it from a string template value)."""


class TemplateTextField(forms.CharField):
    """Shows the value as indented JSON (key order kept); accepts JSON or YAML."""

    widget = forms.Textarea(attrs={"rows": 12, "cols": 80, "style": "font-family: monospace"})

    def __init__(self, *, source: str, **kwargs: Any) -> None:
        self.source = source
        super().__init__(strip=False, **kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, _Typed):
            return str(value)
        return json.dumps(value, indent=2, ensure_ascii=False)

    def to_python(self, value: Any) -> Any:
        text = super().to_python(value) or ""
        if text.strip() == "":
            return None
        try:
            return value_parse(text, source=self.source)
        except ConfigSyntaxError as exc:
            raise forms.ValidationError(str(exc), code="syntax") from None

    def bound_data(self, data: Any, initial: Any) -> Any:
        return _Typed(data or "")  # re-show what was typed, not a re-dump

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            return bool(self.to_python(data) != initial)
        except forms.ValidationError:
            return True
