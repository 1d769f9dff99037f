#!/usr/bin/env bash
# One-node SLURM check of `mgcc experiment slurm --submit` (run by .ci/run after the tests):
# starts munged, slurmctld and slurmd with a generated slurm.conf on this host, submits a tiny
# experiment as a 2-task array, waits for it, and checks that every run finished exactly once
# and the report exists. Installs the Debian packages slurm-wlm and munge when missing (as
# root); skips with the reason printed when it cannot. Stops the daemons it started.
#
#   tools/ci/slurm_test.sh [MGCC_BINARY]     (default: target/debug/mgcc)
set -euo pipefail
MGCC=$(realpath "${1:-target/debug/mgcc}")
skip() { echo "SKIPPED slurm test: $*"; exit 0; }
[ -x "$MGCC" ] || { echo "slurm test: no mgcc binary at $MGCC" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }
if ! have slurmctld || ! have slurmd || ! have munged || ! have sbatch; then
  [ "$(id -u)" = 0 ] || skip "slurm-wlm/munge not installed and not root"
  have apt-get || skip "slurm-wlm/munge not installed and no apt-get"
  { DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge \
    || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge; }; } \
    > /tmp/mgcc-slurm-apt.log 2>&1 \
    || skip "apt-get install slurm-wlm munge failed (see /tmp/mgcc-slurm-apt.log)"
fi
[ "$(id -u)" = 0 ] || skip "the daemons need root"

WORK=$(mktemp -d /tmp/mgcc-slurm.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$WORK/slurmctld.pid" ] && kill "$(cat "$WORK/slurmctld.pid")" 2>/dev/null || true
  [ -f "$WORK/slurmd.pid" ] && kill "$(cat "$WORK/slurmd.pid")" 2>/dev/null || true
  [ -f "$WORK/munged.pid" ] && kill "$(cat "$WORK/munged.pid")" 2>/dev/null || true
  sleep 1
}
trap cleanup EXIT

# munge: a fresh key and socket of our own.
mkdir -p "$WORK/munge"
dd if=/dev/urandom of="$WORK/munge/munge.key" bs=1024 count=1 2>/dev/null
chmod 400 "$WORK/munge/munge.key"
SOCK="$WORK/munge/munge.socket"
munged --force --key-file="$WORK/munge/munge.key" --socket="$SOCK" \
  --pid-file="$WORK/munged.pid" --log-file="$WORK/munged.log" --seed-file="$WORK/munge/seed" \
  || skip "munged does not start (see $WORK/munged.log)"

HOST=$(hostname -s)
CPUS=$(nproc)
mkdir -p "$WORK/state" "$WORK/spool"
cat > "$WORK/slurm.conf" <<CONF
ClusterName=mgcc-ci
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$SOCK
CredType=cred/munge
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmctldLogFile=$WORK/slurmctld.log
SlurmdLogFile=$WORK/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
SlurmctldPort=16817
SlurmdPort=16818
NodeName=$HOST CPUs=$CPUS State=UNKNOWN
PartitionName=ci Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$WORK/slurm.conf"
slurmctld -i || skip "slurmctld does not start (see $WORK/slurmctld.log)"
slurmd || skip "slurmd does not start (see $WORK/slurmd.log)"
for _ in $(seq 60); do
  sinfo -h -o %T 2>/dev/null | grep -q idle && break
  sleep 1
done
sinfo -h -o %T | grep -q idle || { cat "$WORK/slurmctld.log" "$WORK/slurmd.log" | tail -30; skip "the node never became idle"; }

# A tiny experiment: 3 methods × 2 shares on one split = 6 runs over 2 array tasks.
"$MGCC" phantom "$WORK/data" --n 16 --size 32 > /dev/null 2>&1
"$MGCC" split "$WORK/data" --splits 1 --seeds 3 > /dev/null 2>&1
printf 'size = 32\nwidth = 2\niterations = 6\nval_every = 3\nbatch = 4\nlabeled_batch = 2\n' > "$WORK/tiny.toml"
EXP="$WORK/exp"
out=$("$MGCC" experiment slurm "$WORK/data" --out "$EXP" --splits 1 --labeled 1/4,1/2 \
  --methods supervised,cps,mgcc --config "$WORK/tiny.toml" --tasks 2 --submit)
echo "$out"
job=$(echo "$out" | sed -n 's/^Submitted batch job \([0-9]*\).*/\1/p')
[ -n "$job" ] || { echo "slurm test: no job id in sbatch output" >&2; exit 1; }
for _ in $(seq 600); do
  [ -z "$(squeue -h -j "$job" 2>/dev/null)" ] && break
  sleep 1
done
[ -z "$(squeue -h -j "$job" 2>/dev/null)" ] || { echo "slurm test: job $job still queued after 10 minutes" >&2; exit 1; }

fail=0
n=0
for d in "$EXP"/runs/*/; do
  n=$((n + 1))
  [ -f "$d/eval/summary.json" ] || { echo "slurm test: $d not finished" >&2; fail=1; }
  c=$(grep -c "new run" "$d/train.log" || true)
  [ "$c" = 1 ] || { echo "slurm test: $d trained $c times" >&2; fail=1; }
done
[ "$n" = 6 ] || { echo "slurm test: $n run folders, expected 6" >&2; fail=1; }
tasks=$(ls "$EXP"/slurm/*.out 2>/dev/null | wc -l)
[ "$tasks" = 2 ] || { echo "slurm test: $tasks task logs, expected 2" >&2; fail=1; }
for f in results.md report.html; do
  [ -s "$EXP/$f" ] || { echo "slurm test: no $f" >&2; fail=1; }
done
if [ "$fail" != 0 ]; then
  cat "$EXP"/slurm/*.out >&2 || true
  exit 1
fi
echo "slurm test: 6 runs finished once each over 2 array tasks of job $job; report written"
