"""Change data capture: CCS changes after the snapshot, applied to the core (sync.py)."""
