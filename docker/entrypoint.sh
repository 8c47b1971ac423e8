#!/bin/sh
# docker/entrypoint.sh - starts dscoord or dsworker from environment
# variables. The image's ENTRYPOINT and HEALTHCHECK, and the test that
# starts a real cluster with it (tests/packaging/test-entrypoint), all run
# this same script.
#
#   entrypoint.sh [--flag value ...]   start the daemon GOSSAMER_ROLE names;
#                                      the flags are added after the ones
#                                      below, so they win
#   entrypoint.sh healthcheck          exit 0 when this container is healthy
#   entrypoint.sh dsctl ARGS...        run dsctl
#   entrypoint.sh help                 print this text
#
# Environment (the flag each one becomes is in brackets; see
# `dscoord --help` and `dsworker --help`):
#   GOSSAMER_ROLE       coordinator or worker (required)
#   GOSSAMER_CONFIG     a config file, keys = the flags' long names [--config]
#   GOSSAMER_DATA       data directory [--data]; default
#                       /var/lib/gossamer/coordinator or /var/lib/gossamer/worker
#   GOSSAMER_LOG_LEVEL  debug, info, warn or error [--log-level]
#   GOSSAMER_INSECURE   1: plain ZeroMQ without CURVE keys, for a local
#                       experiment only [--insecure] (docs/security.md)
# coordinator:
#   GOSSAMER_ID         this member's id, e.g. 1 [--id] (required)
#   GOSSAMER_PEERS      1=tcp://IP:7402,2=... [--peers] (required)
#   GOSSAMER_RPC        tcp://IP:7401, where workers and dsctl reach this
#                       member [--rpc] (required)
#   GOSSAMER_HTTP       HOST:PORT of /healthz and /metrics [--http];
#                       default 0.0.0.0:7500
#   GOSSAMER_KEYS       the keys directory of `dscoord bootstrap-keys` [--keys]
# worker:
#   GOSSAMER_JOIN       coordinator rpc endpoints, comma-separated [--join]
#                       (required)
#   GOSSAMER_NAME       worker name [--name]; default: the host name
#   GOSSAMER_LABELS     K=V,K=V labels for release selectors [--label ...]
#   GOSSAMER_PORTS      LO-HI port range for instances [--ports]
#   GOSSAMER_CLUSTER_KEY  the coordinators' cluster.pub [--cluster-key]
#   GOSSAMER_TOKEN      join token for the first join [--token]
# programs (for running outside the image):
#   GOSSAMER_DSCOORD, GOSSAMER_DSWORKER, GOSSAMER_DSCTL
#                       default: dscoord, dsworker, dsctl from PATH
#
# Endpoints are bound exactly as written, and ZeroMQ binds only addresses
# (not host names): give each coordinator a fixed IP address for --peers
# and --rpc (docker/compose.yaml does).
set -eu

dscoord=${GOSSAMER_DSCOORD:-dscoord}
dsworker=${GOSSAMER_DSWORKER:-dsworker}
dsctl=${GOSSAMER_DSCTL:-dsctl}
role=${GOSSAMER_ROLE:-}

die() {
    echo "entrypoint: $*" >&2
    exit 2
}

usage() {
    sed -n '2,/^set -eu$/{/^set -eu$/d;s/^# \{0,1\}//;p}' "$0"
}

need() {
    eval "v=\${$1:-}"
    # shellcheck disable=SC2154 # v is set by the eval above
    [ -n "$v" ] || die "$1 is required for GOSSAMER_ROLE=$role (see 'entrypoint.sh help')"
}

