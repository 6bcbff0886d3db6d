#!/usr/bin/env bash
# A single-node SLURM cluster on this machine (Debian's slurmctld, slurmd and munge), for tests.
#
#   tests/cluster/slurm_cluster.sh start DIR    # writes DIR/slurm.conf and DIR/gres.conf, makes the
#                                               # stand-in GPUs, starts munged, slurmctld, slurmd
#   export SLURM_CONF=DIR/slurm.conf            # what sbatch, squeue and scancel read
#   tests/cluster/slurm_cluster.sh stop DIR     # stops the daemons it started (by their pid files)
#
# The configs are also installed as /etc/slurm/slurm.conf and /etc/slurm/gres.conf, where every node of
# a real cluster has them: snakemake-executor-plugin-slurm-jobstep 0.6.1 removes SLURM_CONF (with every
# SLURM_* variable but the job's identity) from the environment of the `srun` it runs inside each job,
# so srun finds the config only there (srun does not read gres.conf: slurmd, started with -f, reads
# DIR/gres.conf; the copy keeps /etc/slurm a whole node config). An existing /etc/slurm/slurm.conf or
# /etc/slurm/gres.conf that this script did not write is never touched (start fails instead).
#
# Needs root (SlurmUser=root, munged started as the munge user, mknod) and the Debian packages
# slurmctld, slurmd, slurm-client and munge (.ci/run installs them). One node with this machine's
# CPUs, 90 % of its memory and 4 stand-in GPUs as GRES (gpu:4), two partitions named as in
# profiles/slurm (cpu, gpu: the same node), no accounting (status through squeue; MinJobAge keeps
# finished jobs visible for 300 s), no cgroups (proctrack/linuxproc, task/none: nothing keeps a job off
# the devices it was not given, as ConstrainDevices would). Ports: SLURM_TEST_PORT (default 6817) and
# the next one.
#
# The stand-in GPUs are character devices DIR/fakegpu0.. (major 195, NVIDIA's; slurmd accepts only
# device files in gres.conf's File=) that nothing opens: a job's `--gpus=N` gets N of them and SLURM
# exports their indices as CUDA_VISIBLE_DEVICES (jobs at once get disjoint ones), as on a GPU node.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [[ -z "$cmd" || -z "$dir" ]]; then
    echo "usage: $0 start|stop|status DIR" >&2
    exit 2
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
conf="$dir/slurm.conf"
gres="$dir/gres.conf"  # slurmd reads gres.conf from slurm.conf's directory
gpus=4  # stand-in GPUs on the node
port=${SLURM_TEST_PORT:-6817}
MARKER="# lens test cluster:"

pid_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_pidfile() {  # stop_pidfile FILE NAME: TERM, then KILL after 10 s
    local file=$1 name=$2 pid
    pid_alive "$file" || return 0
    pid=$(cat "$file")
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || { echo "stopped $name ($pid)"; return 0; }; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    echo "killed $name ($pid)"
}

start() {
    [[ $(id -u) -eq 0 ]] || { echo "$0: needs root (SlurmUser=root, munged as the munge user)" >&2; exit 1; }
    for exe in munged slurmctld slurmd sbatch; do
        command -v "$exe" >/dev/null || [[ -x /usr/sbin/$exe ]] || {
            echo "$0: $exe missing: apt-get install slurmctld slurmd slurm-client munge" >&2; exit 1; }
    done
    local node mem_mb cpus
    node=$(hostname -s)
    cpus=$(nproc)
    mem_mb=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
    mkdir -p "$dir/state" "$dir/spool"
    for etc in /etc/slurm/slurm.conf /etc/slurm/gres.conf; do
        if [[ -e $etc ]] && ! head -1 "$etc" | grep -q "^$MARKER"; then
            echo "$0: $etc exists and was not written by this script; not replacing it" >&2
            exit 1
        fi
    done

    # Stand-in GPUs: character devices numbered like NVIDIA's (/dev/nvidiaN is c 195 N).
    for ((i = 0; i < gpus; i++)); do
        [[ -c "$dir/fakegpu$i" ]] || { rm -f "$dir/fakegpu$i"; mknod "$dir/fakegpu$i" c 195 "$i"; }
    done

    # munge: the Debian package's key; one daemon serves every SLURM daemon and client on the host.
    if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
        install -d -o munge -g munge -m 0755 /run/munge
        [[ -s /etc/munge/munge.key ]] || { /usr/sbin/mungekey --create --force 2>/dev/null ||
            dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none; }
        chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
        runuser -u munge -- /usr/sbin/munged --force  # pid file /run/munge/munged.pid (munge's own dir)
        cp /run/munge/munged.pid "$dir/munged.pid"  # marks the munged this script started
        echo "started munged ($(cat "$dir/munged.pid"))"
        for _ in $(seq 50); do munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
    fi

    cat >"$conf" <<EOF
# Written by tests/cluster/slurm_cluster.sh: a single-node test cluster.
ClusterName=lenstest
SlurmctldHost=$node
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
GresTypes=gpu
MinJobAge=300
KillWait=10
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=60
NodeName=$node CPUs=$cpus RealMemory=$mem_mb Gres=gpu:$gpus State=UNKNOWN
PartitionName=cpu Nodes=$node Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$node MaxTime=INFINITE State=UP
EOF
    cat >"$gres" <<EOF
# Written by tests/cluster/slurm_cluster.sh: $gpus stand-in GPUs (character devices nothing opens).
NodeName=$node Name=gpu File=$dir/fakegpu[0-$((gpus - 1))]
EOF
    mkdir -p /etc/slurm
    { echo "$MARKER $dir"; cat "$conf"; } >/etc/slurm/slurm.conf
    { echo "$MARKER $dir"; cat "$gres"; } >/etc/slurm/gres.conf
    export SLURM_CONF=$conf
    pid_alive "$dir/slurmctld.pid" || { /usr/sbin/slurmctld -f "$conf" -c -i; echo "started slurmctld"; }
    pid_alive "$dir/slurmd.pid" || { /usr/sbin/slurmd -f "$conf" -N "$node"; echo "started slurmd"; }
    for _ in $(seq 120); do
        if sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
            echo "cluster up: SLURM_CONF=$conf"
            sinfo
            return 0
        fi
        sleep 0.5
    done
    echo "$0: node did not come up; see $dir/slurmctld.log and $dir/slurmd.log" >&2
    sinfo -N -l >&2 || true
    exit 1
}

stop() {
    if [[ -f "$conf" ]]; then
        SLURM_CONF=$conf scancel --full -u root 2>/dev/null || true
        # Let slurmd end the jobs' processes before it stops (else they outlive the cluster).
        for _ in $(seq 60); do
            [[ -z $(SLURM_CONF=$conf squeue -h 2>/dev/null) ]] && break
            sleep 0.5
        done
    fi
    stop_pidfile "$dir/slurmd.pid" slurmd
    stop_pidfile "$dir/slurmctld.pid" slurmctld
    stop_pidfile "$dir/munged.pid" munged  # only a munged this script started
    for etc in /etc/slurm/slurm.conf /etc/slurm/gres.conf; do
        if [[ -f $etc ]] && head -1 "$etc" | grep -q "^$MARKER $dir\$"; then
            rm "$etc"
        fi
    done
    rm -f "$dir"/fakegpu[0-9]*
}

case "$cmd" in
    start) start ;;
    stop) stop ;;
    status) SLURM_CONF=$conf sinfo && SLURM_CONF=$conf squeue ;;
    *) echo "usage: $0 start|stop|status DIR" >&2; exit 2 ;;
esac
