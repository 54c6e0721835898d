"""The ``instrument`` command: ``plan export|import|lint|diff|check|coverage`` and ``collect``.

Human output by default (colour only on a terminal that supports it, never with NO_COLOR), ``--json`` for machines.
Exit codes: 0 clean, 1 findings (lint findings, breaking changes, a stale plan), 2 bad input or usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from instrument.plan._coverage import coverage, seen_in_record, seen_in_store
from instrument.plan._diff import BREAKING, Bump, Change, bumps, diff, is_breaking
from instrument.plan._export import FORMATS, format_of, iglu_files, render
from instrument.plan._import import import_plan
from instrument.plan._lint import lint
from instrument.plan._model import PlanError, load_plan, plan_of_document, plan_of_module, read_document

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


class _Out:
    """Writes lines, coloured only when the stream is a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.colour = stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"

    def paint(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.colour else text

    def line(self, text: str = "") -> None:
        self.stream.write(text + "\n")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="instrument", description="Tracking-plan tools and a local collector.")
    commands = parser.add_subparsers(dest="command", required=True)

    plan = commands.add_parser("plan", help="export, lint, diff and check the tracking plan of a module")
    plan_commands = plan.add_subparsers(dest="plan_command", required=True)
    export = plan_commands.add_parser("export", help="export the plan of MODULE")
    export.add_argument("module", metavar="MODULE", help="an importable module, e.g. myapp.analytics")
    export.add_argument("--format", default="segment", help=f"one of {', '.join(FORMATS)} (default: segment)")
    export.add_argument(
        "-o", "--output", metavar="PATH", help="write to PATH instead of standard output (a directory for iglu)"
    )
    export.add_argument("--vendor", help="the Iglu vendor (default: the imported plan's, else com.example)")

    import_cmd = plan_commands.add_parser(
        "import", help="write a typed Python module of a Segment, Typewriter, Iglu or rudder-cli plan"
    )
    import_cmd.add_argument(
        "source", metavar="PLAN", help="Segment rules or Typewriter plan.json, Iglu schema(s), rudder-cli YAML"
    )
    import_cmd.add_argument("-o", "--output", metavar="MODULE_PY", help="write to MODULE_PY instead of standard output")

    lint_cmd = plan_commands.add_parser("lint", help="lint the Track and Identify classes of MODULE")
    lint_cmd.add_argument("module", metavar="MODULE")
    lint_cmd.add_argument("--ignore", action="append", default=[], metavar="CODE", help="skip a finding code")
    lint_cmd.add_argument("--json", action="store_true", help="machine-readable output")

    diff_cmd = plan_commands.add_parser("diff", help="classify the changes from OLD to NEW (files or modules)")
    diff_cmd.add_argument("old", metavar="OLD")
    diff_cmd.add_argument("new", metavar="NEW")
    diff_cmd.add_argument("--json", action="store_true", help="machine-readable output")

    check = plan_commands.add_parser("check", help="exit 1 when the committed plan is stale (the CI gate)")
    check.add_argument("module", metavar="MODULE")
    check.add_argument("--against", required=True, metavar="PLAN_JSON", help="the committed export")
    check.add_argument("--json", action="store_true", help="machine-readable output")

    cover = plan_commands.add_parser("coverage", help="which planned events were never seen (exit 1 if any)")
    cover.add_argument("plan", metavar="PLAN", help="a module or an exported plan file")
    cover.add_argument(
        "--events",
        action="append",
        default=[],
        metavar="RECORD",
        help="a test run's record (pytest --analytics-record=RECORD); repeatable",
    )
    cover.add_argument(
        "--db", action="append", default=[], metavar="STORE", help="a collector's store (collect --db); repeatable"
    )
    cover.add_argument("--json", action="store_true", help="machine-readable output")

    collect = commands.add_parser("collect", help="run a local Segment-compatible collector with a live page")
    collect.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    collect.add_argument("--port", type=int, default=8765, help="port (default: 8765; 0 picks a free one)")
    collect.add_argument("--db", default=":memory:", help="SQLite file for the events (default: in memory)")
    collect.add_argument("--plan", metavar="MODULE_OR_FILE", help="validate events against this plan")
    collect.add_argument("--write-key", help="accept only this write key (default: any non-empty key)")
    return parser


def _write(path: Path, text: str, *, parents: bool = False) -> None:
    try:
        if parents:
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise PlanError(f"{path}: cannot write: {error.strerror or error}") from None


def _export(args: argparse.Namespace, out: _Out) -> int:
    if args.format not in FORMATS:
        raise PlanError(f"unknown format {args.format!r} (choose from {', '.join(FORMATS)})")
    plan = plan_of_module(args.module)
    if args.format == "iglu":
        if not args.output:
            raise PlanError("the iglu format is a directory of schemas: give -o DIR")
        for relative, text in iglu_files(plan, args.vendor).items():
            _write(Path(args.output) / relative, text, parents=True)
        return EXIT_OK
    text = render(plan, args.format)
    if args.output:
        _write(Path(args.output), text)
    else:
        out.stream.write(text)
    return EXIT_OK


def _import(args: argparse.Namespace, out: _Out) -> int:
    module = Path(args.output).stem if args.output else "imported_plan"
    fmt, text = import_plan(args.source, module)
    if args.output:
        _write(Path(args.output), text)
        out.line(f"wrote {args.output} ({fmt}): export it back with `instrument plan export {module} --format {fmt}`")
    else:
        out.stream.write(text)
    return EXIT_OK


