"""``cardcore extract``: decode legacy extracts and inspect copybook layouts from the shell.

The ``cardcore`` host mounts ``app`` under the name ``extract``; it also runs on its own. Bad
input (a missing file, a copybook syntax error, invalid data, a malformed ``--record-type``)
ends with a one-line ``error: ...`` on stderr and exit code 1, never a traceback: the people
running migrations need to know which record and field to look at, not where our code was.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TextIO

import typer
from rich.console import Console
from rich.table import Table

from cardcore_copybook.decoder import RecordStream, RecordTypeRule, iter_records
from cardcore_copybook.errors import CopybookError
from cardcore_copybook.layout import layout_table
from cardcore_copybook.model import Copybook
from cardcore_copybook.parser import parse_copybook

app = typer.Typer(
    help="Decode legacy mainframe extracts with their COBOL copybooks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_WIDE_TABLE_COLUMNS = 160  # when stdout is not a terminal, do not squeeze names to 80 columns


class OutputFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"


CopybookOption = Annotated[
    Path, typer.Option("--copybook", help="Fixed-format COBOL copybook (.cpy).", dir_okay=False)
]


@app.command("decode")
def decode_command(
    copybook: CopybookOption,
    data: Annotated[Path, typer.Option("--data", help="The data file to decode.", dir_okay=False)],
    codepage: Annotated[
        str, typer.Option("--codepage", help="cp037, cp500, cp1047, cp1140, ascii or latin-1.")
    ] = "cp037",
    record_type: Annotated[
        list[str] | None,
        typer.Option(
            "--record-type",
            help="FIELD=VALUE:GROUP - records whose FIELD is VALUE use GROUP's layout. Repeatable.",
        ),
    ] = None,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="jsonl, or csv with a header row.")
    ] = OutputFormat.JSONL,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write here instead of stdout.", dir_okay=False)
    ] = None,
    rdw: Annotated[
        bool, typer.Option("--rdw", help="Variable-length records, each after a 4-byte RDW.")
    ] = False,
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Report invalid records on stderr and go on.")
    ] = False,
) -> None:
    """Decode every record of DATA; numbers with decimals are written as exact strings."""
    with _errors_as_messages():
        rules = [RecordTypeRule.parse(rule) for rule in record_type or []]
        records = iter_records(
            _read_copybook(copybook),
            data,
            rules=rules,
            codepage=codepage,
            framing="rdw" if rdw else "fixed",
            on_error="skip" if skip_bad else "raise",
        )
        with _output(out) as stream:
            if output_format is OutputFormat.CSV:
                _write_csv(records, stream)
            else:
                for record in records:
                    stream.write(json.dumps(record, default=str, ensure_ascii=False) + "\n")
        for error in records.bad_records:
            typer.echo(f"skipped: {error}", err=True)
        if records.bad_records:
            typer.echo(
                f"{records.records_read - len(records.bad_records)} records decoded, "
                f"{len(records.bad_records)} skipped",
                err=True,
            )


@app.command("layout")
def layout_command(copybook: CopybookOption) -> None:
    """Print every item's offset, length and type, as the decoder sees them."""
    with _errors_as_messages():
        rows = layout_table(_read_copybook(copybook))
    table = Table(title=str(copybook))
    for column in (
        "Name",
        "Level",
        "Offset",
        "Length",
        "Type",
        "Digits",
        "Scale",
        "Signed",
        "Usage",
    ):
        table.add_column(column, justify="right" if column in ("Offset", "Length") else "left")
    for row in rows:
        table.add_row(
            row.name,
            f"{row.level:02d}",
            str(row.offset),
            str(row.length),
            row.type,
            "" if row.digits is None else str(row.digits),
            "" if row.scale is None else str(row.scale),
            "yes" if row.signed else "",
            row.usage or "",
        )
    Console(width=None if sys.stdout.isatty() else _WIDE_TABLE_COLUMNS).print(table)


def _read_copybook(path: Path) -> Copybook:
    return parse_copybook(path.read_text(encoding="utf-8", errors="replace"))


def _write_csv(records: RecordStream, stream: TextIO) -> None:
    """One header with the union of every layout's columns; absent fields are left empty."""
    writer = csv.DictWriter(stream, fieldnames=records.columns, restval="")
    writer.writeheader()
    writer.writerows(records)


@contextmanager
def _output(path: Path | None) -> Iterator[TextIO]:
    if path is None:
        with nullcontext(sys.stdout) as stdout:
            yield stdout
    else:
        with path.open("w", encoding="utf-8", newline="") as file:
            yield file


@contextmanager
def _errors_as_messages() -> Iterator[None]:
    try:
        yield
    except CopybookError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    except OSError as error:
        typer.echo(f"error: {error.strerror or error}: {error.filename}", err=True)
        raise typer.Exit(1) from None
