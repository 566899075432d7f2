#!/usr/bin/env bash
# A real local Slurm 22.05 cluster for development and tests: 3 nodes (n1..n3, one slurmd each)
# on this machine, 4 fake GPUs per node, partitions debug (default, 10 min max), cpu and gpu,
# accounting through slurmdbd + MariaDB, and slurmrestd with JWT on 127.0.0.1:6820.
#
#   scripts/dev-cluster.sh up       install what is missing, start what is not running, wait for 3 idle nodes
#   scripts/dev-cluster.sh down     stop every daemon (by PID file)
#   scripts/dev-cluster.sh status   print daemon, node and partition state; exit 1 when not up
#
# Needs root and Debian (apt-get) the first time: it installs Debian's slurm-wlm, slurmdbd,
# mariadb-server, munge, slurmrestd and the JWT plugin. There is no init system here, so the
# daemons are started directly. The config files are the project's own, in deploy/slurm/; they
# are copied into /etc/slurm and /etc/mysql. `up` on a running cluster changes nothing.
# A throw-away cluster: fixed passwords, JWT key on local disk. Never run it on a real cluster host.
# Override the bring-up deadline with DEV_CLUSTER_TIMEOUT_S (default 120).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CONF=$ROOT/deploy/slurm
# The daemons inherit this directory: never a checkout that may be deleted under them
# (slurmrestd's job submission dies on "getcwd failed" when its directory is gone).
cd /
NODES=(n1 n2 n3)
TIMEOUT_S=${DEV_CLUSTER_TIMEOUT_S:-120}
JWT_KEY=/var/lib/slurm/jwt_hs256.key
REST_DIR=/run/slurmrestd
REST_ADDR=127.0.0.1:6820
PACKAGES=(slurm-wlm slurmdbd mariadb-server munge slurmrestd slurm-wlm-jwt-plugin curl)

