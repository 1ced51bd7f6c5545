"""batch: the ledger's end-of-day executor (hold expiry, interest, statements, delinquency).

EOD(D) closes business date D and opens D+1. Its steps run partitioned per shard × bucket range
as Celery tasks on the `batch` queue; a job repository in the control database records every
partition, so a restarted run executes only what did not complete.
"""
