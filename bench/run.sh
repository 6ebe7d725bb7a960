#!/usr/bin/env bash
# The scale benchmark (docs/performance.md), one command:
#   bench/run.sh [N ...]        default: 1000 10000 100000
# Installs its peers (Debian nsd, dnsperf, time; checkdmarc from PyPI), builds
# mxaudit in release mode, generates the synthetic world, serves it from NSD on
# 127.0.0.77:53 (loopback only), and measures, in one run against that server:
#   - mxaudit audit --domains-file --dns-only: domains/s, queries the server
#     received per domain vs the minimal question set, peak RSS, UDP drops;
#   - dnsperf replaying the minimal question set: the server's capacity;
#   - checkdmarc on the first 1,000 domains: wall time.
# Writes the table to bench/results.md (docs/performance.md quotes it).
set -euo pipefail
cd "$(dirname "$0")/.."
NS_IP=127.0.0.77
SIZES=("${@:-1000 10000 100000}")
read -r -a SIZES <<< "${SIZES[*]}"
WORK=$(mktemp -d /tmp/mxaudit-bench.XXXXXX)
trap '[ -n "${NSD_PID:-}" ] && kill "$NSD_PID" 2>/dev/null || true' EXIT

need() { command -v "$1" >/dev/null 2>&1; }
if ! need nsd || ! need dnsperf || [ ! -x /usr/bin/time ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nsd dnsperf time >/dev/null
fi
need checkdmarc || python3 -m pip install -q checkdmarc==6.0.4

cargo build --release -q -p mxaudit
MXAUDIT=${CARGO_TARGET_DIR:-$PWD/target}/release/mxaudit
MAX=0; for n in "${SIZES[@]}"; do [ "$n" -gt "$MAX" ] && MAX=$n; done
python3 bench/world.py --out "$WORK" --n "${SIZES[@]}" > "$WORK/world.txt"

cat > "$WORK/nsd.conf" <<CONF
server:
    ip-address: $NS_IP
    port: 53
    username: ""
    zonesdir: "$WORK"
    database: ""
    pidfile: "$WORK/nsd.pid"
    logfile: "$WORK/nsd.log"
    xfrdfile: "$WORK/xfrd.state"
    zonelistfile: "$WORK/zone.list"
    server-count: 1
    verbosity: 0
    hide-version: yes
    # Response rate limiting would throttle a benchmark from one address.
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: yes
    control-interface: $WORK/nsd.sock
zone:
    name: bench.
    zonefile: bench.zone
zone:
    name: in-addr.arpa.
    zonefile: reverse.zone
CONF
# The default blocklists, under their real zone names (as the testbed serves them).
while read -r z; do
  printf 'zone:\n    name: %s.\n    zonefile: %s.zone\n' "$z" "$z" >> "$WORK/nsd.conf"
done < "$WORK/lists.txt"
nsd -c "$WORK/nsd.conf" -d > "$WORK/nsd.out" 2>&1 &
NSD_PID=$!
for _ in $(seq 1 100); do
  dig_ok=$(nsd-control -c "$WORK/nsd.conf" status 2>/dev/null | grep -c version || true)
  [ "$dig_ok" -gt 0 ] && break
  sleep 0.2
done

queries() { nsd-control -c "$WORK/nsd.conf" stats_noreset | awk -F= '/^num.queries=/{print $2}'; }
udp_errors() { awk '/^Udp: [0-9]/{print $4 + $6}' /proc/net/snmp; }

CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); CORES=$(nproc)
{
  echo "Machine: $CPU, $CORES cores, $(free -g | awk '/^Mem:/{print $2}') GiB; $(uname -sr)."
  echo "Server: NSD $(nsd -v 2>&1 | head -1 | awk '{print $3}') on $NS_IP:53 (loopback). Command: \`bench/run.sh ${SIZES[*]}\`."
  echo
  echo "| N | minimal questions/domain | mxaudit domains/s | server queries/domain | vs minimal | mxaudit qps | dnsperf qps (server capacity) | capacity ÷ min q/domain | peak RSS MiB | UDP drops |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
} > "$WORK/results.md"

