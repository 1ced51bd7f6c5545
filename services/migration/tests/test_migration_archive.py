"""The CCS archive (EBCDIC extract files) as the migration's second source.

Hand-built files (through the copybook encoder) pin F01: every cause is rejected with a reason
naming the mismatch, a valid file's details come out as CCS_TXN rows. The generator's bulk
encoding is held to the copybook encoder byte for byte. End to end, seeded archive files in a
directory given by `--archive-dir` go through dry run, apply and verify with the real CLI; the
default directory (CCS_ARCHIVE_DIR / <data dir>/ccs-archive) is what the dry-run and apply tests
read, on SQLite and on MariaDB -> PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from migration_testkit import cardcore

from cardcore_copybook import RecordDecoder, encode_record
from cardcore_kernel.settings import CardcoreSettings
from cardcore_legacy.ccs.archive_format import EXTRACT_PREFIX
from cardcore_legacy.seed.generator import Generator
from cardcore_migration.adapters import archive

AS_OF = "2026-11-25"
DETAIL = {
    "TA-REC-TYPE": "D",
    "TD-ACCT-NO": "3100000000000001",
    "TD-CARD-NO": "6225880000000000001",
    "TD-TXN-CD": "1000",
    "TD-DC-FLG": "D",
    "TD-CCY-CD": 156,
    "TD-TXN-DT": 20240301,
    "TD-POST-DT": 20240302,
    "TD-TXN-TM": 93015,
    "TD-MCC": "5411",
    "TD-MER-NM": "JD.COM",
    "TD-AUTH-CD": "123456",
}
AMOUNT_AT, TIME_AT = 49, 70  # record offsets of TD-TXN-AMT (COMP-3) and TD-TXN-TM (zoned)


def header() -> bytes:
    values = {"TA-REC-TYPE": "H", "TH-EXTRACT-DT": "20240303", "TH-SYSTEM-ID": "CCSPROD"}
    return encode_record(archive.archive_copybook(), values, group="TA-HEADER")


def detail(seq: int, amount: str, flag: str = "D", **changes: object) -> bytes:
    values = DETAIL | {
        "TD-TXN-SEQ": seq,
        "TD-TXN-AMT": Decimal(amount),
        "TD-DC-FLG": flag,
        "TD-REF-NO": f"{seq:023d}",
    }
    return encode_record(archive.archive_copybook(), values | changes, group="TA-DETAIL")


def trailer(count: int, total: str) -> bytes:
    values = {"TA-REC-TYPE": "T", "TT-DETAIL-COUNT": count, "TT-AMOUNT-TOTAL": Decimal(total)}
    return encode_record(archive.archive_copybook(), values, group="TA-TRAILER")


def details() -> list[bytes]:
    return [
        detail(1, "100.00"),
        detail(2, "30.50", "C", **{"TD-TXN-CD": "1100"}),
        detail(3, "9.99"),
    ]


def valid_records() -> list[bytes]:
    return [header(), *details(), trailer(3, "79.49")]  # 100.00 - 30.50 + 9.99


def with_byte(record: bytes, at: int, value: int) -> bytes:
    return record[:at] + bytes([value]) + record[at + 1 :]


def read(tmp_path: Path, records: list[bytes], cut: int = 0) -> archive.Extract:
    content = b"".join(records)
    path = tmp_path / "CCS.TXNARCH.TEST"
    path.write_bytes(content[: len(content) - cut])
    return archive.read_extract(path)


def test_a_valid_extract_reads_as_ccs_txn_rows(tmp_path: Path) -> None:
    extract = read(tmp_path, valid_records())
    assert extract.reason is None and extract.details == 3
    rows = extract.transactions.to_dicts()
    assert [r["TXN_SEQ"] for r in rows] == [1, 2, 3]
    assert rows[1] | {"REF_NO": None} == {
        "TXN_SEQ": 2,
        "ACCT_NO": "3100000000000001",
        "CARD_NO": "6225880000000000001",
        "TXN_CD": "1100",
        "DC_FLG": "C",
        "TXN_AMT": 3050,
        "CCY_CD": "156",
        "TXN_DT": "20240301",
        "TXN_TM": "093015",
        "POST_DT": "20240302",
        "MCC": "5411",
        "MER_NM": "JD.COM",
        "AUTH_CD": "123456",
        "REF_NO": None,
    }
    empty = read(tmp_path, [header(), trailer(0, "0")])
    assert empty.reason is None and empty.details == 0 and empty.transactions.is_empty()


def test_trailer_total_counts_other_flags_as_zero(tmp_path: Path) -> None:
    odd = detail(4, "5.00", "X")
    assert read(tmp_path, [header(), *details(), odd, trailer(4, "79.49")]).reason is None
    rejected = read(tmp_path, [header(), *details(), odd, trailer(4, "84.49")])
    assert rejected.reason is not None and "TT-AMOUNT-TOTAL 84.49" in rejected.reason


@pytest.mark.parametrize(
    ("cause", "records", "cut", "reason"),
    [
        (
            "unknown record type",
            [header(), details()[0], b"X" + details()[1][1:], trailer(2, "69.50")],
            0,
            "record 3, field TA-REC-TYPE",
        ),
        ("short last record", valid_records(), 7, "short last record: 153 bytes of 160"),
        ("header missing", [*details(), trailer(3, "79.49")], 0, "header record missing"),
        (
            "header out of place",
            [details()[0], header(), *details()[1:], trailer(3, "79.49")],
            0,
            "header record out of place: record 2 of 5",
        ),
        (
            "two headers",
            [header(), *details(), header(), trailer(3, "79.49")],
            0,
            "header record out of place: record 5 of 6",
        ),
        ("trailer missing", [header(), *details()], 0, "trailer record missing"),
        (
            "trailer out of place",
            [header(), *details()[:2], trailer(3, "79.49"), details()[2]],
            0,
            "trailer record out of place: record 4 of 5",
        ),
        (
            "bad packed digit",
            [header(), with_byte(details()[0], AMOUNT_AT + 2, 0xA0), trailer(1, "100.00")],
            0,
            "record 2, field TD-TXN-AMT",
        ),
        (
            "bad zoned digit",
            [header(), with_byte(details()[0], TIME_AT + 1, 0x40), trailer(1, "100.00")],
            0,
            "record 2, field TD-TXN-TM",
        ),
        (
            "sign nibble 7",
            [header(), with_byte(details()[0], AMOUNT_AT + 7, 0x07), trailer(1, "100.00")],
            0,
            "invalid packed decimal sign nibble 7",
        ),
        (
            "sign nibble A (IBM positive, not allowed by the spec)",
            [header(), with_byte(details()[0], AMOUNT_AT + 7, 0x0A), trailer(1, "100.00")],
            0,
            "record 2, field TD-TXN-AMT: packed decimal sign nibble A is not C, D or F",
        ),
        (
            "trailer count",
            [header(), *details(), trailer(4, "79.49")],
            0,
            "trailer TT-DETAIL-COUNT 4 does not match the 3 detail records",
        ),
        (
            "trailer amount",
            [header(), *details(), trailer(3, "140.49")],
            0,
            "trailer TT-AMOUNT-TOTAL 140.49 does not match the details' signed total 79.49",
        ),
        ("empty file", [], 0, "header record missing"),
    ],
)
def test_each_f01_cause_rejects_the_file_naming_the_mismatch(
    tmp_path: Path, cause: str, records: list[bytes], cut: int, reason: str
) -> None:
    extract = read(tmp_path, records, cut)
    assert extract.rejected, cause
    assert extract.reason is not None and reason in extract.reason, extract.reason
    assert extract.transactions.is_empty()


def test_the_directory_holds_regular_non_hidden_files_only(tmp_path: Path) -> None:
    assert archive.extract_paths(tmp_path / "absent") == []
    assert archive.extract_paths(None) == []
    (tmp_path / "B.EXTRACT").write_bytes(b"".join(valid_records()))
    (tmp_path / "A.EXTRACT").write_bytes(b"")
    (tmp_path / ".partial").write_bytes(b"junk")
    (tmp_path / "subdir").mkdir()
    assert [p.name for p in archive.extract_paths(tmp_path)] == ["A.EXTRACT", "B.EXTRACT"]


def test_generated_details_are_what_the_copybook_encoder_writes() -> None:
    dataset = Generator(30, 3, 0.05, dt.date.fromisoformat(AS_OF)).generate()
    decoder = RecordDecoder(archive.archive_copybook(), rules=archive.RECORD_TYPES)
    valid = [n for n, v in dataset.truth["archive_files"].items() if v["status"] == "ok"]
    compared = 0
    for name in valid:
        content = dataset.archive[name]
        for at in range(0, len(content), archive.RECORD_LENGTH):
            record = content[at : at + archive.RECORD_LENGTH]
            values = decoder.decode(record)
            group = {"H": "TA-HEADER", "D": "TA-DETAIL", "T": "TA-TRAILER"}[values["TA-REC-TYPE"]]
            assert encode_record(archive.archive_copybook(), values, group=group) == record
            compared += 1
    assert compared > 200
    assert set(dataset.truth["archive_files"]) == set(dataset.archive)
    again = Generator(30, 3, 0.05, dt.date.fromisoformat(AS_OF)).generate()
    assert again.archive == dataset.archive  # deterministic, byte for byte


def said(ran: Any) -> str:
    """What a command printed, with rich's line wrapping undone."""
    return " ".join((ran.stdout + ran.stderr).split())


