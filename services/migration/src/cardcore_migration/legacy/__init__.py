"""The legacy CCS side: its schema, a realistic data generator with ground truth, a loader."""
