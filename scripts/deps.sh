#!/usr/bin/env bash
# deps.sh: install what `make demo` and `make test` need on a Debian
# machine that has only Go, and nothing when it is all there.
#
# Debian packages (installed with apt-get as root, after apt-get update):
#   gcc, liburing-dev  the C floor servers in peers/ (cfloor-uring, cfloor-epoll)
#   libuv1-dev         the libuv peer (an echo server on libuv, libuvlike's model)
#   util-linux         taskset (pinning in merlin bench), prlimit (descriptor-limit tests)
#   linux-perf         perf: system calls per request, -kprofile
#   nginx-light        the HTTP floor peer, and the reverse-proxy tests of apps/http1
#   wrk, curl          real HTTP clients in the tests
#   python3            an outside echo client in cli's tests
# Go tools (go install, into .bin/ beside merlin):
#   staticcheck        make test's static checks
#   benchstat          reads merlin bench's results (bench-smoke, cli's tests)
#
# Usage: scripts/deps.sh [BINDIR]   (default .bin)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(cd "${1:-.bin}" 2>/dev/null && pwd || { mkdir -p "${1:-.bin}" && cd "${1:-.bin}" && pwd; })

STATICCHECK=honnef.co/go/tools/cmd/staticcheck@v0.8.2
BENCHSTAT=golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da

# command-or-file -> Debian package
need=()
want() { # want PACKAGE TEST...
	local pkg=$1; shift
	"$@" >/dev/null 2>&1 || need+=("$pkg")
}
want gcc         command -v cc
want liburing-dev test -e /usr/include/liburing.h
want libuv1-dev  test -e /usr/include/uv.h
want util-linux  command -v taskset
want util-linux  command -v prlimit
want linux-perf  command -v perf
want nginx-light command -v nginx
want wrk         command -v wrk
want curl        command -v curl
want python3     command -v python3

if [ ${#need[@]} -gt 0 ]; then
	mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps: missing Debian packages: ${need[*]}" >&2
		echo "deps: run as root, or: sudo apt-get update && sudo apt-get install -y ${need[*]}" >&2
		exit 1
	fi
	echo "deps: installing ${need[*]}"
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi

# Go tools, pinned, into $bin (a version file beside each says which).
gotool() { # gotool NAME MODULE@VERSION
	local name=$1 mod=$2
	if [ -x "$bin/$name" ] && [ "$(cat "$bin/$name.version" 2>/dev/null)" = "$mod" ]; then
		return
	fi
	echo "deps: go install $mod"
	GOBIN=$bin GOFLAGS= go install "$mod"
	echo "$mod" >"$bin/$name.version"
}
gotool staticcheck "$STATICCHECK"
gotool benchstat "$BENCHSTAT"
