#!/usr/bin/env bash
# instructions.sh: the user-space instructions merlin's loop transports run
# per request, beside the floors of their mechanisms (papers/0003, "What
# is left for libuvlike"): libuvlike beside gofloor-epoll, cfloor-epoll
# and libuv (its model, in C), uring beside gofloor-uring and
# cfloor-uring.
# Each server runs under valgrind's callgrind, which counts every
# instruction executed in user space (the kernel's are not counted), with
# one P, echoing 64 B for 64 connections at 2,000 req/s, and the io_uring
# servers and libuvlike again saturated (1,000 connections, a closed loop
# of the busy-polling ring generator), where a wake-up brings dozens of
# completions and what is paid per wake-up spreads over them. Each is counted
# over two loads of different lengths and the difference is divided by
# the difference in requests, so that what does not grow with the
# requests (dialing, accepting and closing the connections, start-up)
# drops out.
#
# libuvlike's yield before a wait (schedtick's Ticker: a runtime.Gosched
# every 8 ms at most) comes by the wall clock, and so as often per request
# as natively at 2,000 req/s: at 20 times the rate its share per request
# is a twentieth. It is reported apart.
#
# The Go servers run without asynchronous preemption and with RDTSCP
# hidden (GODEBUG): valgrind 3.19 delivers neither the runtime's
# preemption signal nor that instruction (the runtime reads it when one
# of its locks is contended).
#
# Usage: papers/0003-at-the-floor/residual/instructions.sh [MERLIN]
# (about 6 minutes; needs valgrind and libuv1-dev: Debian's apt-get install
# -y valgrind libuv1-dev).
# MERLIN defaults to .bin/merlin (make build). Output: instructions.out
# beside this script.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
merlin=${1:-$root/.bin/merlin}
for tool in valgrind callgrind_control callgrind_annotate cc go; do
	command -v "$tool" >/dev/null || { echo "instructions.sh: $tool is missing (Debian: apt-get install -y valgrind gcc)" >&2; exit 1; }
done
for h in liburing.h uv.h; do
	[ -e "/usr/include/$h" ] || { echo "instructions.sh: $h is missing (Debian: apt-get install -y liburing-dev libuv1-dev)" >&2; exit 1; }
done
tmp=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
for m in epoll uring; do
	(cd "$root/peers" && go build -ldflags=-checklinkname=0 -o "$tmp/gofloor-$m" ./gofloor-$m)
done
# A C peer is built as merlin bench builds it: with the flags of its
# main.c's first line ("// cflags: -luring").
for p in cfloor-epoll cfloor-uring libuv; do
	# shellcheck disable=SC2046 # the flags are a list
	(cd "$root/peers/$p" && cc -O2 -Wall -Werror -o "$tmp/$p" main.c $(sed -n '1s|^// cflags:||p' main.c))
done

short=4s
long=12s
fixed="-conns 64 -rate 2000"
saturated="-conns 1000 -engine ring"
loadargs=$fixed

# load DURATION: one load against $addr ($loadargs); prints the requests
# it counted.
load() {
	# shellcheck disable=SC2086 # loadargs is a list of flags
	"$merlin" load -addr "$addr" -size 64 $loadargs -duration "$1" -json |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])'
}

# count NAME CMD...: runs CMD under callgrind and leaves $tmp/NAME.short
# and $tmp/NAME.long (the counts of the two loads) and their requests.
count() {
	local name=$1
	shift
	GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off GOMAXPROCS=1 valgrind --tool=callgrind \
		--callgrind-out-file="$tmp/$name.cg" "$@" -addr 127.0.0.1:0 >"$tmp/$name.log" 2>&1 &
	local pid=$!
	for _ in $(seq 240); do
		grep -q "listening on" "$tmp/$name.log" && break
		kill -0 $pid 2>/dev/null || { cat "$tmp/$name.log" >&2; exit 1; }
		sleep 0.25
	done
	addr=$(grep -o "listening on [^ ]*" "$tmp/$name.log" | awk '{print $3}')
	load 2s >/dev/null # warm: the loop's buffers and the runtime settle
	local k=0
	for part in short long; do
		k=$((k + 1))
		callgrind_control -z $pid >/dev/null 2>&1
		load "${!part}" >"$tmp/$name.$part.requests"
		callgrind_control -d $pid >/dev/null 2>&1
		for _ in $(seq 100); do
			[ -s "$tmp/$name.cg.$k" ] && break
			sleep 0.1
		done
		sleep 0.5 # let callgrind finish writing it
		callgrind_annotate --inclusive=yes --threshold=100 "$tmp/$name.cg.$k" >"$tmp/$name.$part" 2>/dev/null
	done
	kill -9 $pid
	wait $pid 2>/dev/null || true
}

