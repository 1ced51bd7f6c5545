"""Adapters: the CCS source reader and the control-database repository."""
