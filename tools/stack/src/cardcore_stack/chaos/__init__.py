"""`cardcore chaos`: fault scenarios against a stack of real processes, under load."""