def run(*args: str) -> Any:
    ran = cardcore(*args)
    assert ran.returncode == 0, ran.stderr + ran.stdout
    return ran


@pytest.mark.parametrize("backend", ["sqlite"])
def test_archive_dir_option_through_dry_run_apply_and_verify(
    stack: Any, settings: CardcoreSettings, tmp_path: Path
) -> None:
    directory = tmp_path / "host-extracts"
    truth_path = tmp_path / "truth.json"
    run("legacy", "seed", "--customers", "40", "--seed", "4", "--defect-rate", "0.05",
        "--truth", str(truth_path), "--as-of", AS_OF, "--archive-dir", str(directory))  # fmt: skip
    truth = json.loads(truth_path.read_text())
    assert not settings.legacy_archive_dir.exists()  # the option, not the default, was used
    assert sorted(p.name for p in directory.iterdir()) == sorted(truth["archive_files"])
    causes = {v["cause"] for v in truth["archive_files"].values() if v["cause"]}
    assert len(causes) == 11 and truth["rules"]["F01"] >= 11

    reports: dict[str, dict[str, Any]] = {}
    for mode in ("dry-run", "apply"):
        path = tmp_path / f"{mode}.json"
        run("migrate", mode, "--as-of", AS_OF, "--report", str(path), "--html",
            str(tmp_path / f"{mode}.html"), "--archive-dir", str(directory))  # fmt: skip
        reports[mode] = json.loads(path.read_text())
    for report in reports.values():
        assert report["rules"] == truth["rules"]
        assert report["entities"] == truth["entities"]
        files = report["archive_files"]
        assert {n: f["status"] for n, f in files.items()} == {
            n: v["status"] for n, v in truth["archive_files"].items()
        }
        assert set(report["samples"]["F01"]) <= set(truth["codes"]["archive_file"])
        for name, verdict in files.items():
            assert (verdict["reason"] is None) == (verdict["status"] == "ok"), name
        archived = [k for k in truth["codes"]["transaction"] if "#" in k]
        assert archived and all(k.split("#")[0] in files for k in archived)
    assert reports["apply"]["reconciliation"]["ok"], reports["apply"]["reconciliation"]
    run("migrate", "verify", "--archive-dir", str(directory))

    # verify notices an archive that is no longer what the run read
    extra = directory / f"{EXTRACT_PREFIX}29991231"
    extra.write_bytes(b"".join(valid_records()))
    caught = cardcore("migrate", "verify", "--archive-dir", str(directory))
    assert caught.returncode != 0
    assert f"archive file {extra.name}: in {directory} but not read by the run" in said(caught)
    extra.unlink()
    ok_file = next(n for n, v in truth["archive_files"].items() if v["status"] == "ok")
    (directory / ok_file).unlink()
    caught = cardcore("migrate", "verify", "--archive-dir", str(directory))
    assert caught.returncode != 0
    assert f"archive file {ok_file}: missing" in said(caught)

    # an absent archive directory is valid: no files, CCS_TXN alone
    report_path = tmp_path / "absent.json"
    run("migrate", "dry-run", "--as-of", AS_OF, "--report", str(report_path),
        "--archive-dir", str(tmp_path / "absent"))  # fmt: skip
    report = json.loads(report_path.read_text())
    assert report["archive_files"] == {} and "F01" not in report["rules"]
    archived = sum(v["details"] for v in truth["archive_files"].values() if v["status"] == "ok")
    assert report["entities"]["transaction"]["read"] == (
        truth["entities"]["transaction"]["read"] - archived
    )


def test_an_archive_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "a-file"
    not_a_dir.write_text("x")
    for command in (("legacy", "seed"), ("migrate", "dry-run", "--as-of", AS_OF)):
        refused = cardcore(*command, "--archive-dir", str(not_a_dir))
        assert refused.returncode == 2
        assert f"archive directory {not_a_dir} is not a directory" in said(refused)
        assert "Traceback" not in refused.stderr + refused.stdout
