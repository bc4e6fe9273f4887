"""``manage.py gateway check | import | export | diff | history | rollback`` (contract sections 1 and 5).

Exit codes: 0 done (``diff``: nothing would change), 1 a problem (``diff``: something
would change), 2 a problem in ``diff``'s FILE, 3 ``--expect-version`` did not match.
"""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any, NoReturn

from django.core.management.base import BaseCommand

from registry.config.dumping import config_dump
from registry.config.loading import ConfigSyntaxError, config_read
from registry.config.plan import plan_from_document
from registry.config.problems import ConfigInvalid
from registry.config.validation import config_check


class Command(BaseCommand):
    help = "Check, import or export the orchestration configuration (gateway.yaml)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser("check", help="Validate FILE without touching the database.").add_argument("file")
        imports = actions.add_parser("import", help="Check FILE, then replace the configuration with it.")
        imports.add_argument("file")
        imports.add_argument("--comment", default="", help="Recorded with the new version.")
        imports.add_argument("--expect-version", type=int, help="Exit 3, writing nothing, unless the version is N.")
        imports.add_argument("--dry-run", action="store_true", help="Check and print the diff; write nothing.")
        export = actions.add_parser("export", help="Write the configuration as YAML (stdout without FILE).")
        export.add_argument("file", nargs="?")
        export.add_argument("--version", type=int, dest="number", help="Version N's document instead.")
        spec = actions.add_parser(
            "spec", help="Write the orchestration specification as Markdown (contract section 6)."
        )
        spec.add_argument("-o", "--output", help="write to this file instead of stdout")
        spec.add_argument("--endpoint", help="only this endpoint (its name)")
        diff = actions.add_parser("diff", help="What importing FILE would change (exit 1 when something would).")
        diff.add_argument("file")
        history = actions.add_parser("history", help="One line per version, newest first.")
        history.add_argument("--limit", type=int, default=20)
        rollback = actions.add_parser("rollback", help="A new version whose configuration equals version N's.")
        rollback.add_argument("number", type=int)
        rollback.add_argument("--comment", default="")

    def handle(self, *args: Any, action: str, file: str | None = None, **options: Any) -> None:
        if action == "export":
            self._export(file, options.get("number"))
            return
        if action in ("diff", "history", "rollback"):
            from registry.change_commands import run_change_command

            run_change_command(self, action, file=file, **options)
            return
        if action == "spec":
            self._spec(options.get("output"), options.get("endpoint"))
            return
        assert file is not None
        document = self._load(file)
        if action == "check":
            self.stdout.write(f"{file}: OK ({_summary(document)})")
        elif options.get("dry_run") or options.get("expect_version") is not None or options.get("comment"):
            from registry.change_commands import run_import

            run_import(self, file, document, **options)
        else:
            self._import(file, document)

    def _load(self, file: str) -> dict[str, Any]:
        """The checked document, or exit 1 after printing every problem."""
        try:
            document = config_read(file)
        except ConfigSyntaxError as exc:
            self._fail([str(exc)])
        problems = config_check(document)
        if problems:
            self._fail([str(problem) for problem in problems])
        plan_from_document(document, version="check")  # compiles every template once more
        return document

    def _fail(self, lines: list[str]) -> NoReturn:
        """Every line to stderr and exit 1: no traceback, no "CommandError:" prefix."""
        for line in lines:
            self.stderr.write(line)
        raise SystemExit(1)

    def _import(self, file: str, document: dict[str, Any]) -> None:
        from registry.services import config_import  # the database only when importing

        try:
            version = config_import(document=document)
        except ConfigInvalid as exc:
            self._fail([str(problem) for problem in exc.problems])
        self.stdout.write(f"{file}: imported ({_summary(document)}); configuration version {version}")

    def _export(self, file: str | None, number: int | None = None) -> None:
        from registry.selectors import config_document_get

        if number is not None:
            from registry.change_commands import version_document

            text = config_dump(version_document(self, number))
        else:
            text = config_dump(config_document_get())
        if file is None:
            self.stdout.write(text, ending="")
        else:
            Path(file).write_text(text, encoding="utf-8")
            self.stderr.write(f"{file}: exported")

    def _spec(self, output: str | None, endpoint: str | None) -> None:
        import datetime as dt

        from registry.compiler import compile_plan
        from registry.spec import spec_build, spec_markdown

        plan = compile_plan()
        try:
            spec = spec_build(plan, date=dt.date.today().isoformat(), endpoint=endpoint)
        except KeyError:
            names = ", ".join(e.name for e in plan.endpoints) or "none"
            self._fail([f"--endpoint: no endpoint named {endpoint!r} (endpoints: {names})"])
        text = spec_markdown(spec)
        if output is None:
            self.stdout.write(text, ending="")
        else:
            Path(output).write_text(text, encoding="utf-8")
            self.stderr.write(f"{output}: specification written")


def _summary(document: dict[str, Any]) -> str:
    endpoints = document["endpoints"]
    calls = sum(len(endpoint["calls"]) for endpoint in endpoints)
    return f"{len(document['services'])} services, {len(endpoints)} endpoints, {calls} calls"
