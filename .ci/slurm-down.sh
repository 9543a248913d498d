#!/usr/bin/env bash
# Stop the one-node SLURM cluster started by .ci/slurm-up.sh: slurmd, slurmctld, munged, in that
# order, by the PIDs in their pid files (never by name). Each gets SIGTERM, then a bounded wait
# (SLURM_DOWN_TIMEOUT, default 20 s), then SIGKILL to that same PID. Stale pid files are removed.
# Safe to call when nothing runs (exit 0).
set -uo pipefail

TIMEOUT="${SLURM_DOWN_TIMEOUT:-20}"
rc=0

# stop NAME PIDFILE
stop() {
    local name=$1 pidfile=$2 pid i
    if [ ! -e "$pidfile" ]; then
        return 0
    fi
    pid=$(tr -dc '0-9' <"$pidfile")
    # only signal a live process that really is $name (the PID might have been reused)
    if [ -n "$pid" ] && [ -d "/proc/$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < TIMEOUT * 10; i++)); do
            [ -d "/proc/$pid" ] || break
            sleep 0.1
        done
        if [ -d "/proc/$pid" ]; then
            echo "slurm-down: $name ($pid) still alive after ${TIMEOUT}s, sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
            if [ -d "/proc/$pid" ]; then
                echo "slurm-down: ERROR: could not stop $name ($pid)" >&2
                rc=1
                return 0
            fi
        fi
        echo "slurm-down: stopped $name ($pid)" >&2
    fi
    rm -f "$pidfile"
}

stop slurmd /run/slurmd.pid
stop slurmctld /run/slurmctld.pid
stop munged /run/munge/munged.pid
[ "$rc" = 0 ] && echo "SLURM cluster is down"
exit "$rc"
