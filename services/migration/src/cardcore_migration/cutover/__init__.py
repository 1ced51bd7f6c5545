"""The cutover of CCS customers to the core, bucket range by bucket range (`cardcore cutover`).

plan.py says what each step of the kernel's switch (freeze → drain → catch up → verify → flip →
release) means between CCS and the core; gateways.py is how it talks to the gateway (its store,
its replicas' admin API); status.py is the read-only view per range (CLI and ops console);
cli.py holds every `cardcore cutover` command, `init` (day zero) included.
"""
