"""Pure migration domain: CCS rule codes, transforms and rule checks, report assembly."""
