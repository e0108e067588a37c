#!/bin/sh
# Creates or upgrades Temporal's two PostgreSQL databases. Safe to run on every `docker compose up`:
# setup-schema and update-schema skip what is already there.
set -eu
schema=/etc/temporal/schema/postgresql/v12
sql() { temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_HOST" -p 5432 -u "$POSTGRES_USER" --pw "$POSTGRES_PASSWORD" "$@"; }

for db in temporal temporal_visibility; do
    store=$([ "$db" = temporal ] && echo temporal || echo visibility)
    sql --db "$db" create || echo "database $db exists"
    sql --db "$db" setup-schema -v 0.0
    sql --db "$db" update-schema -d "$schema/$store/versioned"
done
