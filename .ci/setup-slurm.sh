#!/bin/sh
# Start a real single-node Slurm (munged + slurmctld + slurmd) on this machine, for the Slurm
# probe tests. Idempotent: when `sinfo` already answers, it does nothing.
#
# What it sets up is the smallest Slurm that runs batch jobs: no accounting daemon (so `sacct`
# says "Slurm accounting storage is disabled", exactly the case gpudash must fall back from), no
# cgroups (containers rarely allow them), one node named after this host, one partition.
#
# Needs root (SlurmUser=root). Installs slurm-wlm and munge with apt-get when they are missing.
# Environment:
#   GPUDASH_SLURM_STATE   state/log directory (default /tmp/gpudash-slurm)
#   GPUDASH_SLURM_NO_APT  set to 1 to never call apt-get
set -eu

STATE=${GPUDASH_SLURM_STATE:-/tmp/gpudash-slurm}
CONF=/etc/slurm/slurm.conf

log() { printf 'setup-slurm: %s\n' "$*" >&2; }

# `scontrol ping` answers at once either way; `sinfo` against a dead controller retries ~10 s.
if command -v scontrol >/dev/null 2>&1 && timeout 5 scontrol ping >/dev/null 2>&1 \
   && timeout 10 sinfo -h >/dev/null 2>&1; then
    log "slurm already answers; nothing to do"
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    log "must run as root (SlurmUser=root)"
    exit 1
fi

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
if ! have slurmctld || ! have slurmd || ! have munged; then
    if [ "${GPUDASH_SLURM_NO_APT:-0}" = 1 ]; then
        log "slurm-wlm/munge are not installed and GPUDASH_SLURM_NO_APT=1"
        exit 1
    fi
    log "installing slurm-wlm and munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq slurm-wlm munge >/dev/null
fi
PATH=$PATH:/usr/sbin:/sbin

HOST=$(hostname -s)
CPUS=$(nproc)
mkdir -p "$STATE/ctld" "$STATE/d" /etc/slurm

# --- munge: a key, its run dir, the daemon (only if no munged answers yet)
if [ ! -s /etc/munge/munge.key ]; then
    log "creating a munge key"
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 2>/dev/null
fi
chown -R munge:munge /etc/munge 2>/dev/null || true
chmod 0700 /etc/munge
chmod 0400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
chmod 0755 /run/munge
if ! munge -n </dev/null >/dev/null 2>&1; then
    log "starting munged"
    if id munge >/dev/null 2>&1; then
        su -s /bin/sh munge -c /usr/sbin/munged || /usr/sbin/munged --force
    else
        /usr/sbin/munged --force
    fi
    i=0
    until munge -n </dev/null >/dev/null 2>&1; do
        i=$((i + 1)); [ $i -gt 50 ] && { log "munged did not come up"; exit 1; }
        sleep 0.1
    done
fi

# --- slurm.conf (rewritten only when ours or absent: never clobber a site's real config)
if [ ! -f "$CONF" ] || grep -q '^# gpudash test cluster' "$CONF"; then
    cat >"$CONF" <<EOF
# gpudash test cluster (written by .ci/setup-slurm.sh)
ClusterName=gpudash
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
MpiDefault=none
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=2
MinJobAge=300
NodeName=$HOST CPUs=$CPUS State=UNKNOWN
PartitionName=debug Default=YES Nodes=ALL MaxTime=INFINITE State=UP
EOF
fi

# --- daemons: slurmctld, then slurmd (each only if not already running)
if ! pgrep -x slurmctld >/dev/null 2>&1; then
    log "starting slurmctld"
    /usr/sbin/slurmctld -i
fi
if ! pgrep -x slurmd >/dev/null 2>&1; then
    log "starting slurmd"
    /usr/sbin/slurmd
fi

i=0
until timeout 5 sinfo -h -o '%T' 2>/dev/null | grep -Eq 'idle|mix|alloc'; do
    i=$((i + 1))
    if [ $i -gt 150 ]; then
        log "slurm did not become ready; sinfo says:"
        sinfo >&2 || true
        tail -n 20 "$STATE/slurmctld.log" "$STATE/slurmd.log" >&2 || true
        exit 1
    fi
    # A node left DOWN by an earlier run comes back with an explicit resume.
    if [ $((i % 20)) = 0 ]; then
        scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true
    fi
    sleep 0.2
done
log "slurm is up (node $HOST, $CPUS CPUs, partition debug)"