# Healthy coordinator: it answers and knows a leader (its cluster has a
# quorum). Healthy worker: the cluster lists it as up, i.e. it has joined
# and heartbeats.
healthcheck() {
    # dsctl authenticates like the daemon: --insecure, or CURVE with the
    # cluster's public key and a key pair of its own (set DSCTL_KEY to a
    # viewer key in the container's environment; docs/security.md).
    set --
    case "${GOSSAMER_INSECURE:-}" in
    "" | 0 | false | no)
        if [ -z "${DSCTL_CLUSTER_KEY:-}" ] && [ -n "${GOSSAMER_CLUSTER_KEY:-}" ]; then
            export DSCTL_CLUSTER_KEY="$GOSSAMER_CLUSTER_KEY"
        elif [ -z "${DSCTL_CLUSTER_KEY:-}" ] && [ -n "${GOSSAMER_KEYS:-}" ]; then
            export DSCTL_CLUSTER_KEY="$GOSSAMER_KEYS/cluster.pub"
        fi
        ;;
    *) set -- --insecure ;;
    esac
    case "$role" in
    coordinator)
        need GOSSAMER_RPC
        "$dsctl" "$@" --coordinators "$GOSSAMER_RPC" --timeout 3s cluster status >/dev/null
        ;;
    worker)
        need GOSSAMER_JOIN
        name=${GOSSAMER_NAME:-$(uname -n)}
        out=$("$dsctl" "$@" --coordinators "$GOSSAMER_JOIN" --timeout 3s -o json workers) ||
            exit 1
        # The leader knows who heartbeats (followers do not: no --stale).
        # The JSON is pretty-printed: join it, then look for this name, up.
        printf '%s' "$out" | tr -d ' \n' | grep -q "\"name\":\"$name\",\"state\":\"up\"" || {
            echo "entrypoint: worker $name is not up in the cluster's list" >&2
            exit 1
        }
        ;;
    *) die "GOSSAMER_ROLE must be coordinator or worker, not \"$role\"" ;;
    esac
}

case "${1:-}" in
help | --help | -h)
    usage
    exit 0
    ;;
healthcheck)
    healthcheck
    exit 0
    ;;
dsctl)
    shift
    exec "$dsctl" "$@"
    ;;
esac

# Build the daemon's command line in "$@": the environment's flags first,
# then the caller's.
case "$role" in
coordinator)
    need GOSSAMER_ID
    need GOSSAMER_PEERS
    need GOSSAMER_RPC
    prog=$dscoord
    set -- --id "$GOSSAMER_ID" --peers "$GOSSAMER_PEERS" --rpc "$GOSSAMER_RPC" \
        --http "${GOSSAMER_HTTP:-0.0.0.0:7500}" \
        --data "${GOSSAMER_DATA:-/var/lib/gossamer/coordinator}" "$@"
    [ -z "${GOSSAMER_KEYS:-}" ] || set -- --keys "$GOSSAMER_KEYS" "$@"
    ;;
worker)
    need GOSSAMER_JOIN
    prog=$dsworker
    n_caller=$#
    set -- "$@" --join "$GOSSAMER_JOIN" --data "${GOSSAMER_DATA:-/var/lib/gossamer/worker}"
    [ -z "${GOSSAMER_NAME:-}" ] || set -- "$@" --name "$GOSSAMER_NAME"
    [ -z "${GOSSAMER_PORTS:-}" ] || set -- "$@" --ports "$GOSSAMER_PORTS"
    [ -z "${GOSSAMER_CLUSTER_KEY:-}" ] || set -- "$@" --cluster-key "$GOSSAMER_CLUSTER_KEY"
    [ -z "${GOSSAMER_TOKEN:-}" ] || set -- "$@" --token "$GOSSAMER_TOKEN"
    old_ifs=$IFS
    IFS=,
    set -f
    # shellcheck disable=SC2086 # K=V,K=V is split on commas on purpose
    for kv in ${GOSSAMER_LABELS:-}; do
        [ -z "$kv" ] || set -- "$@" --label "$kv"
    done
    set +f
    IFS=$old_ifs
    # Move the caller's flags (the first n_caller words) behind ours.
    while [ "$n_caller" -gt 0 ]; do
        set -- "$@" "$1"
        shift
        n_caller=$((n_caller - 1))
    done
    ;;
"") die "GOSSAMER_ROLE is not set (coordinator or worker; see 'entrypoint.sh help')" ;;
*) die "GOSSAMER_ROLE must be coordinator or worker, not \"$role\"" ;;
esac

[ -z "${GOSSAMER_CONFIG:-}" ] || set -- --config "$GOSSAMER_CONFIG" "$@"
[ -z "${GOSSAMER_LOG_LEVEL:-}" ] || set -- --log-level "$GOSSAMER_LOG_LEVEL" "$@"
case "${GOSSAMER_INSECURE:-}" in
"" | 0 | false | no) ;;
*) set -- --insecure "$@" ;;
esac

# exec: the daemon gets the signals (docker stop sends SIGTERM) and its exit
# status is the container's.
exec "$prog" "$@"
