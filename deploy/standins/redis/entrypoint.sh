#!/bin/sh
# Like the official image: options alone are passed to redis-server; protected mode is off
# because the server is only reachable on the compose network.
set -e
case "${1:-}" in
  -*) set -- redis-server "$@" ;;
esac
if [ "${1:-}" = redis-server ]; then
  shift
  exec redis-server --protected-mode no "$@"
fi
exec "$@"
