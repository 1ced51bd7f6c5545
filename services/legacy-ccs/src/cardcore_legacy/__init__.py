"""cardcore-legacy-ccs: the legacy card system (CCS) as a deployable service.

`ccs` is its published contract (the SPEC.md schema, database access, archive format, rule
table): the migration reads CCS through it. `seed` generates realistic CCS data with ground
truth. The online API (`api`, `services`, `repository`, `domain`) serves live traffic over the
CCS tables exactly as a legacy system would.
"""
