#!/bin/sh
# Credential-audit lab for internal/scan TestLabCredentialAudit (Linux, root).
#   lab.sh up DIR BUSYBOX   build the lab, files under DIR
#   lab.sh down             remove it (also a stale one from a killed run)
# Two network namespaces inside 10.200.0.0/16, no routes beyond their /30:
#   fwcred-weak   10.200.41.2  busybox telnetd root/xc3511 (admin/admin too), dropbear admin/admin (no root: -w),
#                              busybox httpd basic auth admin/admin, mosquitto admin/admin on 1883,
#                              anonymous on 1884
#   fwcred-strong 10.200.42.2  dropbear without password auth (-s), busybox httpd with a strong
#                              password, mosquitto with mTLS only on 8883
# The host ends are 10.200.41.1 and 10.200.42.1. Logins get a fake shell that runs nothing.
set -eu
WEAK=fwcred-weak STRONG=fwcred-strong

down() {
  for ns in $WEAK $STRONG; do
    if ip netns list | grep -qw "$ns"; then
      # Only the processes inside the lab's own namespaces, by id.
      for pid in $(ip netns pids "$ns"); do kill "$pid" 2>/dev/null || true; done
      sleep 0.2
      for pid in $(ip netns pids "$ns"); do kill -9 "$pid" 2>/dev/null || true; done
      ip netns del "$ns"
    fi
  done
  ip link del fwcw-h 2>/dev/null || true
  ip link del fwcs-h 2>/dev/null || true
}

# ns NAME HOSTVETH DEVVETH SUBNET(third octet)
mkns() {
  ip netns add "$1"
  ip link add "$2" type veth peer name "$3"
  ip link set "$3" netns "$1"
  ip addr add "10.200.$4.1/30" dev "$2"; ip link set "$2" up
  ip netns exec "$1" ip addr add "10.200.$4.2/30" dev "$3"
  ip netns exec "$1" ip link set "$3" up
  ip netns exec "$1" ip link set lo up
}

