#!/usr/bin/env bash
# demo.sh: a short side-by-side of every transport available here on the
# echo workload. For each transport it starts `merlin serve` pinned to CPU 0
# and runs `merlin load` pinned to CPU 1 (where there are two CPUs), then
# prints requests per second and the server's CPU time per request, user and
# system apart, read from /proc/PID/stat before and after the run.
#
# It is a first look, not a measurement: one short run per row on a shared
# machine. Papers (papers/) measure with rounds, interleaving and medians.
#
# Usage: scripts/demo.sh [merlin-binary] (DURATION=5s CONNS=64 SIZE=64)
set -euo pipefail

merlin=${1:-.bin/merlin}
duration=${DURATION:-5s}
conns=${CONNS:-64}
size=${SIZE:-64}

pin_server=() pin_client=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
	pin_server=(taskset -c 0) pin_client=(taskset -c 1)
fi
tck=$(getconf CLK_TCK)

# cpu_ticks PID: user and system ticks of PID (fields 14 and 15 of stat;
# the command name, field 2, has no spaces here).
cpu_ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }

printf '%-12s %6s %8s %12s %14s %14s\n' transport depth conns "req/s" "user ns/req" "sys ns/req"
for t in $("$merlin" transports -names); do
	if ! "$merlin" transports | grep -A1 "^$t: " | grep -q '  available'; then
		printf '%-12s not available here\n' "$t"
		continue
	fi
	for depth in 1 16; do
		out=$(mktemp)
		GOMAXPROCS=1 "${pin_server[@]}" "$merlin" serve -transport "$t:loops=1" -addr 127.0.0.1:0 >"$out" 2>/dev/null &
		pid=$!
		for _ in $(seq 100); do grep -q '^listening on' "$out" && break; sleep 0.05; done
		addr=$(sed -n 's/^listening on \([^ ]*\) .*/\1/p' "$out")
		[ -n "$addr" ] || { echo "demo: $t did not start" >&2; kill "$pid"; exit 1; }
		read -r u0 s0 < <(cpu_ticks "$pid")
		line=$("${pin_client[@]}" "$merlin" load -addr "$addr" -conns "$conns" -size "$size" -depth "$depth" -duration "$duration" | grep '^Benchmark')
		read -r u1 s1 < <(cpu_ticks "$pid")
		kill -TERM "$pid"; wait "$pid" || true
		rm -f "$out"
		# BenchmarkLoad/... N ns/op R req/s ...
		n=$(awk '{print $2}' <<<"$line")
		rps=$(awk '{for (i=1;i<NF;i++) if ($(i+1)=="req/s") print $i}' <<<"$line")
		awk -v t="$t" -v d="$depth" -v c="$conns" -v r="$rps" -v n="$n" -v du=$((u1-u0)) -v ds=$((s1-s0)) -v hz="$tck" \
			'BEGIN { printf "%-12s %6d %8d %12.0f %14.0f %14.0f\n", t, d, c, r, du/hz*1e9/n, ds/hz*1e9/n }'
	done
done
