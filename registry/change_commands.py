"""The change-management half of ``manage.py gateway`` (contract section 5):
``diff``, ``import --dry-run/--expect-version/--comment``, ``history``, ``rollback``,
``export --version``. Not a command of its own: ``gateway`` calls into it."""

from __future__ import annotations

from typing import Any, NoReturn, cast

from django.core.management.base import BaseCommand

from registry.config.changes import canonical, unified_diff
from registry.config.loading import ConfigSyntaxError, config_read
from registry.config.problems import ConfigInvalid
from registry.config.validation import config_check

EXIT_PROBLEM, EXIT_DIFF_PROBLEM, EXIT_CONFLICT = 1, 2, 3


def run_change_command(command: BaseCommand, action: str, *, file: str | None, **options: Any) -> None:
    if action == "diff":
        assert file is not None
        _diff(command, file)
    elif action == "history":
        _history(command, options["limit"])
    else:
        _rollback(command, options["number"], options.get("comment", ""))


def _fail(command: BaseCommand, lines: list[str], code: int) -> NoReturn:
    for line in lines:
        command.stderr.write(line)
    raise SystemExit(code)


def _current_diff(document: dict[str, Any], label: str) -> str:
    from registry.selectors import config_document_get
    from registry.versioning import version_current

    return unified_diff(config_document_get(), canonical(document), labels=(f"version {version_current()}", label))


def _diff(command: BaseCommand, file: str) -> None:
    """Exit 0 when importing FILE would change nothing, 1 when it would, 2 on a problem."""
    try:
        document = config_read(file)
    except ConfigSyntaxError as exc:
        _fail(command, [str(exc)], EXIT_DIFF_PROBLEM)
    problems = config_check(document)
    if problems:
        _fail(command, [str(problem) for problem in problems], EXIT_DIFF_PROBLEM)
    text = _current_diff(document, file)
    command.stdout.write(text, ending="")
    if text:
        raise SystemExit(1)


def run_import(command: BaseCommand, file: str, document: dict[str, Any], **options: Any) -> None:
    from registry.models import VersionSource
    from registry.services import config_replace
    from registry.versioning import Author, VersionConflict, version_current

    expected = options.get("expect_version")
    if options.get("dry_run"):
        if expected is not None and version_current() != expected:
            _fail(command, [f"{file}: the configuration is at version {version_current()}, not {expected}"], 3)
        text = _current_diff(document, file)
        command.stdout.write(text or f"{file}: no change\n", ending="")
        return
    author = Author(source=VersionSource.IMPORT, comment=options.get("comment") or "")
    try:
        revision = config_replace(document=document, author=author, expect_version=expected)
    except VersionConflict as exc:
        _fail(command, [f"{file}: not imported: {exc}"], EXIT_CONFLICT)
    except ConfigInvalid as exc:
        _fail(command, [str(problem) for problem in exc.problems], EXIT_PROBLEM)
    command.stdout.write(f"{file}: imported; configuration version {revision.number}: {revision.summary}")


def _history(command: BaseCommand, limit: int) -> None:
    from registry.models import ConfigRevision

    for revision in ConfigRevision.objects.order_by("-number").defer("document")[: max(limit, 0)]:
        when = revision.created_at.strftime("%Y-%m-%d %H:%M:%S")
        comment = f"  # {revision.comment}" if revision.comment else ""
        line = f"{revision.number:>5}  {when}  {revision.who:<16} {revision.source:<8} {revision.summary}{comment}"
        command.stdout.write(line)


def _rollback(command: BaseCommand, number: int, comment: str) -> None:
    from registry.models import ConfigRevision, VersionSource
    from registry.services import config_rollback
    from registry.versioning import Author

    author = Author(source=VersionSource.ROLLBACK, comment=comment)
    try:
        revision = config_rollback(number=number, author=author)
    except ConfigRevision.DoesNotExist:
        _fail(command, [f"there is no version {number}"], EXIT_PROBLEM)
    except ConfigInvalid as exc:
        lines = [f"version {number} cannot be served now:", *(f"  {p}" for p in exc.problems)]
        _fail(command, lines, EXIT_PROBLEM)
    command.stdout.write(f"rolled back to version {number}: configuration version {revision.number}")


def version_document(command: BaseCommand, number: int) -> dict[str, Any]:
    from registry.models import ConfigRevision

    document = ConfigRevision.objects.filter(number=number).values_list("document", flat=True).first()
    if document is None:
        _fail(command, [f"there is no version {number}"], EXIT_PROBLEM)
    return dict(cast(Any, document))
