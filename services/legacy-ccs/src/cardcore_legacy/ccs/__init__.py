"""The published contract of CCS: its tables (SPEC.md verbatim), its database, its archive
format and SPEC.md's data-quality rule table. Other packages import these modules, nothing else
of cardcore_legacy."""