say() { printf 'dev-cluster: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# pid_alive FILE: the process named in FILE exists.
pid_alive() {
    local pid
    [[ -s $1 ]] || return 1
    pid=$(<"$1")
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

# launch NAME COMMAND...: start a daemon with its start-up output in a file (a daemon that
# kept the caller's stdout open would hold a capturing caller until it exits).
launch() {
    local name=$1 out=/var/log/slurm/$1.start.out
    shift
    "$@" </dev/null >"$out" 2>&1 || die "$name failed to start: $(tail -n 5 "$out" | tr '\n' ' ')"
}

# wait_until SECONDS WHAT COMMAND...: poll COMMAND every 0.2 s until it succeeds or time runs out.
wait_until() {
    local limit=$1 what=$2 deadline
    shift 2
    deadline=$(($(date +%s) + limit))
    until "$@" >/dev/null 2>&1; do
        (($(date +%s) < deadline)) || die "timed out after ${limit} s waiting for $what"
        sleep 0.2
    done
}

installed() {
    local cmd
    for cmd in slurmctld slurmd slurmdbd sacctmgr sinfo munged mysqld_safe mysqladmin slurmrestd curl; do
        command -v "$cmd" >/dev/null 2>&1 || return 1
    done
    compgen -G '/usr/lib/*/slurm-wlm/auth_jwt.so' >/dev/null
}

install_packages() {
    [[ $(id -u) == 0 ]] || die "Slurm is not installed and installing it needs root (apt-get install ${PACKAGES[*]})"
    command -v apt-get >/dev/null 2>&1 || die "Slurm is not installed and apt-get is not available (this script needs Debian 12)"
    say "installing ${PACKAGES[*]} with apt-get"
    # No init system here: keep the packages' postinst from trying to start their services.
    local policy=/usr/sbin/policy-rc.d created_policy=0 rc=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    {
        apt-get -o DPkg::Lock::Timeout=300 update -qq &&
            apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${PACKAGES[@]}"
    } >&2 || rc=$?
    ((created_policy)) && rm -f "$policy"
    ((rc == 0)) || die "apt-get install failed (exit $rc)"
    return 0
}

# put SRC DEST MODE [OWNER]: install a config file only when it differs, so a running cluster's
# files are not rewritten by a no-op `up`.
put() {
    local src=$1 dest=$2 mode=$3 owner=${4:-root:root}
    if ! cmp -s "$src" "$dest"; then
        install -D -m "$mode" -o "${owner%%:*}" -g "${owner##*:}" "$src" "$dest"
        CONFIG_CHANGED=1
    fi
}
CONFIG_CHANGED=0

write_config() {
    put "$CONF/slurm.conf" /etc/slurm/slurm.conf 644
    put "$CONF/gres.conf" /etc/slurm/gres.conf 644
    put "$CONF/slurmdbd.conf" /etc/slurm/slurmdbd.conf 600 slurm:slurm
    put "$CONF/epilog.sh" /etc/slurm/epilog.sh 755
    put "$CONF/epilog_ctld.sh" /etc/slurm/epilog_ctld.sh 755
    put "$CONF/60-slurm.cnf" /etc/mysql/mariadb.conf.d/60-slurm.cnf 644
}

prepare_dirs() {
    local n i
    install -d -o munge -g munge -m 755 /run/munge
    install -d -o slurm -g slurm /run/slurm /var/log/slurm /var/log/slurm/epilog /var/lib/slurm \
        /var/lib/slurm/slurmctld /var/lib/slurm/slurmd
    for n in "${NODES[@]}"; do install -d "/var/lib/slurm/slurmd/$n"; done
    install -d /var/lib/slurm/fakegpu
    for i in 0 1 2 3; do ln -sfn /dev/null "/var/lib/slurm/fakegpu/nvidia$i"; done
    install -d -o mysql -g root /run/mysqld
    if [[ ! -s $JWT_KEY ]]; then
        (umask 077 && dd if=/dev/urandom of="$JWT_KEY" bs=32 count=1 status=none)
    fi
    chown slurm:slurm "$JWT_KEY"
    chmod 600 "$JWT_KEY"
    id slurmrest >/dev/null 2>&1 || useradd -r -M -d /nonexistent -s /usr/sbin/nologin slurmrest
    install -d -o slurmrest -g slurmrest "$REST_DIR"
}

start_munge() {
    pid_alive /run/munge/munged.pid && return 0
    [[ -s /etc/munge/munge.key ]] || runuser -u munge -- mungekey --create
    launch munged runuser -u munge -- /usr/sbin/munged
    wait_until 10 "munged" pid_alive /run/munge/munged.pid
}

start_mariadb() {
    if ! pid_alive /run/mysqld/mysqld.pid; then
        [[ -d /var/lib/mysql/mysql ]] || mariadb-install-db --user=mysql >/dev/null
        setsid mysqld_safe >/var/log/slurm/mysqld_safe.out 2>&1 </dev/null &
    fi
    wait_until 30 "MariaDB to answer" mysqladmin ping
    mysql -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmpw';
              GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
}

start_slurmdbd() {
    pid_alive /run/slurm/slurmdbd.pid || launch slurmdbd slurmdbd
    # slurmdbd creates its schema on first start (~1 s).
    wait_until 30 "slurmdbd to answer" sacctmgr -n show cluster
    if ! sacctmgr -n -P show cluster format=cluster | grep -x lab >/dev/null; then
        sacctmgr -i add cluster lab >/dev/null
    fi
}

start_slurm() {
    local n
    pid_alive /run/slurm/slurmctld.pid || launch slurmctld slurmctld
    for n in "${NODES[@]}"; do
        pid_alive "/run/slurm/slurmd-$n.pid" || launch "slurmd-$n" slurmd -N "$n"
    done
}

nodes_up() {
    local count
    # -N lists a node once per partition: count distinct responding nodes that can take jobs.
    count=$(sinfo -h -N -r -t idle,mixed,allocated,completing -o %N | sort -u | wc -l)
    [[ $count == "${#NODES[@]}" ]]
}

add_associations() {
    if ! sacctmgr -n -P show account format=account | grep -x research >/dev/null; then
        sacctmgr -i add account research Cluster=lab >/dev/null
    fi
    if ! sacctmgr -n -P show assoc where user=root account=research format=user | grep -x root >/dev/null; then
        sacctmgr -i add user root Account=research DefaultAccount=research >/dev/null
    fi
}

rest_up() {
    local code
    code=$(curl -s -m 2 -o /dev/null -w '%{http_code}' "http://$REST_ADDR/slurm/v0.0.38/ping") || true
    [[ -n $code && $code != 000 ]]
}

start_rest() {
    # slurmrestd refuses to run as root; SLURM_JWT=daemon makes it accept JWT tokens.
    if ! pid_alive "$REST_DIR/jwt.pid"; then
        SLURM_JWT=daemon setsid setpriv --reuid=slurmrest --regid=slurmrest --init-groups \
            slurmrestd -a rest_auth/jwt "$REST_ADDR" >>/var/log/slurm/slurmrestd.log 2>&1 </dev/null &
        echo $! >"$REST_DIR/jwt.pid"
    fi
    wait_until 20 "slurmrestd on $REST_ADDR" rest_up
}

up() {
    local t0
    t0=$(now)
    [[ $(id -u) == 0 ]] || die "needs root (it starts system daemons as their own users)"
    [[ -d $CONF ]] || die "config directory $CONF is missing"
    if ! installed; then
        install_packages
        say "installed in $(elapsed "$t0") s"
    fi
    write_config
    if ((CONFIG_CHANGED)) && pid_alive /run/slurm/slurmctld.pid; then
        say "warning: deploy/slurm changed while the cluster runs; run \`$0 down\` and \`up\` to apply it"
    fi
    prepare_dirs
    start_munge
    start_mariadb
    start_slurmdbd
    start_slurm
    wait_until "$TIMEOUT_S" "3 nodes to be idle (see /var/log/slurm/slurmctld.log)" nodes_up
    add_associations
    start_rest
    say "up in $(elapsed "$t0") s: $(sinfo -h -o '%P' | tr '\n' ' ')partitions, REST on http://$REST_ADDR"
}

# stop_pidfiles FILE...: TERM every live process named, then wait for all of them (in parallel).
stop_pidfiles() {
    local f pids=() pid deadline
    for f in "$@"; do
        if pid_alive "$f"; then
            pid=$(<"$f")
            kill "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
        rm -f "$f"
    done
    ((${#pids[@]})) || return 0
    deadline=$(($(date +%s) + 30))
    for pid in "${pids[@]}"; do
        while kill -0 "$pid" 2>/dev/null; do
            if (($(date +%s) >= deadline)); then
                say "pid $pid did not exit after TERM; killing it"
                kill -9 "$pid" 2>/dev/null || true
                break
            fi
            sleep 0.1
        done
    done
}

down() {
    local t0
    t0=$(now)
    [[ $(id -u) == 0 ]] || die "needs root"
    # Stages: what uses slurmdbd goes first, slurmdbd next, then its database and munge.
    stop_pidfiles "$REST_DIR/jwt.pid" /run/slurm/slurmctld.pid /run/slurm/slurmd-{n1,n2,n3}.pid
    stop_pidfiles /run/slurm/slurmdbd.pid
    stop_pidfiles /run/mysqld/mysqld.pid /run/munge/munged.pid
    say "down in $(elapsed "$t0") s"
}

status() {
    local ok=0 f name
    for f in /run/munge/munged.pid /run/mysqld/mysqld.pid /run/slurm/slurmdbd.pid \
        /run/slurm/slurmctld.pid /run/slurm/slurmd-{n1,n2,n3}.pid "$REST_DIR/jwt.pid"; do
        name=$(basename "$f" .pid)
        [[ $name == jwt ]] && name=slurmrestd
        if pid_alive "$f"; then
            printf '%-12s running (pid %s)\n' "$name" "$(<"$f")"
        else
            printf '%-12s stopped\n' "$name"
            ok=1
        fi
    done
    if pid_alive /run/slurm/slurmctld.pid && command -v sinfo >/dev/null 2>&1; then
        echo
        sinfo -o '%10P %6a %10l %6D %8t %N' || ok=1
        echo
        sinfo -N -o '%8N %10P %10T %8G %C' || ok=1
        nodes_up || { echo "fewer than ${#NODES[@]} nodes are up"; ok=1; }
    fi
    return "$ok"
}

case ${1:-} in
    up) up ;;
    down) down ;;
    status) status ;;
    *)
        echo "usage: $0 up|down|status" >&2
        exit 2
        ;;
esac
