#!/usr/bin/env bash
# A single-node SLURM on this machine, for the `slurm` tests and for trying --cluster slurm.yaml
# without a cluster. Needs Debian's slurm-wlm and munge packages (installed by `install` when
# run as root with apt), and root (munged and slurmd run as root here).
#   bash scripts/slurm_single_node.sh install        apt-get install slurm-wlm munge
#   bash scripts/slurm_single_node.sh start STATE     start munged, slurmctld, slurmd; wait idle
#   bash scripts/slurm_single_node.sh stop STATE      stop the daemons it started (by pid)
# STATE is a folder for the config, spool, logs and pids; clients need SLURM_CONF=STATE/slurm.conf
# (printed by start). Only the daemons started by `start` are stopped, by their process ids.
set -euo pipefail
cmd="${1:-}"
state="${2:-}"

need_state() {
  [ -n "$state" ] || { echo "error: give a state folder: $0 $cmd STATE" >&2; exit 2; }
}

case "$cmd" in
  install)
    if command -v slurmctld >/dev/null && command -v munged >/dev/null; then
      echo "slurm and munge are installed"; exit 0
    fi
    [ "$(id -u)" -eq 0 ] || { echo "error: installing slurm needs root" >&2; exit 1; }
    command -v apt-get >/dev/null || { echo "error: no apt-get here" >&2; exit 1; }
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      slurm-wlm munge >/dev/null
    echo "installed: $(slurmctld -V 2>/dev/null || echo slurm), munge"
    ;;
  start)
    need_state
    for prog in munged slurmctld slurmd sinfo; do
      command -v "$prog" >/dev/null || { echo "error: $prog not found (run: $0 install)" >&2; exit 1; }
    done
    [ "$(id -u)" -eq 0 ] || { echo "error: this single-node SLURM runs its daemons as root" >&2; exit 1; }
    mkdir -p "$state"/{ctld,spool,log,munge}
    state="$(cd "$state" && pwd)"
    host="$(hostname -s)"
    cpus="$(nproc)"
    mem_mb="$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)"
    # munge: its own key, socket and pid file under STATE, so a system munged is never touched
    key="$state/munge/munge.key"
    [ -f "$key" ] || { dd if=/dev/urandom of="$key" bs=1024 count=1 2>/dev/null; chmod 400 "$key"; }
    sock="$state/munge/munge.socket"
    munged --force --key-file="$key" --socket="$sock" --pid-file="$state/munge/munged.pid" \
      --log-file="$state/log/munged.log" --seed-file="$state/munge/munged.seed"
    cat > "$state/slurm.conf" <<EOF
ClusterName=mlpcases
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$sock
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
KillWait=2
InactiveLimit=0
MinJobAge=30
SlurmctldPort=16817
SlurmdPort=16818
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
    export SLURM_CONF="$state/slurm.conf"
    slurmctld -c -f "$SLURM_CONF"
    slurmd -f "$SLURM_CONF"
    for _ in $(seq 1 60); do
      if sinfo -h -o %T 2>/dev/null | grep -q '^idle'; then
        echo "SLURM_CONF=$SLURM_CONF"
        exit 0
      fi
      sleep 0.5
    done
    echo "error: the node did not come up idle in 30 s (logs in $state/log)" >&2
    exit 1
    ;;
  stop)
    need_state
    for pidfile in "$state/slurmd.pid" "$state/slurmctld.pid" "$state/munge/munged.pid"; do
      if [ -f "$pidfile" ]; then
        pid="$(cat "$pidfile")"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$pidfile"
      fi
    done
    ;;
  *)
    echo "usage: $0 install | start STATE | stop STATE" >&2
    exit 2
    ;;
esac
