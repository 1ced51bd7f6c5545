"""The CCS archive's file format (SPEC.md "The archive"): what a writer and a reader agree on.

An extract is a file named `CCS.TXNARCH.W<YYYYMMDD>` of fixed 160-byte EBCDIC (cp037) records
laid out by the packaged copybook `ccs_txn_archive`: one header, the week's details, one
trailer; the first byte (TA-REC-TYPE) says which. The seed's archive writer
(`cardcore_legacy.seed.archive`) and the migration's reader both take the format from here.
"""

from __future__ import annotations

from functools import cache

from cardcore_copybook import Copybook, RecordTypeRule, packaged_copybook, parse_copybook

RECORD_LENGTH = 160
CODEPAGE = "cp037"
EXTRACT_PREFIX = "CCS.TXNARCH.W"
HEADER, DETAIL, TRAILER = "H", "D", "T"
RECORD_TYPES = (
    RecordTypeRule("TA-REC-TYPE", HEADER, "TA-HEADER"),
    RecordTypeRule("TA-REC-TYPE", DETAIL, "TA-DETAIL"),
    RecordTypeRule("TA-REC-TYPE", TRAILER, "TA-TRAILER"),
)
DETAIL_TYPE_BYTE = DETAIL.encode(CODEPAGE)


@cache
def archive_copybook() -> Copybook:
    return parse_copybook(packaged_copybook("ccs_txn_archive"))
