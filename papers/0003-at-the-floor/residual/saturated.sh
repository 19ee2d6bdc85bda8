#!/usr/bin/env bash
# saturated.sh: whether what uring costs above cfloor-uring saturated with
# 1,000 connections is its user-space instructions (papers/0003, "Saturated,
# the instructions do not add up"). It builds two variants of
# peers/cfloor-uring in a copy of peers/, each adding user-space work per
# request that the C floor has not, and benches them beside uring and the
# floor (1,000 connections, 64 B, depth 1, saturated; 10 rounds, servers
# interleaved):
#
#   cfloor-spin    some 1,300 instructions per request (330 steps of a
#                  64-bit LCG, four instructions each, each step waiting
#                  for the last), touching no memory: more than the 1,000
#                  a request that uring runs above the floor saturated
#                  (instructions.sh).
#   cfloor-thrash  24 cache lines per request written at random in 16 MiB:
#                  memory a larger program touches between the kernel's
#                  calls, which evicts the kernel's lines.
#   cfloor-both    both: the spin, then the thrash.
#   cfloor-shape   no added work, but uring's ring shape: 4,096 submission
#                  and 16,384 completion entries, 64 receive buffers of
#                  64 KiB (uring's defaults) instead of 1,024, 8,192 and
#                  1,024 of 4 KiB.
#
# beside gofloor-uring, cfloor-uring's loop in Go. The client's CPU per
# request (client-cpu-ns/req) is in the same lines: the generator on the
# other core pays for its half of every exchange.
#
# Usage: papers/0003-at-the-floor/residual/saturated.sh [MERLIN]  (about 8
# minutes). MERLIN defaults to .bin/merlin (make build). Results go to
# saturated/ beside this script (merlin bench's results.{txt,json,csv}),
# its output to saturated.out.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
merlin=${1:-$root/.bin/merlin}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$root/peers" "$tmp/peers"

python3 - "$tmp/peers" <<'PY'
import os, sys
peers = sys.argv[1]
base = open(peers + "/cfloor-uring/main.c").read()

def must(s, old, new):
    assert old in s, old
    return s.replace(old, new, 1)

def write(name, s):
    """write puts s, cfloor-uring's source changed, in peers/NAME, named NAME and not a floor."""
    s = must(s, '.name = "cfloor-uring", .mechanism = "io_uring", .floor = true',
             '.name = "%s", .mechanism = "io_uring", .floor = false' % name)
    os.makedirs("%s/%s" % (peers, name))
    open("%s/%s/main.c" % (peers, name), "w").write(s)

def variant(name, work):
    s = must(base, "#include <liburing.h>", "#include <liburing.h>\n#include <stdlib.h>")
    s = must(s, "static void on_recv(int fd, int res, unsigned flags)\n{",
             work + "\nstatic void on_recv(int fd, int res, unsigned flags)\n{\n\tif (res > 0)\n\t\twork();")
    write(name, s)

spin = """static volatile unsigned long spin_sink;

// work: some 1,300 instructions a request (330 dependent steps), no memory.
static void work(void)
{
	unsigned long x = spin_sink;
	for (int i = 0; i < 330; i++)
		x = x * 6364136223846793005UL + 1442695040888963407UL;
	spin_sink = x;
}
"""
variant("cfloor-spin", spin)
thrash = """static unsigned char *thrash_mem;
static unsigned long thrash_x = 88172645463325252UL;

// work: 24 cache lines a request written at random in 16 MiB.
static void work(void)
{
	if (!thrash_mem && !(thrash_mem = calloc(16 << 20, 1)))
		abort();
	for (int i = 0; i < 24; i++) {
		thrash_x ^= thrash_x << 13;
		thrash_x ^= thrash_x >> 7;
		thrash_x ^= thrash_x << 17;
		thrash_mem[(thrash_x % (16 << 20)) & ~63UL]++;
	}
}
"""
variant("cfloor-thrash", thrash)
variant("cfloor-both", spin.replace("work", "spin") + thrash.replace("work", "thrash") +
        """
// work: the spin, then the thrash.
static void work(void)
{
	spin();
	thrash();
}
""")

shape = base
for old, new in (("SQ_ENTRIES = 1024,", "SQ_ENTRIES = 4096,"), ("CQ_ENTRIES = 8192,", "CQ_ENTRIES = 16384,"),
                 ("BUF_COUNT = 1024,", "BUF_COUNT = 64,"), ("BUF_SIZE = 4096,", "BUF_SIZE = 65536,")):
    shape = must(shape, old, new)
write("cfloor-shape", shape)
PY

"$merlin" bench -peers-dir "$tmp/peers" -netconn=false -count 10 -warmup 1s -duration 3s -perf off \
	-peers cfloor-uring,cfloor-spin,cfloor-thrash,cfloor-both,cfloor-shape,gofloor-uring \
	-servers uring,cfloor-uring,cfloor-spin,cfloor-thrash,cfloor-both,cfloor-shape,gofloor-uring \
	-conns 1000 -depths 1 -rates closed -out "$here/saturated" 2>&1 | tee "$here/saturated.out"
