"""Seeded CCS data: a deterministic generator with injected defects and ground truth, and the
archive extract files it writes. Test and demo data only; no production path imports it."""
