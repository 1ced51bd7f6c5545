"""Helpers shared by the copybook tests: fixed-format source and hand-built bytes."""

from __future__ import annotations

from cardcore_copybook import Copybook, RecordDecoder, parse_copybook


def fixed_format(*code: str) -> str:
    """Lay out code lines in fixed format: sequence number in 1-6, blank column 7, code from 8."""
    return "".join(f"{(number + 1) * 10:06d} {line}\n" for number, line in enumerate(code))


def one_field(picture_clauses: str) -> Copybook:
    """A record holding one field ``F`` described by ``picture_clauses``."""
    return parse_copybook(fixed_format("01  REC.", f"    05  F  {picture_clauses}."))


def decode_one(picture_clauses: str, hex_bytes: str, **options: object) -> object:
    """Decode hand-written hex as the single field ``F``."""
    decoder = RecordDecoder(one_field(picture_clauses), **options)  # type: ignore[arg-type]
    return decoder.decode(bytes.fromhex(hex_bytes))["F"]


def ebcdic(text: str) -> bytes:
    """Text in code page 037 (Python's own codec, independent of the code under test)."""
    return text.encode("cp037")


def ccs_header(extract_date: str = "20240131", system_id: str = "CCSPROD") -> bytes:
    """A CCS archive header record, byte by byte."""
    return ebcdic("H" + extract_date + system_id.ljust(8)) + ebcdic(" " * 143)


def ccs_detail(
    *,
    sequence_hex: str = "00 00 00 00 00 00 00 2A",  # 42
    amount_hex: str = "00 00 00 00 01 23 45 6C",  # +1234.56
    currency_hex: str = "F8 F4 F0",  # 840
    transaction_date_hex: str = "02 02 40 13 1F",  # 20240131
) -> bytes:
    """A CCS archive detail record, byte by byte (160 bytes)."""
    return (
        ebcdic("D")
        + bytes.fromhex(sequence_hex)
        + ebcdic("0000123456789012")  # TD-ACCT-NO
        + ebcdic("4000123412341234   ")  # TD-CARD-NO
        + ebcdic("0101")  # TD-TXN-CD
        + ebcdic("D")  # TD-DC-FLG
        + bytes.fromhex(amount_hex)
        + bytes.fromhex(currency_hex)
        + bytes.fromhex(transaction_date_hex)
        + bytes.fromhex("02 02 40 20 1F")  # TD-POST-DT 20240201
        + bytes.fromhex("F2 F3 F5 F9 F5 F9")  # TD-TXN-TM 235959
        + ebcdic("5411")  # TD-MCC
        + ebcdic("ACME STORES #12".ljust(40))  # TD-MER-NM
        + ebcdic("A1B2C3")  # TD-AUTH-CD
        + ebcdic("REF0000000000000000001 ")  # TD-REF-NO
        + ebcdic(" " * 11)  # FILLER
    )


def ccs_trailer() -> bytes:
    """A CCS archive trailer record: 2 details, total 1000.00."""
    return (
        ebcdic("T")
        + bytes.fromhex("F0 F0 F0 F0 F0 F0 F0 F0 F2")
        + bytes.fromhex("00 00 00 00 00 01 00 00 0C")
        + ebcdic(" " * 141)
    )
