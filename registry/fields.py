"""A JSON model field stored as text.

PostgreSQL's ``jsonb`` reorders object keys, and a response template's key order
is part of the stable response contract (and of a byte-identical export), so
templates are kept as JSON text, parsed on load.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.db import models


class JsonTextField(models.TextField[Any, Any]):
    """JSON value kept verbatim (key order included); SQL NULL when ``None``."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        return None if value is None else json.loads(value)

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                return value
        return value

    def get_prep_value(self, value: Any) -> str | None:
        if value is None:
            return None
        return json.dumps(value, ensure_ascii=False)

    def value_to_string(self, obj: models.Model) -> str:
        return json.dumps(self.value_from_object(obj), ensure_ascii=False)

    def formfield(self, **kwargs: Any) -> forms.Field:
        kwargs.pop("max_length", None)
        field = models.Field.formfield(self, **{"form_class": forms.JSONField, **kwargs})
        assert field is not None
        return field
