"""Benchmark: decoding CCS transaction archive detail records with cardcore_copybook.

The migration reads archives of many millions of 160-byte records, so the decoder must manage
at least 100k records/s on one core. This script writes N detail records (built with our own
encoder) to a temporary file and times, in the same run and on the same bytes:

* ``iter_records``: our compiled record plans, streaming the file in chunks;
* a naive reference decoder: per record and field, it looks at the PICTURE-derived format and
  decodes that field on its own (codec per text field, a loop over packed nibbles and zoned
  digits) - what a straightforward implementation does;
* ``struct.iter_unpack``: slicing the same records into raw fields with no conversion at all,
  an upper bound for any pure-Python decoder.

Rates are records per second of CPU time (best of ``--repeat`` runs), so a busy machine
distorts them less than wall-clock time would. The figures go to ``results/copybook_decode.json``
like every benchmark's (``bench/run`` collects them). Run:

    uv run python bench/copybook_decode.py --records 200000
"""

from __future__ import annotations

import argparse
import struct
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from itertools import islice
from pathlib import Path

from _common import Figure, print_figures, save

from cardcore_copybook import (
    Copybook,
    Field,
    FieldType,
    RecordTypeRule,
    encode_record,
    iter_records,
    packaged_copybook,
    parse_copybook,
)
from cardcore_copybook.layout import record_view, view_fields

TARGET_RECORDS_PER_SECOND = 100_000
DETAIL_RULE = RecordTypeRule("TA-REC-TYPE", "D", "TA-DETAIL")
READ_SIZE = 1 << 20


def detail_values(number: int) -> dict[str, object]:
    """Plausible, varying values for the ``number``-th detail record."""
    return {
        "TA-REC-TYPE": "D",
        "TD-TXN-SEQ": number,
        "TD-ACCT-NO": f"{number % 50_000:016d}",
        "TD-CARD-NO": f"4000{number % 999_983:012d}",
        "TD-TXN-CD": "0101" if number % 7 else "0205",
        "TD-DC-FLG": "C" if number % 5 == 0 else "D",
        "TD-TXN-AMT": Decimal(number % 1_000_000 * (-1 if number % 5 == 0 else 1)).scaleb(-2),
        "TD-CCY-CD": 840,
        "TD-TXN-DT": 20240101 + number % 28,
        "TD-POST-DT": 20240102 + number % 27,
        "TD-TXN-TM": number % 240000,
        "TD-MCC": "5411",
        "TD-MER-NM": f"MERCHANT {number % 9973}",
        "TD-AUTH-CD": f"{number % 999_999:06d}",
        "TD-REF-NO": f"REF{number:020d}",
    }


def write_archive(copybook: Copybook, path: Path, count: int) -> None:
    with path.open("wb") as file:
        for number in range(count):
            file.write(encode_record(copybook, detail_values(number), group="TA-DETAIL"))


def naive_decode(fields: list[Field], record: bytes) -> dict[str, object]:
    """Reference decoder: interprets each field's format at decode time."""
    values: dict[str, object] = {}
    for field in fields:
        raw = record[field.offset : field.end]
        value: object
        if field.type is FieldType.ALPHANUMERIC:
            value = raw.decode("cp037").rstrip(" ")
        elif field.type is FieldType.BINARY:
            value = int.from_bytes(raw, "big", signed=field.signed)
        elif field.type is FieldType.PACKED:
            digits = 0
            for byte in raw[:-1]:
                digits = digits * 100 + (byte >> 4) * 10 + (byte & 0x0F)
            digits = digits * 10 + (raw[-1] >> 4)
            value = -digits if raw[-1] & 0x0F in (0x0B, 0x0D) else digits
        else:
            digits = 0
            for byte in raw:
                digits = digits * 10 + (byte & 0x0F)
            value = -digits if raw[-1] >> 4 in (0x0B, 0x0D) else digits
        if field.scale and not isinstance(value, str):
            value = Decimal(value).scaleb(-field.scale)
        values[field.name] = value
    return values


def records_of(path: Path, length: int) -> Iterator[bytes]:
    with path.open("rb") as file:
        while chunk := file.read(READ_SIZE - READ_SIZE % length):
            for start in range(0, len(chunk), length):
                yield chunk[start : start + length]


def best_rate(run: Callable[[], Iterable[object]], count: int, repeat: int) -> float:
    """Records per CPU second, best of ``repeat`` runs of consuming ``run()``."""
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        deque(run(), maxlen=0)
        best = min(best, time.process_time() - started)
    return count / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000, help="detail records to decode")
    parser.add_argument("--repeat", type=int, default=3, help="runs per decoder; best counts")
    arguments = parser.parse_args()
    count: int = arguments.records

    copybook = parse_copybook(packaged_copybook("ccs_txn_archive"))
    fields, length = view_fields(record_view(copybook, "TA-DETAIL"), counts={})
    unpack_format = ">" + "".join(f"{field.length}s" for field in fields) + "11s"
    assert struct.calcsize(unpack_format) == length == 160

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "ccs_txn_archive.dat"
        started = time.perf_counter()
        write_archive(copybook, path, count)
        print(f"encoded {count:,} detail records in {time.perf_counter() - started:.1f}s")

        def ours() -> Iterable[object]:
            return iter_records(copybook, path, rules=[DETAIL_RULE])

        def naive() -> Iterable[object]:
            return (naive_decode(fields, record) for record in records_of(path, length))

        def raw_struct() -> Iterable[object]:
            return struct.iter_unpack(unpack_format, path.read_bytes())

        sample = zip(islice(ours(), 1000), islice(naive(), 1000), strict=True)
        assert all(our == reference for our, reference in sample), "decoders disagree"

        repeat = arguments.repeat
        our_rate = best_rate(ours, count, repeat)
        naive_rate = best_rate(naive, count, repeat)
        struct_rate = best_rate(raw_struct, count, repeat)

    ours_name = "iter_records, CCS detail (CPU time)"
    figures = [
        Figure(ours_name, our_rate, "records/s", "naive per-field interpretation", naive_rate),
        Figure(ours_name, our_rate, "records/s", "struct.iter_unpack, no conversion", struct_rate),
    ]
    print_figures(f"copybook decode: {count:,} records of 160 bytes", figures)
    verdict = "meets" if our_rate >= TARGET_RECORDS_PER_SECOND else "MISSES"
    print(f"\ntarget {TARGET_RECORDS_PER_SECOND:,} records/s: {verdict} ({our_rate:,.0f})")
    save(
        "copybook_decode",
        figures,
        {"records": count, "target_records_per_second": TARGET_RECORDS_PER_SECOND},
    )


if __name__ == "__main__":
    main()
