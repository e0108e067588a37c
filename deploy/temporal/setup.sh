#!/bin/sh
# Once the server answers: the namespace and the incident search attributes (kept in step with
# workflows/search_attributes.py; tests/test_compose.py checks it). Safe to run again.
set -eu
ns="${TEMPORAL_NAMESPACE:-default}"

until temporal operator cluster health | grep -q SERVING; do
    echo "waiting for Temporal at $TEMPORAL_ADDRESS"; sleep 2
done

temporal operator namespace describe --namespace "$ns" >/dev/null 2>&1 \
    || temporal operator namespace create --namespace "$ns" --retention "${TEMPORAL_RETENTION:-720h}"

until temporal operator search-attribute list --namespace "$ns" >/dev/null 2>&1; do sleep 1; done
for attribute in IncidentSeverity=Keyword IncidentPhase=Keyword IncidentStatus=Keyword IncidentScope=Keyword \
                 IncidentService=Keyword IncidentKind=Keyword IncidentAcknowledged=Bool; do
    name="${attribute%%=*}"
    if ! temporal operator search-attribute list --namespace "$ns" | grep -qw "$name"; then
        temporal operator search-attribute create --namespace "$ns" --name "$name" --type "${attribute#*=}"
    fi
done
echo "namespace $ns ready"
