# merlin's build. `make test` is what CI runs (.ci/run); `make demo` is the
# main job: a short side-by-side of the transports on echo. Both first run
# scripts/deps.sh, which installs what they need on a Debian machine that
# has only Go (Debian packages as root; Go tools into .bin/).

# giouring reaches syscall.mmap through go:linkname, which Go 1.23+ refuses
# to link unless told not to check: every command that links (build, test,
# run) needs this flag once uring/ imports giouring. It is harmless before.
LDFLAGS := -ldflags=-checklinkname=0
GO      ?= go
BIN     := $(CURDIR)/.bin

# The tools deps.sh installs into .bin/ (staticcheck, benchstat) come
# first in every recipe's PATH.
export PATH := $(BIN):$(PATH)

# Every registered transport must run here: in the tests, a skip of one
# fails (MERLIN_REQUIRE, see conformance/). Set MERLIN_REQUIRE yourself
# to relax it (MERLIN_REQUIRE= requires none).
REQUIRE = MERLIN_REQUIRE=$${MERLIN_REQUIRE-$$($(BIN)/merlin transports -names | paste -sd, -)}

.PHONY: all build deps test vet staticcheck test-go test-darwin test-peers test-examples bench-smoke demo clean

all: build

build:
	$(GO) build $(LDFLAGS) -o $(BIN)/merlin ./cmd/merlin

test: deps vet staticcheck test-darwin test-go test-peers test-examples bench-smoke

deps:
	scripts/deps.sh $(BIN)

# peers/ is its own module (so merlin's does not depend on gnet): vet and
# build it too.
vet:
	$(GO) vet ./...
	cd peers && $(GO) vet ./... && $(GO) build ./...

staticcheck: deps
	$(BIN)/staticcheck ./...
	cd peers && $(BIN)/staticcheck ./...

# The Linux-only code stays behind build constraints: the rest must build
# for macOS too.
test-darwin:
	GOOS=darwin GOARCH=arm64 $(GO) build ./...

# The longest packages are named first: go test starts packages in the
# order given, as many at a time as there are cores, and uring (4-5
# minutes under -race) last in ./... ran alone at the end.
test-go: build
	$(REQUIRE); echo "MERLIN_REQUIRE=$$MERLIN_REQUIRE"; export MERLIN_REQUIRE; \
	$(GO) test -race $(LDFLAGS) -timeout 12m ./uring ./libuvlike ./cli ./...

# The peers' own tests: each builds (the C floors with cc), listens,
# echoes, passes merlin load -check, exits on SIGTERM.
test-peers: deps build
	$(REQUIRE); export MERLIN_REQUIRE; cd peers && $(GO) test ./...

# examples/ is a module of its own, as a transport from elsewhere would
# be: hostile, written against merlin's public packages only, passes the
# conformance suite, and its own merlin binary benches it beside uring and
# gnet and makes a tiny paper.
test-examples: deps build
	cd examples && $(GO) vet ./... && $(BIN)/staticcheck ./...
	$(REQUIRE),hostile; export MERLIN_REQUIRE; cd examples && \
	$(GO) test -race $(LDFLAGS) -timeout 12m ./...

# The throughput suite's smoke run: merlin bench -quick over every
# transport available here and the peers (about a minute), with perf;
# benchstat must read the results.
bench-smoke: deps build
	scripts/bench-smoke.sh $(BIN)/merlin

clean:
	rm -rf $(BIN)

# The main job: every available transport (and sockets behind the net.Conn
# adapter), two peers and the C floors of both mechanisms side by side on
# echo: 64 B on 64 connections at depths 1 and 16, an open loop at half
# the slowest server's peak, idle memory. About a minute.
demo: deps build
	$(BIN)/merlin bench -quick -peers gnet,netstd,cfloor-epoll,cfloor-uring
