"""Put validator problems on the admin form fields they are about."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django import forms

from registry.config.problems import Problem


def field_for(location: str, prefix: str, fields: Mapping[str, str]) -> str | None:
    """The form field of ``location`` below ``prefix``: the longest matching path wins."""
    rest = location[len(prefix) :].lstrip(".")
    for path in sorted(fields, key=len, reverse=True):
        if rest == path or rest.startswith((path + ".", path + "[")):
            return fields[path]
    return None


def add_problems(
    form: forms.BaseForm, problems: Iterable[Problem], prefix: str, fields: Mapping[str, str]
) -> list[Problem]:
    """Add each problem (its full text, location included) to its field; return the rest."""
    unplaced: list[Problem] = []
    for problem in problems:
        name = field_for(problem.location, prefix, fields)
        if name is not None and name in form.fields:
            if name not in form.errors or str(problem) not in form.errors[name]:
                form.add_error(name, str(problem))
        else:
            unplaced.append(problem)
    return unplaced
