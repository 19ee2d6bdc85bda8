#!/usr/bin/env bash
# bench-smoke.sh: the throughput suite's smoke run, part of `make test`.
# It runs `merlin bench -quick` (about a minute) over every transport
# available here and the peers, with perf required, then checks that every
# server has its lines, that no run failed, and that benchstat reads the
# results. perf (Debian: linux-perf) and benchstat must be installed:
# `make deps` (scripts/deps.sh) installs them, benchstat into .bin/; a
# missing one fails the run.
#
# Usage: scripts/bench-smoke.sh [merlin-binary] (PEERS=gnet,netstd,nbio,cfloor-epoll,cfloor-uring)
set -euo pipefail

merlin=${1:-.bin/merlin}
peers=${PEERS:-gnet,netstd,nbio,cfloor-epoll,cfloor-uring}

fail() { echo "bench-smoke: $*" >&2; exit 1; }

command -v perf >/dev/null || fail "perf is not installed (Debian: apt-get install linux-perf)"
benchstat=$(command -v benchstat || echo "$(dirname "$0")/../.bin/benchstat")
[ -x "$benchstat" ] || fail "benchstat is not installed (make deps installs it into .bin/)"
[ -x "$merlin" ] || fail "no merlin binary at $merlin (make build)"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

start=$(date +%s)
if ! "$merlin" bench -quick -peers "$peers" -perf on -out "$out"; then
	fail "merlin bench -quick failed"
fi
echo "bench-smoke: merlin bench -quick took $(( $(date +%s) - start )) s"

# Every transport available here, its adapter mode for sockets, and every
# peer has its echo lines.
servers=$(sed -n 's/^\([a-z0-9]*\): .*/\1/p' <("$merlin" transports) | while read -r t; do
	if "$merlin" transports | grep -A1 "^$t: " | grep -q '  available'; then echo "$t"; fi
done)
for s in $servers sockets-netconn ${peers//,/ }; do
	grep -q "^BenchmarkEcho/server=$s/" "$out/results.txt" || fail "no result for server $s in results.txt"
done

"$benchstat" -col /server "$out/results.txt" >"$out/benchstat.txt" 2>&1 || { cat "$out/benchstat.txt"; fail "benchstat could not read the results"; }
for s in $servers ${peers//,/ }; do
	grep -q " $s " "$out/benchstat.txt" || { cat "$out/benchstat.txt"; fail "benchstat's comparison has no column for $s"; }
done
grep -q 'syscalls/req' "$out/benchstat.txt" || fail "benchstat's comparison has no syscalls/req"
echo "bench-smoke: ok (benchstat compared: $(echo $servers ${peers//,/ }))"