count libuvlike "$merlin" serve -transport libuvlike:loops=1
count gofloor-epoll "$tmp/gofloor-epoll"
count cfloor-epoll "$tmp/cfloor-epoll"
count libuv "$tmp/libuv"
count uring "$merlin" serve -transport uring:loops=1
count gofloor-uring "$tmp/gofloor-uring"
count cfloor-uring "$tmp/cfloor-uring"
loadargs=$saturated
count libuvlike-sat "$merlin" serve -transport libuvlike:loops=1
count gofloor-epoll-sat "$tmp/gofloor-epoll"
count cfloor-epoll-sat "$tmp/cfloor-epoll"
count libuv-sat "$tmp/libuv"
count uring-sat "$merlin" serve -transport uring:loops=1
count gofloor-uring-sat "$tmp/gofloor-uring"
count cfloor-uring-sat "$tmp/cfloor-uring"

python3 - "$tmp" <<'EOF' | tee "$here/instructions.out"
import re, sys
tmp = sys.argv[1]

def table(path):
    total, fns = 0, {}
    for line in open(path):
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(\S.*)$", line)
        if not m:
            continue
        n, what = int(m.group(1).replace(",", "")), m.group(2)
        if what.startswith("PROGRAM TOTALS"):
            total = n
            continue
        fn = what.split(":", 1)[1].split(" [")[0] if ":" in what else what
        fns[fn] = max(fns.get(fn, 0), n)  # a function is listed once per file it spans
    return total, fns

def per_request(name):
    ts, fs = table("%s/%s.short" % (tmp, name))
    tl, fl = table("%s/%s.long" % (tmp, name))
    rs = int(open("%s/%s.short.requests" % (tmp, name)).read())
    rl = int(open("%s/%s.long.requests" % (tmp, name)).read())
    d = rl - rs
    return (tl - ts) / d, {f: (fl.get(f, 0) - fs.get(f, 0)) / d for f in fl}, d

print("User-space instructions per request (callgrind; echo 64 B, 64 connections, 2,000 req/s, one P;")
print("the difference between a 4 s and a 12 s load, divided by the difference in requests):\n")
rows = {}
for name in ("libuvlike", "gofloor-epoll", "cfloor-epoll", "libuv", "uring", "gofloor-uring", "cfloor-uring"):
    total, fns, d = per_request(name)
    rows[name] = (total, fns)
    print("  %-14s %6.0f   (%d requests apart)" % (name, total, d))

def fn(fns, suffix):
    return max((v for k, v in fns.items() if k.endswith(suffix)), default=0)

print("\nSaturated (1,000 connections, a closed loop of the ring generator; the same difference):\n")
for name in ("libuvlike", "gofloor-epoll", "cfloor-epoll", "libuv", "uring", "gofloor-uring", "cfloor-uring"):
    total, fns, d = per_request(name + "-sat")
    rows[name + "-sat"] = (total, fns)
    print("  %-14s %6.0f   (%d requests apart)" % (name, total, d))

_, fns = rows["libuvlike"]
print("\nlibuvlike's, by phase (inclusive: each line counts the calls it makes):\n")
for label, suffix in (
        ("the loop, all of it (Loop.Run)", "libuvlike.(*Loop).Run"),
        ("  poll: wait, dispatch, reads and OnData (Loop.poll)", "libuvlike.(*Loop).poll"),
        ("    a read's delivery (connRead: onRead, deliver, core's Deliver, OnData)", "libuvlike.connRead"),
        ("      core's Deliver (the input rules, the recover, OnData)", "core.(*Handler).Deliver"),
        ("        echo's OnData (its Write)", "echo.(*Handler).OnData"),
        ("          conn.Write (the copy to the output)", "libuvlike.(*conn).Write"),
        ("    the clock (runtime.nanotime1: core.Now at each wait, and the runtime's)", "runtime.nanotime1.abi0"),
        ("    the Ticker's check and yields (BeforeBlock, its Gosched)", "schedtick.(*Ticker).BeforeBlock"),
        ("  the check hook and its flushes (Loop.settle)", "libuvlike.(*Loop).settle"),
        ("    the transport's flush (evloop.workDue)", "libuvlike.(*evloop).workDue"),
        ("      the writes (TCP.TryWrite)", "libuvlike.(*TCP).TryWrite"),
        ("the system-call stubs (rawSyscall, RawSyscall6, Syscall6)", None)):
    if suffix is None:
        v = fn(fns, "libuvlike.rawSyscall.abi0") + fn(fns, "syscall.RawSyscall6") + fn(fns, "syscall.Syscall6")
    else:
        v = fn(fns, suffix)
    print("  %-78s %6.0f" % (label, v))
EOF
