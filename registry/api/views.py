"""The configuration half of the admin API: config (ETag/If-Match), diff, versions,
rollback, a service's dependents. Views parse and answer; ``registry.services`` writes."""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response

from registry import models
from registry.api import serializers as s
from registry.api.base import (
    CONFIG_READ_PERMS,
    CONFIG_WRITE_PERMS,
    ROLLBACK_PERMS,
    SERVICE_READ_PERMS,
    AdminApiView,
    error_response,
    not_found,
)
from registry.change_selectors import config_diff, service_dependents, version_diff
from registry.config.problems import ConfigInvalid
from registry.selectors import config_document_get, config_snapshot
from registry.services import config_replace, config_rollback
from registry.versioning import Author, VersionConflict, version_current

_ETAG = re.compile(r'^\s*(?:W/)?"(\d+)"\s*$')
_PROBLEMS = OpenApiResponse(description='The envelope with "problems": [{"location", "message"}]')
_ERRORS = {code: OpenApiResponse(description="The error envelope") for code in (401, 403, 429)}


def _problem_list(exc: ConfigInvalid) -> dict[str, Any]:
    return {"problems": [{"location": p.location, "message": p.message} for p in exc.problems]}


def _etag(number: int) -> dict[str, str]:
    return {"ETag": f'"{number}"'}


def _problems(request: Request, problems: dict[str, Any]) -> Response:
    """400 with every problem: the envelope, and ``problems`` beside it (contract section 5)."""
    count = len(problems["problems"])
    return error_response(request, 400, f"The configuration has {count} problem(s)", code="INVALID_CONFIG", **problems)


class ConfigView(AdminApiView):
    required_perms = {"GET": CONFIG_READ_PERMS, "HEAD": CONFIG_READ_PERMS, "PUT": CONFIG_WRITE_PERMS}

    @extend_schema(responses={200: s.ConfigSerializer, **_ERRORS})
    def get(self, request: Request) -> Response:
        with config_snapshot():  # the number and the document of one committed state
            number, document = version_current(), config_document_get()
        return Response({"version": number, "config": document}, headers=_etag(number))

    @extend_schema(
        request=dict,
        responses={200: s.VersionNumberSerializer, 400: OpenApiResponse(description="problems"), **_ERRORS},
    )
    def put(self, request: Request) -> Response:
        if_match = request.headers.get("If-Match")
        if not if_match:
            return error_response(request, 428, 'Send If-Match: "N" with the version you edited (GET config)')
        match = _ETAG.match(if_match)
        serializer = s.DocumentSerializer(data=request.data)
        if not serializer.is_valid():
            return _problems(request, serializer.problems_body())
        expected = int(match.group(1)) if match else -1
        author = Author(source=models.VersionSource.API, user=request.user, comment=_comment(request))
        try:
            revision = config_replace(document=serializer.validated_data, author=author, expect_version=expected)
        except VersionConflict as exc:
            return error_response(request, 412, f"The configuration changed: it is at version {exc.current}")
        except ConfigInvalid as exc:
            return _problems(
                request, {"problems": [{"location": p.location, "message": p.message} for p in exc.problems]}
            )
        return Response({"version": revision.number}, headers=_etag(revision.number))


def _comment(request: Request) -> str:
    """A change's comment: the ``X-Change-Comment`` header (the body is the document)."""
    return request.headers.get("X-Change-Comment", "")[:5000]


class ConfigDiffView(AdminApiView):
    required_perms = {"POST": CONFIG_READ_PERMS}

    @extend_schema(request=dict, responses={200: s.DiffSerializer, 400: OpenApiResponse(description="problems")})
    def post(self, request: Request) -> Response:
        serializer = s.DocumentSerializer(data=request.data)
        if not serializer.is_valid():
            return _problems(request, serializer.problems_body())
        with config_snapshot():
            text = config_diff(serializer.validated_data, current_version=version_current())
        return Response({"changed": bool(text), "diff": text})


class VersionPagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


class VersionListView(AdminApiView, generics.ListAPIView[models.ConfigRevision]):
    required_perms = {"GET": CONFIG_READ_PERMS, "HEAD": CONFIG_READ_PERMS}
    serializer_class = s.VersionSerializer
    pagination_class = VersionPagination
    queryset = models.ConfigRevision.objects.order_by("-number").defer("document")


class VersionDetailView(AdminApiView):
    required_perms = {"GET": CONFIG_READ_PERMS, "HEAD": CONFIG_READ_PERMS}

    @extend_schema(responses={200: s.VersionDetailSerializer, 404: OpenApiResponse(description="no such version")})
    def get(self, request: Request, number: int) -> Response:
        revision = models.ConfigRevision.objects.filter(number=number).first()
        if revision is None:
            return not_found(request, f"There is no version {number}")
        data = s.VersionSerializer(revision).data
        return Response({**data, "document": revision.document, "diff": version_diff(revision)})


class VersionRollbackView(AdminApiView):
    required_perms = {"POST": ROLLBACK_PERMS}

    @extend_schema(
        request=None, responses={201: s.VersionNumberSerializer, 400: OpenApiResponse(), 404: OpenApiResponse()}
    )
    def post(self, request: Request, number: int) -> Response:
        comment = request.data.get("comment", "") if isinstance(request.data, dict) else ""
        author = Author(source=models.VersionSource.ROLLBACK, user=request.user, comment=str(comment))
        try:
            with transaction.atomic():
                revision = config_rollback(number=number, author=author)
        except models.ConfigRevision.DoesNotExist:
            return not_found(request, f"There is no version {number}")
        except ConfigInvalid as exc:
            return _problems(request, _problem_list(exc))
        return Response({"version": revision.number}, status=status.HTTP_201_CREATED, headers=_etag(revision.number))


class ServiceDependentsView(AdminApiView):
    required_perms = {"GET": SERVICE_READ_PERMS, "HEAD": SERVICE_READ_PERMS}

    @extend_schema(responses={200: s.DependentsSerializer, 404: OpenApiResponse(description="The error envelope")})
    def get(self, request: Request, name: str) -> Response:
        dependents = service_dependents(name=name)
        if dependents is None:
            return not_found(request, f"There is no service {name!r}")
        return Response({"service": name, "dependents": dependents})
