#!/usr/bin/env bash
# Broker benchmark of docs/BENCHMARKS.md ("## Broker"): fleetward's MQTT
# broker (mutual TLS, ACL and rate-limit checks on) against Debian's
# mosquitto (mutual TLS, use_identity_as_username, acl_file) on the same
# certificates, in the same run, driven by bench/mqttload.
#   throughput: 50 publishers -> 1 subscriber, 256-byte payloads, QoS 0 and 1
#   scale:      N concurrent mTLS sessions, X25519MLKEM768 vs X25519
# Usage: bash bench/broker.sh [--duration 10s] [--conns 2000] [--no-scale]
# Both brokers listen on free 127.0.0.1 ports; the system mosquitto (:1883)
# is not touched.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
duration=10s conns=2000 scale=1
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift ;;
    --conns) conns=$2; shift ;;
    --no-scale) scale=0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
mosq=$(command -v mosquitto || echo /usr/sbin/mosquitto)
[ -x "$mosq" ] || { echo "mosquitto not installed (Debian package mosquitto)" >&2; exit 1; }
out=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
if [ "$conns" -gt 1000 ]; then ulimit -n $((conns * 2 + 1024)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"; fi

go build -o "$out/mqttload" ./bench/mqttload
load="$out/mqttload"
"$load" gen -dir "$out"
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_fleetward / start_mosquitto (re)start a broker on a free port and
# set fport/fpid or mport/mpid.
start_fleetward() {
  if [ -n "${fpid:-}" ]; then kill "$fpid" 2>/dev/null || true; wait "$fpid" 2>/dev/null || true; fi
  fport=$(freeport)
  "$load" serve -dir "$out" -addr "127.0.0.1:$fport" >>"$out/fleetward.log" 2>&1 &
  fpid=$!; pids+=("$fpid")
}
cat >"$out/acl" <<'EOF'
user sub
topic read devices/+/telemetry
pattern write devices/%u/telemetry
pattern write devices/%u/inventory
pattern write devices/%u/events
pattern write devices/%u/status
pattern read devices/%u/cmd/#
EOF
start_mosquitto() {
  if [ -n "${mpid:-}" ]; then kill "$mpid" 2>/dev/null || true; wait "$mpid" 2>/dev/null || true; fi
  mport=$(freeport)
  # Queue and inflight limits set to what fleetward's broker allows a client
  # (1,024 pending writes, 1,024 unacknowledged QoS 1) instead of
  # mosquitto's defaults (1,000 and 20).
  cat >"$out/mosquitto.conf" <<EOF
persistence false
user $(id -un)
log_dest stderr
log_type error
log_type warning
per_listener_settings false
acl_file $out/acl
max_queued_messages 1024
max_inflight_messages 1024
listener $mport 127.0.0.1
cafile $out/ca.crt
certfile $out/server.crt
keyfile $out/server.key
tls_version tlsv1.3
require_certificate true
use_identity_as_username true
EOF
  "$mosq" -c "$out/mosquitto.conf" >>"$out/mosquitto.log" 2>&1 &
  mpid=$!; pids+=("$mpid")
}
start_fleetward
start_mosquitto
sleep 1
kill -0 "$mpid" || { cat "$out/mosquitto.log"; exit 1; }
kill -0 "$fpid" || { cat "$out/fleetward.log"; exit 1; }

echo "== machine: $(nproc) cores, $(go version | cut -d' ' -f3), $("$mosq" -h | head -1), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "== throughput: 50 publishers -> 1 subscriber, 256 B, $duration per case, mutual TLS 1.3"
# Cases QOS:RATE, RATE the offered messages/s over all publishers (0: as
# fast as each connection goes, which overloads both brokers on this
# machine; 20000: below saturation, to see delivery without overload).
cases="0:0 0:20000 1:0 1:20000"
for c in $cases; do
  qos=${c%%:*} rate=${c##*:}
  "$load" pub -dir "$out" -addr "127.0.0.1:$fport" -qos "$qos" -rate "$rate" -duration "$duration" -label fleetward | tee -a "$out/pub.txt"
  "$load" pub -dir "$out" -addr "127.0.0.1:$mport" -qos "$qos" -rate "$rate" -duration "$duration" -label mosquitto | tee -a "$out/pub.txt"
done
if [ "$scale" = 1 ]; then
  echo "== connection scale: $conns concurrent sessions per broker and key exchange"
  # Each case on freshly started brokers, so that one case's freed memory
  # does not hide the next one's growth. Debian's mosquitto links OpenSSL
  # 3.0, which has no ML-KEM: its X25519MLKEM768 case fails the handshake.
  for curve in X25519MLKEM768 X25519; do
    start_fleetward; start_mosquitto; sleep 1
    "$load" conns -dir "$out" -addr "127.0.0.1:$fport" -n "$conns" -curve $curve -pid "$fpid" -label fleetward | tee -a "$out/conns.txt"
    "$load" conns -dir "$out" -addr "127.0.0.1:$mport" -n "$conns" -curve $curve -pid "$mpid" -label mosquitto | tee -a "$out/conns.txt"
  done
fi

field() { awk -v k="$1=" '{for(i=1;i<=NF;i++) if(index($i,k)==1) print substr($i,length(k)+1)}'; }
echo
echo "== summary (fleetward / mosquitto, same run)"
for c in $cases; do
  qos=${c%%:*} rate=${c##*:}
  f=$(grep "RESULT fleetward qos=$qos rate=$rate " "$out/pub.txt" | field msgs/s)
  m=$(grep "RESULT mosquitto qos=$qos rate=$rate " "$out/pub.txt" | field msgs/s)
  awk -v q="$qos" -v r="$rate" -v f="$f" -v m="$m" 'BEGIN{printf "QoS %d offered %-9s fleetward %8d msgs/s received  mosquitto %8d msgs/s received  ratio %.2f\n", q, (r==0?"max":r"/s"), f, m, f/m}'
done
if [ "$scale" = 1 ]; then
  for curve in X25519MLKEM768 X25519; do
    for b in fleetward mosquitto; do
      l=$(grep "RESULT $b curve=$curve " "$out/conns.txt")
      printf '%-9s %-15s sessions %s  handshakes/s %s  KiB/session %s\n' "$b" "$curve" \
        "$(echo "$l" | field sessions)" "$(echo "$l" | field handshakes/s)" "$(echo "$l" | field kib/session)"
    done
  done
fi
echo "raw output in $out"
