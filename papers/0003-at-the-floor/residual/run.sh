#!/usr/bin/env bash
# run.sh: where libuvlike's CPU per request above the epoll floor goes
# (papers/0003, "What is left for libuvlike"). It builds three variants of
# peers/gofloor-epoll in a copy of peers/, each adding one thing libuvlike
# has and the Go floor has not, and benches them beside libuvlike, the Go
# floor and the C floor (10 rounds each, servers interleaved):
#
#   gofloor-fat     libuvlike's data: a 936-byte conn behind a pointer
#                   (libuvlike's conn is 936 bytes), an output buffer of its
#                   own that the echo is copied through, and four of the
#                   conn's cache lines written after the read and again after
#                   the write; at 1,000 connections, where data is coldest.
#   gofloor-wide    code: 80 distinct functions (21.7 KB of text) called in
#                   a shuffled order between the read and the write, 2,400
#                   dependent ALU instructions in all.
#   gofloor-narrow  the same instructions from one function called 80
#                   times (under 1 KB of text): wide against narrow is what
#                   the code's spread costs, narrow against gofloor-epoll
#                   what 2,400 instructions cost.
#
# Usage: papers/0003-at-the-floor/residual/run.sh [MERLIN]  (about 10 minutes)
# MERLIN defaults to .bin/merlin (make build). Results go to code/ and data/
# beside this script (merlin bench's results.{txt,json,csv} and its output).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
merlin=${1:-$root/.bin/merlin}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$root/peers" "$tmp/peers"

python3 - "$tmp/peers" <<'EOF'
import random, sys
peers = sys.argv[1]
base = open(peers + "/gofloor-epoll/main.go").read()

def variant(name, s):
    s = s.replace('peer.Info{Name: "gofloor-epoll"', 'peer.Info{Name: "%s"' % name)
    s = s.replace('peer.Listening(addr, "gofloor-epoll")', 'peer.Listening(addr, "%s")' % name)
    import os
    os.makedirs("%s/%s" % (peers, name))
    open("%s/%s/main.go" % (peers, name), "w").write(s)

def must(s, old, new):
    assert old in s, old
    return s.replace(old, new)

# fat: libuvlike's per-connection data.
s = base
s = must(s, """	out               []byte // what the socket has not taken yet
}""", """	out               []byte // what the socket has not taken yet
	obuf              []byte // the echo goes through a buffer of the conn's own
	pad               [880]byte
}

// touch writes one byte in each of four of the conn's lines.
func (c *conn) touch() {
	c.pad[40]++
	c.pad[104]++
	c.pad[168]++
	c.pad[232]++
}""")
s = must(s, "	conns   []conn\n", "	conns   []*conn\n")
s = s.replace("c := &l.conns[fd]", "c := l.conns[fd]")
s = must(s, "l.conns[fd] = conn{out: l.conns[fd].out[:0]}", "*l.conns[fd] = conn{out: l.conns[fd].out[:0], obuf: l.conns[fd].obuf}")
s = must(s, """	done := 0
	if len(c.out) == 0 {
		w, errno := l.send(fd, l.rbuf[:n])""", """	done := 0
	c.touch()
	c.obuf = append(c.obuf[:0], l.rbuf[:n]...)
	if len(c.out) == 0 {
		w, errno := l.send(fd, c.obuf)
		c.touch()""")
s = must(s, """			l.conns = append(l.conns, make([]conn, len(l.conns))...)
		}""", """			l.conns = append(l.conns, make([]*conn, len(l.conns))...)
		}
		if l.conns[fd] == nil {
			l.conns[fd] = &conn{obuf: make([]byte, 0, 512)}
		}""")
s = must(s, "if fd >= len(l.conns) || !l.conns[fd].open {", "if fd >= len(l.conns) || l.conns[fd] == nil || !l.conns[fd].open {")
s = must(s, "l := &loop{conns: make([]conn, 1024)}", "l := &loop{conns: make([]*conn, 1024)}")
variant("gofloor-fat", s)

# wide and narrow: the same 2,400 instructions from 80 functions or one.
N = 80
def fn(i):
    body = ""
    for k in range(8):
        c = (0x9e3779b97f4a7c15 * (i * 8 + k + 1)) & (2**64 - 1)
        body += "\tx ^= x << %d\n\tx += 0x%x\n\tx ^= x >> %d\n" % (1 + (i + k) % 31, c, 1 + (i * 3 + k) % 29)
    return "//go:noinline\nfunc f%d(x uint64) uint64 {\n%s\treturn x\n}\n" % (i, body)
order = list(range(N))
random.Random(7).shuffle(order)
for name, code, calls in (("gofloor-wide", "".join(fn(i) for i in range(N)), order),
                          ("gofloor-narrow", fn(0), [0] * N)):
    s = must(base, "func main() {", "%s\n//go:noinline\nfunc work(x uint64) uint64 {\n%s\treturn x\n}\n\nvar sink uint64\n\nfunc main() {"
             % (code, "".join("\tx = f%d(x)\n" % i for i in calls)))
    s = must(s, """	done := 0
	if len(c.out) == 0 {""", """	done := 0
	sink = work(sink + uint64(n))
	if len(c.out) == 0 {""")
    variant(name, s)
EOF

common=(-peers-dir "$tmp/peers" -netconn=false -depths 1 -count 10 -warmup 1s -duration 3s -perf off)
"$merlin" bench "${common[@]}" -peers gofloor-epoll,gofloor-narrow,gofloor-wide,cfloor-epoll \
	-servers libuvlike,gofloor-epoll,gofloor-narrow,gofloor-wide,cfloor-epoll \
	-conns 64 -rates 37000 -out "$here/code" 2>&1 | tee "$here/code.out"
"$merlin" bench "${common[@]}" -peers gofloor-epoll,gofloor-fat,cfloor-epoll \
	-servers libuvlike,gofloor-epoll,gofloor-fat,cfloor-epoll \
	-conns 1000 -rates 26000 -out "$here/data" 2>&1 | tee "$here/data.out"
