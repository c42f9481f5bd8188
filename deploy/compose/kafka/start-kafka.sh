#!/usr/bin/env bash
# Start one Puente Kafka node in the apache/kafka image (mounted by deploy/compose/compose.yaml).
#
# The first time, format this node's storage with the cluster id and the admin's SCRAM-SHA-512
# credential (through a Java argument file, never a command line), as `puente kafka up` does
# locally; then run the broker with the rendered server.properties, whose broker password Kafka
# reads from /run/secrets through its FileConfigProvider. The stock entrypoint is not used: it
# builds server.properties from KAFKA_* variables, which would put the broker's password into the
# environment.
set -euo pipefail

CONFIG=/etc/puente/server.properties
DATA=/var/lib/kafka/data
ADMIN_SECRET=/run/secrets/admin.json

: "${CLUSTER_ID:?CLUSTER_ID is not set: run puente deploy compose secrets (it writes deploy/compose/.env)}"

if [ ! -f "$DATA/meta.properties" ]; then
  # SecretStore's one-line JSON: {"username": "admin", "password": "..."}
  admin_password=$(sed -n 's/.*"password": *"\([^"]*\)".*/\1/p' "$ADMIN_SECRET")
  if [ -z "$admin_password" ]; then
    echo "no admin password in $ADMIN_SECRET (run puente deploy compose secrets)" >&2
    exit 1
  fi
  # The storage tool takes the admin's credential as an argument. A Java argument file (0600,
  # written by the shell's printf builtin, expanded by the java launcher itself) keeps it off
  # every command line: /proc/<pid>/cmdline is readable by every user of the machine.
  argfile=$(umask 077 && mktemp)
  trap 'rm -f "$argfile"' EXIT
  printf '"%s"\n' kafka.tools.StorageTool format --cluster-id "$CLUSTER_ID" --config "$CONFIG" \
    --add-scram "SCRAM-SHA-512=[name=admin,password=${admin_password}]" --ignore-formatted \
    > "$argfile"
  unset admin_password
  # kafka-storage.sh is kafka-run-class.sh with the class name first; here the class name
  # travels in the argument file too (the launcher expands @-files only before the class).
  /opt/kafka/bin/kafka-run-class.sh "@$argfile"
  rm -f "$argfile"
fi

exec /opt/kafka/bin/kafka-server-start.sh "$CONFIG"
