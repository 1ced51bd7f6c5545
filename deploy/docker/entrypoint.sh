#!/bin/sh
# Prestart of every cardcore image: wait until what this container needs answers, then become the
# command. `exec` keeps the service itself as tini's only child, so the SIGTERM of
# `docker stop` reaches uvicorn / celery directly and they shut down gracefully.
#
# CARDCORE_WAIT_FOR lists what to wait for (see cardcore-probe): e.g. "control shards:accounts".
# Schema upgrades are not done here: the one-shot `init` service runs `cardcore db upgrade` once
# for every schema, and `shards:<service>` waits until it has.
set -eu
if [ -n "${CARDCORE_WAIT_FOR:-}" ]; then
  # shellcheck disable=SC2086  # the list is meant to be split into words
  cardcore-probe wait $CARDCORE_WAIT_FOR
fi
exec "$@"
