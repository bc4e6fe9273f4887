"""``manage.py gateway check FILE | import FILE | export [FILE]`` (contract section 1)."""

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
        actions.add_parser("import", help="Check FILE, then replace the configuration with it.").add_argument("file")
        export = actions.add_parser("export", help="Write the configuration as YAML (stdout without FILE).")
        export.add_argument("file", nargs="?")
        spec = actions.add_parser(
            "spec", help="Write the orchestration specification as Markdown (contract section 6)."
        )
        spec.add_argument("-o", "--output", help="write to this file instead of stdout")
        spec.add_argument("--endpoint", help="only this endpoint (its name)")

    def handle(self, *args: Any, action: str, file: str | None = None, **options: Any) -> None:
        if action == "export":
            self._export(file)
            return
        if action == "spec":
            self._spec(options.get("output"), options.get("endpoint"))
            return
        assert file is not None
        document = self._load(file)
        if action == "check":
            self.stdout.write(f"{file}: OK ({_summary(document)})")
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

    def _export(self, file: str | None) -> None:
        from registry.selectors import config_document_get

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
