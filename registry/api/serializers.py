"""Serializers of the admin API. The document's validation is ``config_check``, the
same validator ``gateway check`` and the admin forms use: one validator, three doors."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from registry import models
from registry.config.problems import Problem
from registry.config.readiness import compile_problems


class DocumentSerializer(serializers.Serializer[Any]):
    """A whole configuration document (``gateway.yaml`` as JSON). ``problems`` after
    ``is_valid()`` lists every problem with its location."""

    def to_internal_value(self, data: Any) -> Any:
        return data

    def validate(self, attrs: Any) -> Any:
        self.problems: list[Problem] = compile_problems(attrs)
        if self.problems:
            raise serializers.ValidationError("invalid configuration")
        return attrs

    def problems_body(self) -> dict[str, Any]:
        return {"problems": [{"location": p.location, "message": p.message} for p in self.problems]}


class ProblemSerializer(serializers.Serializer[Problem]):
    location = serializers.CharField()
    message = serializers.CharField()


class VersionSerializer(serializers.ModelSerializer[models.ConfigRevision]):
    """A version's metadata (the list); the detail adds the document and the diff."""

    class Meta:
        model = models.ConfigRevision
        fields = ["number", "created_at", "who", "source", "comment", "summary"]


class VersionDetailSerializer(VersionSerializer):
    diff = serializers.SerializerMethodField()

    class Meta(VersionSerializer.Meta):
        fields = [*VersionSerializer.Meta.fields, "document", "diff"]

    def get_diff(self, revision: models.ConfigRevision) -> str:
        from registry.change_selectors import version_diff

        return version_diff(revision)


class ConfigSerializer(serializers.Serializer[Any]):
    version = serializers.IntegerField()
    config = serializers.DictField()


class VersionNumberSerializer(serializers.Serializer[Any]):
    version = serializers.IntegerField()


class DiffSerializer(serializers.Serializer[Any]):
    changed = serializers.BooleanField()
    diff = serializers.CharField(allow_blank=True)


class BreakerActionSerializer(serializers.Serializer[Any]):
    action = serializers.ChoiceField(choices=["reset", "force_open", "force_closed"])
    reason = serializers.CharField(max_length=2000)


class DependentSerializer(serializers.Serializer[Any]):
    """One call to the service: contract section 6's blast radius (registry.blast_radius)."""

    endpoint = serializers.CharField()
    method = serializers.CharField()
    path = serializers.CharField(help_text="The client's path, base path included")
    call = serializers.CharField()
    order = serializers.CharField(help_text='The call sequence\'s Order, e.g. "2 (parallel)"')
    required = serializers.BooleanField()  # type: ignore[assignment]  # a field named like Field.required
    failure = serializers.CharField(help_text="The status the endpoint answers when this call fails")
    fallback = serializers.CharField(help_text='"Fail request" for a required call, else what it returns')
    fallbackValue = serializers.JSONField(allow_null=True)  # the JSON key of the contract's shape
    responseFields = serializers.ListField(child=serializers.CharField())


class DependentsSerializer(serializers.Serializer[Any]):
    service = serializers.CharField()
    dependents = DependentSerializer(many=True)
