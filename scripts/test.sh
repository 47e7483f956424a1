#!/usr/bin/env bash
# Runs every fleetward test. Installs what the tests need (Debian packages),
# makes sure PostgreSQL and NATS JetStream are reachable (starting the local
# services when this machine has them), then runs `go vet` (also for arm64 on
# the detector, which has amd64 assembly) and `go test`.
#
# In CI (CI=true) PostgreSQL and NATS are required: the run fails if either is
# unreachable. Elsewhere the suites that need them run when they are reachable
# and say so when they are not.
set -euo pipefail
cd "$(dirname "$0")/.."

export GOTOOLCHAIN=local
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
PG_URL="${FLEETWARD_TEST_POSTGRES:-postgres://127.0.0.1:5432/test?sslmode=disable}"
NATS_HOSTPORT="127.0.0.1:4222"

say() { printf '==> %s\n' "$*"; }

need_pkgs=()
command -v chromium >/dev/null 2>&1 || need_pkgs+=(chromium)
command -v openssl >/dev/null 2>&1 || need_pkgs+=(openssl)
command -v curl >/dev/null 2>&1 || need_pkgs+=(curl)
command -v psql >/dev/null 2>&1 || need_pkgs+=(postgresql-client)
command -v mosquitto_pub >/dev/null 2>&1 || need_pkgs+=(mosquitto-clients)
# The scan credential lab (internal/scan TestLab...): network namespaces with these services.
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_pkgs+=(mosquitto)
command -v dropbear >/dev/null 2>&1 || [ -x /usr/sbin/dropbear ] || need_pkgs+=(dropbear-bin)
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || need_pkgs+=(iproute2)
# The packet rules' real-kernel test drops 2% of a download with nft (internal/detect TestRulesOnRealKernelTraffic).
command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || need_pkgs+=(nftables)
# The detector reads what tcpdump -i any writes (internal/detect TestReaderReadsTcpdumpAnyCaptures).
command -v tcpdump >/dev/null 2>&1 || [ -x /usr/bin/tcpdump ] || need_pkgs+=(tcpdump)
if ((${#need_pkgs[@]})); then
  if [ "$(id -u)" = 0 ]; then
    say "installing ${need_pkgs[*]}"
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need_pkgs[@]}" >/dev/null
  else
    say "missing ${need_pkgs[*]} and not root: tests that need them will say so"
  fi
fi

# Debian's busybox has no telnetd: the lab uses busybox-static, unpacked into a
# cache directory (never installed over the system busybox).
LAB_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/fleetward-lab"
if [ ! -x "$LAB_CACHE/bin/busybox" ] && [ "$(id -u)" = 0 ]; then
  say "fetching busybox-static for the scan lab"
  mkdir -p "$LAB_CACHE/deb"
  (cd "$LAB_CACHE/deb" && { apt-get -o DPkg::Lock::Timeout=600 download busybox-static >/dev/null 2>&1 || { apt-get -o DPkg::Lock::Timeout=600 update -qq && apt-get -o DPkg::Lock::Timeout=600 download busybox-static >/dev/null 2>&1; }; } &&
    dpkg-deb -x busybox-static_*.deb "$LAB_CACHE/root" && mkdir -p "$LAB_CACHE/bin" &&
    cp "$LAB_CACHE/root/bin/busybox" "$LAB_CACHE/bin/busybox") || say "could not fetch busybox-static: the scan lab test will say so"
fi
[ -x "$LAB_CACHE/bin/busybox" ] && export FLEETWARD_LAB_BUSYBOX="$LAB_CACHE/bin/busybox"

pg_up() { psql "$PG_URL" -qtAc 'select 1' >/dev/null 2>&1; }
nats_up() { (exec 3<>"/dev/tcp/${NATS_HOSTPORT%:*}/${NATS_HOSTPORT#*:}") 2>/dev/null; }

if ! pg_up && command -v pg_ctlcluster >/dev/null 2>&1; then
  say "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  for _ in $(seq 30); do pg_up && break; sleep 1; done
fi
if ! nats_up && [ -x /usr/sbin/nats-server ]; then
  say "starting NATS with JetStream"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log || true
  for _ in $(seq 30); do nats_up && break; sleep 1; done
fi

if [ "${CI:-}" = "true" ]; then
  export FLEETWARD_REQUIRE_POSTGRES=1 FLEETWARD_REQUIRE_NATS=1
  pg_up || { echo "CI: PostgreSQL at $PG_URL is unreachable" >&2; exit 1; }
  nats_up || { echo "CI: NATS at $NATS_HOSTPORT is unreachable" >&2; exit 1; }
fi
if pg_up; then say "PostgreSQL reachable at $PG_URL: store suites run on SQLite and PostgreSQL"
else say "PostgreSQL NOT reachable at $PG_URL: store suites run on SQLite only"; fi
if nats_up; then say "NATS reachable at $NATS_HOSTPORT: bus suites run embedded and external"
else say "NATS NOT reachable at $NATS_HOSTPORT: bus suites run embedded only"; fi

say "go vet"
go vet ./...
# The detector has amd64 assembly with plain-Go twins for other processors:
# vet those builds too, so that a kernel never goes missing off amd64.
say "go vet (arm64: the detector without its amd64 kernels)"
GOARCH=arm64 go vet ./internal/detect/
say "go build (CGO_ENABLED=0)"
CGO_ENABLED=0 go build -o /dev/null ./cmd/fleetward
say "go test (artifacts such as the dashboard screenshots go to test-output/)"
mkdir -p test-output
go test -count=1 -timeout 30m -artifacts -outputdir "$PWD/test-output" "$@" ./...
