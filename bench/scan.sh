#!/bin/sh
# Port discovery over a /24 in network namespaces: fleetward scan against
# nmap -sT -Pn -T4 on the same TCP ports, in the same run.
#
# Lab: namespace fwu2-lan holds 10.200.2.10-29 (20 hosts, 5-9 of the default
# TCP ports each with canned banners, CoAP/SSDP/BACnet on every fourth) on
# one end of a veth; namespace fwu2-scan holds 10.200.2.1/24 on the other
# end and runs both scanners. The other 235 addresses of the /24 do not
# answer ARP, as on a real LAN. Nothing leaves 10.200.2.0/24: neither
# namespace has a default route. Torn down on exit, also on failure.
#
# Usage (root): bench/scan.sh [extra fleetward scan flags, e.g. --rate 2000]
# Needs: ip (iproute2), nmap, python3, go.
set -eu
cd "$(dirname "$0")/.."
NET=10.200.2
SCAN_NS=fwu2-scan
LAN_NS=fwu2-lan
WORK=$(mktemp -d)
LISTENER_PID=

teardown() {
	[ -n "$LISTENER_PID" ] && kill "$LISTENER_PID" 2>/dev/null || true
	ip netns del "$SCAN_NS" 2>/dev/null || true
	ip netns del "$LAN_NS" 2>/dev/null || true
	rm -rf "$WORK"
}
trap teardown EXIT INT TERM

ip netns del "$SCAN_NS" 2>/dev/null || true
ip netns del "$LAN_NS" 2>/dev/null || true
ip netns add "$SCAN_NS"
ip netns add "$LAN_NS"
ip link add fwu2-s type veth peer name fwu2-l
ip link set fwu2-s netns "$SCAN_NS"
ip link set fwu2-l netns "$LAN_NS"
ip -n "$SCAN_NS" addr add "$NET.1/24" dev fwu2-s
for i in $(seq 10 29); do ip -n "$LAN_NS" addr add "$NET.$i/24" dev fwu2-l; done
for ns in "$SCAN_NS" "$LAN_NS"; do
	ip -n "$ns" link set lo up
done
ip -n "$SCAN_NS" link set fwu2-s up
ip -n "$LAN_NS" link set fwu2-l up

GOTOOLCHAIN=local go build -o "$WORK/fleetward" ./cmd/fleetward
ip netns exec "$LAN_NS" python3 bench/scanlab.py "$NET" 10 20 "$WORK/expected" &
LISTENER_PID=$!
for _ in $(seq 50); do [ -s "$WORK/expected" ] && break; sleep 0.1; done
[ -s "$WORK/expected" ] || { echo "listeners did not start" >&2; exit 1; }

TCP_PORTS=23,2323,22,80,443,8080,8443,554,1883,8883,502,5000,7547,37777,34567
now() { date +%s.%N; }

t0=$(now)
ip netns exec "$SCAN_NS" "$WORK/fleetward" scan "$NET.0/24" --json "$@" > "$WORK/fleetward.json" 2>"$WORK/fleetward.err"
t1=$(now)
ip netns exec "$SCAN_NS" nmap -sT -Pn -T4 -n -p "$TCP_PORTS" "$NET.0/24" -oX - > "$WORK/nmap.xml" 2>"$WORK/nmap.err"
t2=$(now)

python3 - "$WORK" "$t0" "$t1" "$t2" <<'PY'
import json, sys, xml.etree.ElementTree as ET
work, t0, t1, t2 = sys.argv[1], *map(float, sys.argv[2:])
fw = json.load(open(f"{work}/fleetward.json"))
fw_tcp = {f"{h['addr']}:{p['number']}" for h in fw["hosts"] for p in h["ports"] if p["proto"] == "tcp"}
fw_udp = sorted(f"{h['addr']}:{p['number']}/udp {p['service']}" for h in fw["hosts"] for p in h["ports"] if p["proto"] == "udp")
nm = set()
for host in ET.parse(f"{work}/nmap.xml").getroot().iter("host"):
    addr = host.find("address").get("addr")
    for p in host.iter("port"):
        if p.find("state").get("state") == "open":
            nm.add(f"{addr}:{p.get('portid')}")
expected = set(open(f"{work}/expected").read().split())
fw_s, nm_s = t1 - t0, t2 - t1
print(f"fleetward scan: {fw_s:.2f} s, {len(fw_tcp)} open TCP ports, {len(fw_udp)} open UDP ports, "
      f"{sum(1 for h in fw['hosts'] if h.get('guess'))} hosts with a guess")
from collections import Counter
svc = Counter(f"{p['service']}/{p['proto']}" for h in fw["hosts"] for p in h["ports"])
print("fleetward services:", ", ".join(f"{k} {v}" for k, v in sorted(svc.items())))
print(f"nmap -sT -Pn -T4: {nm_s:.2f} s, {len(nm)} open TCP ports")
print(f"ratio fleetward/nmap: {fw_s / nm_s:.2f} ({'faster' if fw_s < nm_s else 'slower'} than nmap)")
print(f"listeners started: {len(expected)}")
ok = True
for name, got in (("nmap", nm), ("fleetward", fw_tcp)):
    if got != expected:
        ok = False
        print(f"{name} differs from the listeners: missing {sorted(expected - got)}, extra {sorted(got - expected)}")
if fw_tcp == nm:
    print("open TCP port sets: identical")
else:
    ok = False
    print(f"open TCP port sets DIFFER: only fleetward {sorted(fw_tcp - nm)}, only nmap {sorted(nm - fw_tcp)}")
print("UDP (fleetward only):", ", ".join(fw_udp[:6]), "..." if len(fw_udp) > 6 else "")
sys.exit(0 if ok else 1)
PY
