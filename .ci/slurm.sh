#!/usr/bin/env bash
# A two-node Slurm cluster on this machine, for the Slurm executor's tests.
#   .ci/slurm.sh start   install (Debian packages) and start munge, slurmctld, and one
#                        slurmd per node (n1, n2)
#   .ci/slurm.sh stop    stop them by their PID files
# Both nodes are this host: each slurmd listens on its own port (NodeHostname=localhost,
# Port=1700N) and keeps its spool, PID and log files apart through `%n` (the node's
# name) in their paths. One CPU each, so two one-CPU jobs land on different nodes, and
# the cache folder is one filesystem for both, as a shared mount would be.
# Runs as root, without systemd (a CI container). Everything it writes (state, logs,
# PID files) is under $SLURM_STATE (default /tmp/pipe-ci-slurm).
# In a container, cgroup process tracking cannot work (no freezer hierarchy: jobs
# would never run yet be reported COMPLETED), hence proctrack/linuxproc and task/none.
# munged must run as the munge user, and /run/munge must exist. Without slurmdbd,
# `sacct` is unavailable; pipe then polls `squeue --states=all`.
set -euo pipefail
S=${SLURM_STATE:-/tmp/pipe-ci-slurm}
NODES="n1 n2"

start() {
  stop # a cluster this script started before (same state folder) is replaced
  if ! command -v slurmctld >/dev/null || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurmd slurmctld slurm-client munge >/dev/null
  fi
  [ -s /etc/munge/munge.key ] || { runuser -u munge -- mungekey -c 2>/dev/null || create-munge-key -f; }
  install -d -o munge -g munge -m 0755 /run/munge
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged
  fi
  munge -n | unmunge >/dev/null
  install -d -m 0755 "$S/ctld" "$S/log"
  cat > /etc/slurm/slurm.conf <<CONF
ClusterName=ci
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$S/ctld
SlurmdSpoolDir=$S/d-%n
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd-%n.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
KillWait=2
NodeName=n1 NodeHostname=localhost Port=17001 CPUs=1 RealMemory=1000 State=UNKNOWN
NodeName=n2 NodeHostname=localhost Port=17002 CPUs=1 RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  slurmctld
  for n in $NODES; do
    install -d -m 0755 "$S/d-$n"
    slurmd -N "$n" # -N: the node's name, not $(hostname)
  done
  local t=0
  until [ "$(sinfo -h -N -o '%N %T' 2>/dev/null | grep -c ' idle$')" -eq "$(echo $NODES | wc -w)" ]; do
    sleep 0.2
    t=$((t + 1))
    if [ $t -gt 150 ]; then
      echo "slurm: the nodes did not become idle:" >&2
      sinfo -N -o '%N %T %E' >&2 || true
      tail -n 20 "$S/log/slurmctld.log" "$S"/log/slurmd-*.log >&2 || true
      exit 1
    fi
  done
  echo "slurm: nodes $(sinfo -h -N -o '%N %T' | tr '\n' ' ')ready (state in $S)"
}

stop() {
  local pids=""
  # slurmd.pid: a one-node cluster an older version of this script started.
  for f in "$S"/slurmd-*.pid "$S/slurmd.pid" "$S/slurmctld.pid" /run/munge/munged.pid; do
    local pid
    pid=$(cat "$f" 2>/dev/null || true)
    if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then pids="$pids $pid"; fi
  done
  for p in $pids; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  done
  if [ -n "$pids" ]; then echo "slurm: stopped PIDs$pids"; fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