def _lint(args: argparse.Namespace, out: _Out) -> int:
    findings = [f for f in lint(args.module) if f.code not in set(args.ignore)]
    if args.json:
        out.line(json.dumps({"findings": [f.as_dict() for f in findings]}, indent=2))
    else:
        for finding in findings:
            out.line(f"{finding.file}:{finding.line}: {out.paint(finding.code, '33')} {finding.message}")
        out.line(out.paint("no findings", "32") if not findings else f"{len(findings)} finding(s)")
    return EXIT_FINDINGS if findings else EXIT_OK


def _print_changes(changes: list[Change], out: _Out, versions: list[Bump] | None = None) -> None:
    if not changes:
        out.line("no changes")
        return
    rows = [("severity", "schemaver", "change", "rule", "pointer", "detail")]
    rows += [(c.severity, c.schemaver, c.what, c.rule, c.pointer or "-", c.detail) for c in changes]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for index, row in enumerate(rows):
        cells = [text.ljust(width) for text, width in zip(row, widths, strict=False)]
        if index == 0:
            cells[0] = out.paint(cells[0], "1")
        elif row[0] == BREAKING:
            cells[0] = out.paint(cells[0].upper(), "31;1")
        else:
            cells[0] = out.paint(cells[0], "32")
        out.line(f"{'  '.join(cells)}  {row[5]}".rstrip())
        caveat = changes[index - 1].caveat if index else ""
        if caveat:
            out.line(f"{' ' * (sum(widths) + 2 * len(widths))}note: {caveat}")
    for version in versions or []:
        out.line(f"next version of {version.rule}: {version.old or 'new'} -> {version.new} ({version.schemaver})")
    breaking = sum(c.severity == BREAKING for c in changes)
    out.line(f"{breaking} breaking, {len(changes) - breaking} compatible")


def _diff(args: argparse.Namespace, out: _Out) -> int:
    old, new = load_plan(args.old), load_plan(args.new)
    changes, versions = diff(old, new), bumps(old, new)
    if args.json:
        report = {
            "breaking": is_breaking(changes),
            "changes": [c.as_dict() for c in changes],
            "versions": [v.as_dict() for v in versions],
        }
        out.line(json.dumps(report, indent=2))
    else:
        _print_changes(changes, out, versions)
    return EXIT_FINDINGS if is_breaking(changes) else EXIT_OK


def _check(args: argparse.Namespace, out: _Out) -> int:
    path = Path(args.against)
    committed, data = read_document(path)
    old = load_plan(str(path)) if format_of(data) == "typewriter" else plan_of_document(data, str(path))
    new = plan_of_module(args.module)
    current = render(new, format_of(data))
    stale = current != committed
    changes = diff(old, new) if stale else []
    if args.json:
        out.line(json.dumps({"stale": stale, "changes": [c.as_dict() for c in changes]}, indent=2))
    elif stale:
        _print_changes(changes, out, bumps(old, new)) if changes else out.line("descriptions or formatting changed")
        out.line(
            out.paint(f"{path} is stale", "31;1")
            + f": run `instrument plan export {args.module} --format {format_of(data)} -o {path}` and commit it"
        )
    else:
        out.line(out.paint(f"{path} is up to date", "32"))
    return EXIT_FINDINGS if stale else EXIT_OK


def _coverage(args: argparse.Namespace, out: _Out) -> int:
    if not args.events and not args.db:
        raise PlanError("plan coverage needs --events RECORD (a test run) or --db STORE (a collector), or both")
    plan = load_plan(args.plan)
    seen: set[tuple[str, str]] = set()
    for record in args.events:
        seen |= seen_in_record(Path(record))
    for store in args.db:
        seen |= seen_in_store(Path(store), plan)
    result = coverage(plan, seen)
    if args.json:
        out.line(json.dumps(result.as_dict(), indent=2))
    else:
        out.line(f"{result.seen} of {result.planned} planned events seen")
        if result.unseen:
            out.line(out.paint(f"never seen ({len(result.unseen)}):", "31;1"))
            for label in result.unseen:
                out.line(f"  {label}")
        if result.unplanned:
            out.line(f"seen but not planned ({len(result.unplanned)}):")
            for event in result.unplanned:
                out.line(f"  {event}")
    return EXIT_FINDINGS if result.unseen else EXIT_OK


def _collect(args: argparse.Namespace, out: _Out) -> int:
    try:
        from instrument.plan._collect import Collector
    except ModuleNotFoundError as error:
        raise PlanError(f"instrument collect needs {error.name!r}: pip install 'instrument[collect]'") from None
    plan = load_plan(args.plan) if args.plan else None
    try:
        collector = Collector(plan=plan, db=args.db, host=args.host, port=args.port, write_key=args.write_key)
    except OSError as error:
        raise PlanError(f"cannot listen on {args.host}:{args.port}: {error.strerror or error}") from None
    rules = f", validating against {len(plan.rules)} rules of {plan.origin}" if plan else ""
    out.line(f"collecting on {collector.url}{rules} (Ctrl-C stops)")
    out.stream.flush()
    try:
        collector.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        collector.stop()
    return EXIT_OK


_COMMANDS = {"export": _export, "import": _import, "lint": _lint, "diff": _diff, "check": _check, "coverage": _coverage}


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run the command line; returns the exit code (0 clean, 1 findings, 2 bad input or usage)."""
    out, err = _Out(stdout or sys.stdout), _Out(stderr or sys.stderr)
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse printed the usage error already
        return int(exit_.code or 0)
    command: Any = _collect if args.command == "collect" else _COMMANDS[args.plan_command]
    try:
        return int(command(args, out))
    except PlanError as error:
        err.line(f"instrument: error: {error}")
        return EXIT_USAGE
    except Exception as error:  # never a traceback for bad input: name what failed
        if os.environ.get("INSTRUMENT_DEBUG"):
            raise
        err.line(f"instrument: error: {type(error).__name__}: {error} (set INSTRUMENT_DEBUG=1 for a traceback)")
        return EXIT_USAGE
