#!/bin/sh
# Make OpenSSH's sshd, ssh and ssh-keygen available for the transport's end-to-end tests.
# Starts no daemon: tests/services/sshd.py starts its own sshd on a free loopback port from a
# config file in a temp dir, and stops it at the end of the session.
# Idempotent; needs root only when something must be installed.
# Environment: GPUDASH_SSHD_NO_APT=1 never calls apt-get.
set -eu

log() { printf 'setup-sshd: %s\n' "$*" >&2; }

have_sshd() { [ -x /usr/sbin/sshd ] || command -v sshd >/dev/null 2>&1; }
missing=
have_sshd || missing="$missing openssh-server"
command -v ssh >/dev/null 2>&1 || missing="$missing openssh-client"
command -v ssh-keygen >/dev/null 2>&1 || missing="$missing openssh-client"
command -v timeout >/dev/null 2>&1 || missing="$missing coreutils"
command -v ps >/dev/null 2>&1 || missing="$missing procps"

if [ -n "$missing" ]; then
    if [ "${GPUDASH_SSHD_NO_APT:-0}" = 1 ] || ! command -v apt-get >/dev/null 2>&1; then
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
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# sshd refuses to start without its privilege-separation directory (Debian creates it at boot
# through systemd, which a container does not run). The test fixture creates it too, as root.
if [ "$(id -u)" = 0 ]; then
    mkdir -p /run/sshd && chmod 0755 /run/sshd
fi

have_sshd || { log "sshd still missing"; exit 1; }
log "ok: $( (/usr/sbin/sshd -V 2>&1 || sshd -V 2>&1) | head -1)"
