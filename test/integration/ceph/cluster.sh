#!/usr/bin/env bash
# A single-host Ceph cluster with a RADOS Gateway on 127.0.0.1, for the tests and the
# demo that need a real object store (Ceph 16.2 from Debian's archive).
#   cluster.sh start DIR [PORT]   start mon, mgr, one OSD (BlueStore on a sparse file),
#                                 radosgw; create a user; write DIR/s3.env
#   cluster.sh stop DIR           stop every daemon this script started in DIR (by pid)
#   cluster.sh pause|resume DIR   SIGSTOP / SIGCONT radosgw (fault tests)
#   cluster.sh restart-rgw DIR    stop radosgw and start it again on the same port
# DIR/s3.env holds LM_S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
# AWS_DEFAULT_REGION for the tests to source. DIR must be on a filesystem with O_DIRECT
# (ext4, not tmpfs). Start takes about 20 s; nothing is left running after stop.
set -euo pipefail

cmd=${1:?usage: cluster.sh start|stop|pause|resume|restart-rgw DIR [PORT]}
DIR=${2:?usage: cluster.sh $cmd DIR}
PORT=${3:-}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
CONF=$DIR/ceph.conf
FSID_FILE=$DIR/fsid
ACCESS=livemounttestaccess
SECRET=livemounttestsecret0123456789abcdefghij

log() { echo "ceph-cluster: $*" >&2; }

pids_of() { cat "$DIR"/*.pid 2>/dev/null || true; }

stop_daemon() {  # stop_daemon NAME: TERM, wait up to 15 s, then KILL
  local f=$DIR/$1.pid pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -CONT "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

stop_all() {
  stop_daemon rgw
  stop_daemon osd
  stop_daemon mgr
  stop_daemon mon
}

# Runs a daemon in the foreground of a background job, so its pid is ours to end.
spawn() {  # spawn NAME command...
  local name=$1; shift
  "$@" >"$DIR/$name.log" 2>&1 &
  echo $! >"$DIR/$name.pid"
}

wait_for() {  # wait_for SECONDS DESCRIPTION command...
  local secs=$1 what=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $end ]; then log "timed out waiting for $what"; return 1; fi
    sleep 0.5
  done
}

ceph_() { ceph -c "$CONF" --connect-timeout 10 "$@"; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_rgw() {
  spawn rgw radosgw -f -c "$CONF" -n client.rgw.lm --keyring "$DIR/rgw/keyring"
  wait_for 60 "radosgw on port $(cat "$DIR/port")" \
    curl -sf -o /dev/null "http://127.0.0.1:$(cat "$DIR/port")/"
}

start() {
  stop_all
  # Everything a previous start made (a stale monmap would point the monitor elsewhere).
  rm -rf "$DIR"/{mon,mgr,osd,rgw,run,log} "$CONF" "$DIR"/{s3.env,monmap,mon.keyring,admin.keyring,fsid,port} \
    "$DIR"/*.log
  mkdir -p "$DIR"/{mon,mgr,osd,rgw,run,log}
  local fsid port
  fsid=$(python3 -c 'import uuid; print(uuid.uuid4())')
  echo "$fsid" >"$FSID_FILE"
  port=${PORT:-$(free_port)}
  echo "$port" >"$DIR/port"
  local monport
  monport=$(free_port)
  cat >"$CONF" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$monport
public network = 127.0.0.1/32
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $DIR/admin.keyring
run dir = $DIR/run
log file = $DIR/log/\$name.log
admin socket = $DIR/run/\$name.asok
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
ms bind ipv6 = false
[mon.a]
mon data = $DIR/mon
[mgr.a]
mgr data = $DIR/mgr
[osd.0]
osd data = $DIR/osd
osd objectstore = bluestore
bluestore block create = true
bluestore block size = 8589934592
osd memory target = 939524096
bluestore cache autotune = false
bluestore cache size = 134217728
[client.rgw.lm]
rgw frontends = beast endpoint=127.0.0.1:$port tcp_nodelay=1
rgw thread pool size = 64
rgw data = $DIR/rgw
rgw dns name = 127.0.0.1
EOF
  ceph-authtool --create-keyring "$DIR/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool --create-keyring "$DIR/admin.keyring" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
  ceph-authtool "$DIR/mon.keyring" --import-keyring "$DIR/admin.keyring" >/dev/null
  monmaptool --create --addv a "[v2:127.0.0.1:$monport]" --fsid "$fsid" "$DIR/monmap" >/dev/null
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/mon.keyring"
  spawn mon ceph-mon -f -c "$CONF" -i a
  wait_for 30 "the monitor" ceph_ mon stat

  ceph_ auth get-or-create mgr.a mon 'allow profile mgr' osd 'allow *' mds 'allow *' \
    >"$DIR/mgr/keyring"
  spawn mgr ceph-mgr -f -c "$CONF" -i a --keyring "$DIR/mgr/keyring"

  local osd_uuid
  osd_uuid=$(python3 -c 'import uuid; print(uuid.uuid4())')
  ceph_ osd new "$osd_uuid" 0 >/dev/null
  ceph_ auth get-or-create osd.0 mon 'allow profile osd' mgr 'allow profile osd' osd 'allow *' \
    >"$DIR/osd/keyring"
  ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" --keyring "$DIR/osd/keyring" \
    >"$DIR/osd-mkfs.log" 2>&1 || { log "ceph-osd --mkfs failed:"; tail -5 "$DIR/osd-mkfs.log" >&2; return 1; }
  spawn osd ceph-osd -f -c "$CONF" -i 0 --keyring "$DIR/osd/keyring"
  wait_for 60 "the OSD to come up" bash -c "ceph -c '$CONF' osd stat | grep -q '1 up'"

  ceph_ auth get-or-create client.rgw.lm mon 'allow rw' osd 'allow rwx' >"$DIR/rgw/keyring"
  start_rgw
  radosgw-admin -c "$CONF" user create --uid=livemount --display-name=livemount \
    --access-key="$ACCESS" --secret-key="$SECRET" >/dev/null
  cat >"$DIR/s3.env" <<EOF
export LM_S3_ENDPOINT=http://127.0.0.1:$port
export AWS_ACCESS_KEY_ID=$ACCESS
export AWS_SECRET_ACCESS_KEY=$SECRET
export AWS_DEFAULT_REGION=us-east-1
EOF
  log "S3 ready at http://127.0.0.1:$port ($SECONDS s)"
}

case "$cmd" in
  start)
    if ! start; then
      log "start failed; logs in $DIR"
      stop_all
      exit 1
    fi
    ;;
  stop) stop_all ;;
  pause) kill -STOP "$(cat "$DIR/rgw.pid")" ;;
  resume) kill -CONT "$(cat "$DIR/rgw.pid")" ;;
  restart-rgw)
    stop_daemon rgw
    start_rgw
    ;;
  *) echo "cluster.sh: unknown command '$cmd'" >&2; exit 2 ;;
esac
