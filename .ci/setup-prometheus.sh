#!/bin/sh
# Make the real Prometheus server and node_exporter available for the Prometheus source's tests
# and benchmark. Starts NO daemon and enables no system service: tests/services/prometheus.py
# starts its own Prometheus (own config and --storage.tsdb.path in a temp dir,
# --web.listen-address=127.0.0.1:FREE_PORT, 1 s scrape interval) and its own node_exporter on
# another free loopback port, and stops them at the end.
# Idempotent; needs root only when something must be installed.
# Environment: GPUDASH_PROMETHEUS_NO_APT=1 never calls apt-get.
set -eu

log() { printf 'setup-prometheus: %s\n' "$*" >&2; }

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/bin/$1" ] || [ -x "/usr/sbin/$1" ]; }
missing=
have prometheus || missing="$missing prometheus"
have prometheus-node-exporter || have node_exporter || missing="$missing prometheus-node-exporter"

if [ -n "$missing" ]; then
    if [ "${GPUDASH_PROMETHEUS_NO_APT:-0}" = 1 ] || ! command -v apt-get >/dev/null 2>&1; then
        log "missing:$missing (install them; apt-get not used)"
        exit 1
    fi
    if [ "$(id -u)" != 0 ]; then
        log "missing:$missing and not root: cannot apt-get install"
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    log "installing:$missing"
    apt-get update -qq
    # policy-rc.d 101: the packages' maintainer scripts must not start the system services
    # (tests start their own on free ports; a system Prometheus would hold :9090 for nothing).
    policy=/usr/sbin/policy-rc.d
    created=
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created=1
    fi
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null || status=$?
    [ -n "$created" ] && rm -f "$policy"
    [ "${status:-0}" = 0 ] || { log "apt-get install failed"; exit 1; }
fi

have prometheus || { log "prometheus still missing"; exit 1; }
log "ok: $(prometheus --version 2>&1 | head -1)"
log "ok: $( (prometheus-node-exporter --version 2>&1 || node_exporter --version 2>&1) | head -1)"