# accounts DIR user:pass...
accounts() {
  d=$1; shift
  : > "$d/passwd"; : > "$d/shadow"; uid=0
  for up in "$@"; do
    u=${up%%:*} p=${up#*:}
    printf '%s:x:%d:%d:%s:/tmp:%s\n' "$u" $uid $uid "$u" "$L/bin/fakesh" >> "$d/passwd"
    printf '%s:%s:19000:0:99999:7:::\n' "$u" "$(openssl passwd -6 -salt fwlabsalt "$p")" >> "$d/shadow"
    uid=$((uid + 1000))
  done
  chmod 600 "$d/shadow"
  printf '/bin/sh\n%s\n' "$L/bin/fakesh" > "$d/shells"
}

up() {
  L=$1 BB=$2
  down
  mkdir -p "$L/bin" "$L/weak/www" "$L/strong/www" "$L/pki" "$L/log"
  cat > "$L/bin/fakesh" <<'SH'
#!/bin/sh
if [ "${1:-}" = "-c" ]; then echo "sh: not found"; exit 127; fi
echo "BusyBox v1.35.0 (fleetward lab) built-in shell (ash)"
while printf '# ' && IFS= read -r line; do
  case "$line" in exit*|logout*) exit 0 ;; esac
  echo "sh: not found"
done
SH
  chmod 755 "$L/bin/fakesh"
  ln -sf "$BB" "$L/bin/login"
  accounts "$L/weak" root:xc3511 admin:admin
  accounts "$L/strong" root:'Vq7#kR2!pLm9xZ' admin:'tN4$wB8@hQ1&eY'
  echo '<html><title>IPCamera Web</title>ok</html>' > "$L/weak/www/index.html"
  cp "$L/weak/www/index.html" "$L/strong/www/index.html"
  printf '/:admin:admin\n' > "$L/weak/httpd.conf"
  printf '/:admin:tN4$wB8@hQ1&eY\n' > "$L/strong/httpd.conf"
  # dropbear 2022.83 offers RSA host key algorithms even without an RSA key
  # (and then fails an assertion), so each server gets both kinds.
  for side in weak strong; do
    rm -f "$L/$side/hostkey" "$L/$side/hostkey-rsa"
    dropbearkey -t ed25519 -f "$L/$side/hostkey" >/dev/null 2>&1
    dropbearkey -t rsa -s 2048 -f "$L/$side/hostkey-rsa" >/dev/null 2>&1
  done
  (cd "$L/pki"
   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=fwlab-ca 2>/dev/null
   openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr -subj /CN=fwlab-broker 2>/dev/null
   printf 'subjectAltName=IP:10.200.42.2\nextendedKeyUsage=serverAuth\n' > server.ext
   openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile server.ext 2>/dev/null
   chmod 644 ./*.key)
  mosquitto_passwd -b -c "$L/weak/mosquitto.passwd" admin admin
  chmod 644 "$L/weak/mosquitto.passwd"
  cat > "$L/weak/mosquitto.conf" <<M
per_listener_settings true
user root
log_dest stderr
listener 1883 10.200.41.2
allow_anonymous false
password_file $L/weak/mosquitto.passwd
listener 1884 10.200.41.2
allow_anonymous true
M
  cat > "$L/strong/mosquitto.conf" <<M
per_listener_settings true
user root
log_dest stderr
listener 8883 10.200.42.2
allow_anonymous false
cafile $L/pki/ca.crt
certfile $L/pki/server.crt
keyfile $L/pki/server.key
require_certificate true
use_identity_as_username true
M
  mkns $WEAK fwcw-h fwcw-d 41
  mkns $STRONG fwcs-h fwcs-d 42
  # A private mount namespace each, so the fake accounts apply to the lab's services only.
  ip netns exec $WEAK unshare -m sh -c "
    mount --bind $L/weak/passwd /etc/passwd; mount --bind $L/weak/shadow /etc/shadow; mount --bind $L/weak/shells /etc/shells
    $BB telnetd -F -b 10.200.41.2:23 -l $L/bin/login > $L/log/weak-telnetd.log 2>&1 &
    dropbear -F -E -w -p 10.200.41.2:22 -r $L/weak/hostkey -r $L/weak/hostkey-rsa > $L/log/weak-dropbear.log 2>&1 &
    $BB httpd -f -p 10.200.41.2:80 -h $L/weak/www -c $L/weak/httpd.conf -r IPCamera > $L/log/weak-httpd.log 2>&1 &
    mosquitto -c $L/weak/mosquitto.conf > $L/log/weak-mosquitto.log 2>&1 &
    wait" </dev/null >/dev/null 2>&1 &
  ip netns exec $STRONG unshare -m sh -c "
    mount --bind $L/strong/passwd /etc/passwd; mount --bind $L/strong/shadow /etc/shadow; mount --bind $L/strong/shells /etc/shells
    dropbear -F -E -s -p 10.200.42.2:22 -r $L/strong/hostkey -r $L/strong/hostkey-rsa > $L/log/strong-dropbear.log 2>&1 &
    $BB httpd -f -p 10.200.42.2:80 -h $L/strong/www -c $L/strong/httpd.conf -r Camera > $L/log/strong-httpd.log 2>&1 &
    mosquitto -c $L/strong/mosquitto.conf > $L/log/strong-mosquitto.log 2>&1 &
    wait" </dev/null >/dev/null 2>&1 &
  # Wait until every service listens.
  for _ in $(seq 50); do
    w=$(ip netns exec $WEAK ss -Hltn | wc -l) s=$(ip netns exec $STRONG ss -Hltn | wc -l)
    [ "$w" -ge 5 ] && [ "$s" -ge 3 ] && return 0
    sleep 0.2
  done
  echo "lab services did not all start; logs in $L/log" >&2
  ip netns exec $WEAK ss -ltn >&2; ip netns exec $STRONG ss -ltn >&2
  exit 1
}

case "${1:-}" in
  up) up "$2" "$3" ;;
  down) down ;;
  *) echo "usage: $0 up DIR BUSYBOX | down" >&2; exit 2 ;;
esac