for n in "${SIZES[@]}"; do
  head -n "$n" "$WORK/domains.txt" > "$WORK/domains-$n.txt"
  minimal=$(wc -l < "$WORK/minimal-$n.txt")
  # The server's capacity on the same questions.
  dnsperf -s "$NS_IP" -p 53 -d "$WORK/minimal-$n.txt" -l 10 -c 8 -T 2 -q 500 > "$WORK/dnsperf-$n.txt" 2>&1 || true
  capacity=$(awk '/Queries per second:/{print $4}' "$WORK/dnsperf-$n.txt")
  before=$(queries); udp_before=$(udp_errors)
  start=$(date +%s.%N)
  /usr/bin/time -v "$MXAUDIT" audit --domains-file "$WORK/domains-$n.txt" --dns-only --format jsonl \
      --output "$WORK/out-$n.jsonl" --nameserver "$NS_IP:53" --timeout 2s \
      --allow-target 198.18.0.0/15 --no-rate-limits --fail-on critical 2> "$WORK/time-$n.txt" || true
  end=$(date +%s.%N)
  after=$(queries); udp_after=$(udp_errors)
  secs=$(echo "$end - $start" | bc -l)
  received=$((after - before))
  rss=$(awk '/Maximum resident set size/{printf "%.0f", $6/1024}' "$WORK/time-$n.txt")
  python3 - "$n" "$minimal" "$secs" "$received" "$capacity" "$rss" "$((udp_after - udp_before))" >> "$WORK/results.md" <<'PY'
import sys
n, minimal, secs, received, capacity, rss, drops = sys.argv[1:]
n, minimal, secs, received = int(n), int(minimal), float(secs), int(received)
capacity = float(capacity or 0)
print(f"| {n:,} | {minimal / n:.2f} | {n / secs:,.0f} | {received / n:.2f} | {100 * (received - minimal) / minimal:+.1f}% | "
      f"{received / secs:,.0f} | {capacity:,.0f} | {capacity / (minimal / n):,.0f} | {rss} | {drops} |")
PY
done

# The peer: checkdmarc on the first 1,000 domains, same server (it checks MX,
# SPF, DMARC, BIMI, MTA-STS, TLS-RPT and DNSSEC; --skip-tls: no SMTP).
head -n 1000 "$WORK/domains.txt" > "$WORK/peer.txt"
start=$(date +%s.%N)
checkdmarc "$WORK/peer.txt" --skip-tls -t 2 -n "$NS_IP" -o "$WORK/checkdmarc.json" > /dev/null 2> "$WORK/checkdmarc.err" || true
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(len(d) if isinstance(d, list) else 1, \"domains in checkdmarc output\")" "$WORK/checkdmarc.json" >&2 || { echo "checkdmarc failed:" >&2; head -c 2000 "$WORK/checkdmarc.err" >&2; }
end=$(date +%s.%N)
peer_secs=$(echo "$end - $start" | bc -l)
start=$(date +%s.%N)
"$MXAUDIT" audit --domains-file "$WORK/peer.txt" --dns-only --format jsonl --output "$WORK/peer.jsonl" \
    --nameserver "$NS_IP:53" --timeout 2s --allow-target 198.18.0.0/15 --no-rate-limits --fail-on critical 2>/dev/null || true
end=$(date +%s.%N)
ours_secs=$(echo "$end - $start" | bc -l)
python3 - "$peer_secs" "$ours_secs" >> "$WORK/results.md" <<'PY'
import sys
peer, ours = map(float, sys.argv[1:])
print()
print("| first 1,000 domains | checks | wall time s | domains/s |")
print("|---|---|---|---|")
print(f"| checkdmarc 6.0.4 (--skip-tls) | MX, SPF, DMARC, BIMI, MTA-STS, TLS-RPT, DNSSEC; no PTR, no A/AAAA, no blocklists | {peer:.2f} | {1000 / peer:,.0f} |")
print(f"| mxaudit --dns-only | MX, A/AAAA, PTR + forward confirmation, SPF tree, DMARC, 7 blocklists, MTA-STS, TLS-RPT | {ours:.2f} | {1000 / ours:,.0f} |")
print(f"| ratio | | | {peer / ours:,.1f}x |")
PY
cp "$WORK/results.md" bench/results.md
echo "work dir: $WORK" >&2
cat bench/results.md
