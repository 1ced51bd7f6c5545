"""CLI: ``layout`` and ``decode`` as the ``cardcore extract`` host runs them."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import typer
from copybook_test_helpers import ccs_detail, ccs_header, ccs_trailer
from typer.testing import CliRunner

from cardcore_copybook import packaged_copybook
from cardcore_copybook.cli import app

RULES = ["TA-REC-TYPE=H:TA-HEADER", "TA-REC-TYPE=D:TA-DETAIL", "TA-REC-TYPE=T:TA-TRAILER"]
runner = CliRunner()


@pytest.fixture
def copybook_path(tmp_path: Path) -> Path:
    path = tmp_path / "ccs_txn_archive.cpy"
    path.write_text(packaged_copybook("ccs_txn_archive"))
    return path


@pytest.fixture
def archive_path(tmp_path: Path) -> Path:
    path = tmp_path / "archive.dat"
    path.write_bytes(ccs_header() + ccs_detail() + ccs_trailer())
    return path


def rule_options() -> list[str]:
    return [option for rule in RULES for option in ("--record-type", rule)]


def table_cells(output: str, name: str) -> list[str]:
    """The cells of the rich table row whose first cell is ``name``."""
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip("│┃ ").split("│")]
        if cells[0] == name:
            return cells
    raise AssertionError(f"no row {name} in:\n{output}")


def test_layout_prints_offsets_lengths_types(copybook_path: Path) -> None:
    result = runner.invoke(app, ["layout", "--copybook", str(copybook_path)])
    assert result.exit_code == 0, result.output
    # name, level, offset, length, type, digits, scale, signed, usage
    assert table_cells(result.stdout, "TD-TXN-SEQ")[:8] == [
        "TD-TXN-SEQ",
        "10",
        "1",
        "8",
        "binary",
        "18",
        "0",
        "yes",
    ]
    assert table_cells(result.stdout, "TD-TXN-AMT")[:7] == [
        "TD-TXN-AMT",
        "10",
        "49",
        "8",
        "packed",
        "15",
        "2",
    ]
    assert table_cells(result.stdout, "TD-CCY-CD")[:5] == ["TD-CCY-CD", "10", "57", "3", "zoned"]
    assert table_cells(result.stdout, "TD-TXN-TM")[2:4] == ["70", "6"]
    assert table_cells(result.stdout, "TD-REF-NO")[2:4] == ["126", "23"]
    assert table_cells(result.stdout, "TT-AMOUNT-TOTAL")[2:7] == ["10", "9", "packed", "17", "2"]
    assert table_cells(result.stdout, "TXN-ARCH-REC")[1:5] == ["01", "0", "160", "group"]


def test_decode_jsonl_with_record_types(copybook_path: Path, archive_path: Path) -> None:
    result = runner.invoke(
        app,
        ["decode", "--copybook", str(copybook_path), "--data", str(archive_path), *rule_options()],
    )
    assert result.exit_code == 0, result.output
    header, detail, trailer = (json.loads(line) for line in result.stdout.splitlines())
    assert header == {"TA-REC-TYPE": "H", "TH-EXTRACT-DT": "20240131", "TH-SYSTEM-ID": "CCSPROD"}
    assert detail["TD-TXN-AMT"] == "1234.56"  # exact, as a string
    assert detail["TD-TXN-SEQ"] == 42 and detail["TD-CCY-CD"] == 840
    assert detail["TD-MER-NM"] == "ACME STORES #12"
    assert trailer == {"TA-REC-TYPE": "T", "TT-DETAIL-COUNT": 2, "TT-AMOUNT-TOTAL": "1000.00"}


def test_decode_csv_to_a_file_with_a_union_header(
    copybook_path: Path, archive_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.csv"
    result = runner.invoke(
        app,
        [
            "decode",
            "--copybook",
            str(copybook_path),
            "--data",
            str(archive_path),
            *rule_options(),
            "--format",
            "csv",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert list(rows[0])[:4] == ["TA-REC-TYPE", "TH-EXTRACT-DT", "TH-SYSTEM-ID", "TD-TXN-SEQ"]
    assert list(rows[0])[-2:] == ["TT-DETAIL-COUNT", "TT-AMOUNT-TOTAL"]
    assert rows[0]["TH-SYSTEM-ID"] == "CCSPROD" and rows[0]["TD-TXN-AMT"] == ""
    assert rows[1]["TD-TXN-AMT"] == "1234.56" and rows[1]["TD-POST-DT"] == "20240201"
    assert rows[2]["TT-AMOUNT-TOTAL"] == "1000.00"


def test_decode_rdw_and_codepage(copybook_path: Path, tmp_path: Path) -> None:
    data = tmp_path / "variable.dat"
    data.write_bytes(bytes.fromhex("00A4 0000") + ccs_detail())
    result = runner.invoke(
        app,
        [
            "decode",
            "--copybook",
            str(copybook_path),
            "--data",
            str(data),
            "--record-type",
            RULES[1],
            "--rdw",
            "--codepage",
            "cp1140",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["TD-ACCT-NO"] == "0000123456789012"


def test_skip_bad_reports_on_stderr_and_goes_on(copybook_path: Path, tmp_path: Path) -> None:
    data = tmp_path / "bad.dat"
    data.write_bytes(ccs_detail() + ccs_detail(amount_hex="00 00 00 1A 01 23 45 6C") + ccs_detail())
    arguments = ["decode", "--copybook", str(copybook_path), "--data", str(data), *rule_options()]
    result = runner.invoke(app, [*arguments, "--skip-bad"])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 2
    assert "skipped: record 2, field TD-TXN-AMT (byte 52 of the record, 212 of the file)" in (
        result.stderr
    )
    assert "2 records decoded, 1 skipped" in result.stderr
    failed = runner.invoke(app, arguments)
    assert failed.exit_code == 1
    assert failed.stderr.startswith("error: record 2, field TD-TXN-AMT")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--data", "missing.dat"], "error: No such file or directory: missing.dat"),
        (["--record-type", "TA-REC-TYPE:D"], "is not of the form FIELD=VALUE:GROUP"),
        (["--record-type", "TA-REC-TYPE=D:TA-NOPE"], "no data item named 'TA-NOPE'"),
        (["--codepage", "ebcdic-xx"], "unsupported code page 'ebcdic-xx'"),
    ],
)
def test_bad_input_gives_one_line_and_exit_code_1(
    copybook_path: Path, archive_path: Path, arguments: list[str], message: str
) -> None:
    base = ["decode", "--copybook", str(copybook_path), "--data", str(archive_path)]
    result = runner.invoke(app, base + arguments)
    assert result.exit_code == 1
    assert message in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


def test_copybook_syntax_error_and_missing_copybook(tmp_path: Path, archive_path: Path) -> None:
    broken = tmp_path / "broken.cpy"
    broken.write_text("000100 01  REC.\n000200     05  F  PIC Q(3).\n")
    for command in (["layout"], ["decode", "--data", str(archive_path)]):
        result = runner.invoke(app, [*command, "--copybook", str(broken)])
        assert result.exit_code == 1
        assert result.stderr == (
            "error: copybook line 2: unsupported PICTURE symbol 'Q': 'F PIC Q(3)'\n"
        )
    result = runner.invoke(app, ["layout", "--copybook", str(tmp_path / "nope.cpy")])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: No such file or directory")


def test_short_last_record_without_skip(copybook_path: Path, tmp_path: Path) -> None:
    data = tmp_path / "short.dat"
    data.write_bytes(ccs_detail() + ccs_detail()[:37])
    result = runner.invoke(
        app,
        [
            "decode",
            "--copybook",
            str(copybook_path),
            "--data",
            str(data),
            "--record-type",
            RULES[1],
        ],
    )
    assert result.exit_code == 1
    assert "error: record 2 (byte 37 of the record, 197 of the file): short last record" in (
        result.stderr
    )
    assert len(result.stdout.splitlines()) == 1  # the good record was written before


def test_mounted_under_a_host_as_extract(copybook_path: Path) -> None:
    host = typer.Typer()
    host.add_typer(app, name="extract")

    @host.command()
    def version() -> None:
        """A second host command, so that ``extract`` is a sub-group as in ``cardcore``."""

    result = runner.invoke(host, ["extract", "layout", "--copybook", str(copybook_path)])
    assert result.exit_code == 0, result.output
    assert table_cells(result.stdout, "TD-TXN-AMT")[2:4] == ["49", "8"]
