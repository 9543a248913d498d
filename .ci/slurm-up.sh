#!/usr/bin/env bash
# Start a one-node SLURM cluster (slurmctld + slurmd + munged) on this machine, for CI.
#
# Tested on Debian 12 (Slurm 22.05, munge 0.5.15) as root without systemd. The node is called
# "localhost", has CPUs=$(nproc), ~90 % of the memory `slurmd -C` reports and one fake GPU
# (GRES gpu:1 backed by /dev/null), in partition "debug". Accounting is disabled, so Snakemake
# must poll with `squeue` (see workflow/profiles/slurm-test).
#
# Idempotent: packages are installed only if slurmctld or munged is missing; if all three daemons
# are already running (pid files with live processes), it changes nothing. Stop with
# .ci/slurm-down.sh (by PID).
#
# Environment knobs (all optional):
#   SLURM_UP_TIMEOUT  seconds to wait for the node to become idle (default 60)
#   SLURM_FAKE_GPU    1 (default) adds the fake GPU GRES (and 4 shards of it); 0 leaves it out
#   SLURM_PRISTINE    1 deletes the controller state first (job ids restart at 1)
set -euo pipefail

TIMEOUT="${SLURM_UP_TIMEOUT:-60}"
FAKE_GPU="${SLURM_FAKE_GPU:-1}"
NODE=localhost
CONF_DIR=/etc/slurm
STATE_DIR=/var/lib/slurm/slurmctld
SPOOL_DIR=/var/lib/slurm/slurmd
LOG_DIR=/var/log/slurm
MUNGE_PID=/run/munge/munged.pid
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid

log() { echo "slurm-up: $*" >&2; }
die() {
    log "ERROR: $*"
    for f in "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log"; do
        [ -f "$f" ] && { log "--- tail $f"; tail -n 20 "$f" >&2; }
    done
    exit 1
}

# alive PIDFILE NAME: the pid file names a live process whose command is NAME
alive() {
    local pid
    [ -s "$1" ] || return 1
    pid=$(tr -dc '0-9' <"$1")
    [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}

if [ "$(id -u)" -ne 0 ]; then
    die "must run as root (starts system daemons and writes $CONF_DIR)"
fi

if alive "$MUNGE_PID" munged && alive "$CTLD_PID" slurmctld && alive "$SLURMD_PID" slurmd; then
    echo "SLURM cluster is up (already running): node $NODE, partition debug, $(sinfo -h -o '%c CPUs, %m MB, gres %G, state %t' 2>/dev/null | head -n1)"
    exit 0
fi

# 1) packages ------------------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1 \
    || ! command -v slurmd >/dev/null 2>&1 || ! command -v sinfo >/dev/null 2>&1; then
    log "installing slurm-wlm and munge with apt"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi
for b in slurmctld slurmd munged sinfo scontrol; do
    command -v "$b" >/dev/null 2>&1 || die "$b not found after installation"
done

# 2) munge -----------------------------------------------------------------------------------------
if ! alive "$MUNGE_PID" munged; then
    rm -f "$MUNGE_PID"
    if [ ! -s /etc/munge/munge.key ]; then
        log "creating /etc/munge/munge.key"
        mungekey --create --keyfile=/etc/munge/munge.key
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
    runuser -u munge -- "$(command -v munged)" --pid-file="$MUNGE_PID"
fi
for _ in $(seq 1 20); do
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
    sleep 0.5
done
munge -n | unmunge >/dev/null 2>&1 || die "munged does not answer (munge -n | unmunge)"

# 3) configuration (only rewritten while slurmctld and slurmd are down) ---------------------------
if ! alive "$CTLD_PID" slurmctld && ! alive "$SLURMD_PID" slurmd; then
    cpus=$(nproc)
    mem=$(slurmd -C 2>/dev/null | sed -n 's/.*RealMemory=\([0-9]\+\).*/\1/p' | head -n1 || true)
    if [ -z "$mem" ]; then
        mem=$(awk '/^MemTotal:/ {print int($2/1024)}' /proc/meminfo)
    fi
    mem=$((mem * 90 / 100))
    gres_types="" node_gres=""
    if [ "$FAKE_GPU" = 1 ]; then
        # the GPU is also cut into 4 shards, so that several runs can share it (docs/cluster.md, "Several runs per GPU")
        gres_types="GresTypes=gpu,shard"
        node_gres="Gres=gpu:1,shard:4"
    fi
    mkdir -p "$CONF_DIR"
    cat >"$CONF_DIR/slurm.conf" <<EOF
# Written by .ci/slurm-up.sh: one-node test cluster, no accounting database.
ClusterName=localcluster
SlurmctldHost=$NODE
$gres_types
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$STATE_DIR
SlurmdSpoolDir=$SPOOL_DIR
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
# keep finished jobs visible to squeue/scontrol for 5 min (Snakemake polls with squeue)
MinJobAge=300
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
Waittime=0
NodeName=$NODE CPUs=$cpus RealMemory=$mem $node_gres State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
    if [ "$FAKE_GPU" = 1 ]; then
        printf 'Name=gpu File=/dev/null\nName=shard Count=4 File=/dev/null\n' >"$CONF_DIR/gres.conf"
    else
        rm -f "$CONF_DIR/gres.conf"
    fi
    [ "${SLURM_PRISTINE:-0}" = 1 ] && rm -rf "$STATE_DIR"
fi

# 4) daemons -------------------------------------------------------------------------------------
mkdir -p "$STATE_DIR" "$SPOOL_DIR" "$LOG_DIR"
if ! alive "$CTLD_PID" slurmctld; then
    rm -f "$CTLD_PID"
    slurmctld || die "slurmctld failed to start"
fi
for _ in $(seq 1 20); do
    scontrol ping >/dev/null 2>&1 && break
    sleep 0.5
done
if ! alive "$SLURMD_PID" slurmd; then
    rm -f "$SLURMD_PID"
    slurmd -N "$NODE" || die "slurmd failed to start"
fi

# 5) wait for the node to be idle (bounded) ------------------------------------------------------
deadline=$((SECONDS + TIMEOUT))
resumed=0
state=""
while :; do
    state=$(sinfo -h -n "$NODE" -o %t 2>/dev/null | head -n1 || true)
    case "$state" in
        idle | mix | alloc) break ;;
        drain* | drng | down* | inval*)
            # a node left drained/down by an earlier run: ask for it back once
            if [ "$resumed" = 0 ]; then
                scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true
                resumed=1
            fi
            ;;
    esac
    [ "$SECONDS" -ge "$deadline" ] && die "node $NODE not idle after ${TIMEOUT}s (state '${state:-?}'; $(sinfo -h -R 2>/dev/null | head -n1))"
    sleep 1
done
for d in "munged:$MUNGE_PID" "slurmctld:$CTLD_PID" "slurmd:$SLURMD_PID"; do
    alive "${d#*:}" "${d%%:*}" || die "${d%%:*} is not running (pid file ${d#*:})"
done

echo "SLURM cluster is up: node $NODE, partition debug, $(sinfo -h -o '%c CPUs, %m MB, gres %G, state %t' | head -n1)"
