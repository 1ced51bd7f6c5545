#!/bin/sh
# First start: system tables, root reachable from the network with MARIADB_ROOT_PASSWORD, the
# MARIADB_DATABASE database (server options such as --character-set-server apply to it too).
set -eu
case "${1:-}" in
  -*) set -- mariadbd "$@" ;;
esac
if [ "${1:-}" != mariadbd ]; then
  exec "$@"
fi
shift
datadir=/var/lib/mysql
socket=/run/mysqld/mysqld.sock
if [ ! -d "$datadir/mysql" ]; then
  if [ -z "${MARIADB_ROOT_PASSWORD:-}" ]; then
    echo "MARIADB_ROOT_PASSWORD must be set" >&2
    exit 1
  fi
  mariadb-install-db --datadir="$datadir" --auth-root-authentication-method=normal \
    --skip-test-db >/dev/null
  mariadbd --datadir="$datadir" --skip-networking --socket="$socket" "$@" &
  pid=$!
  tries=0
  until mariadb-admin --socket="$socket" -uroot ping >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -gt 60 ]; then
      echo "mariadb did not start for initialisation" >&2
      exit 1
    fi
    sleep 0.5
  done
  password="$(printf '%s' "$MARIADB_ROOT_PASSWORD" | sed "s/'/''/g")"
  {
    echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '$password';"
    echo "CREATE USER 'root'@'%' IDENTIFIED BY '$password';"
    echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
    if [ -n "${MARIADB_DATABASE:-}" ]; then
      echo "CREATE DATABASE IF NOT EXISTS \`$MARIADB_DATABASE\`;"
    fi
  } | mariadb --socket="$socket" -uroot
  mariadb-admin --socket="$socket" -uroot -p"$MARIADB_ROOT_PASSWORD" shutdown
  wait "$pid" || true
fi
exec mariadbd --datadir="$datadir" --bind-address=0.0.0.0 --socket="$socket" "$@"
