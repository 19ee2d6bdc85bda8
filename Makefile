# merlin's build. `make test` is what CI runs (.ci/run); `make demo` is the
# main job: a short side-by-side of the transports on echo.

# giouring reaches syscall.mmap through go:linkname, which Go 1.23+ refuses
# to link unless told not to check: every command that links (build, test,
# run) needs this flag once uring/ imports giouring. It is harmless before.
LDFLAGS := -ldflags=-checklinkname=0
GO      ?= go
BIN     := $(CURDIR)/.bin
STATICCHECK_VERSION := v0.8.2

.PHONY: all build test vet staticcheck test-go test-darwin demo clean

all: build

build:
	$(GO) build $(LDFLAGS) -o $(BIN)/merlin ./cmd/merlin

test: vet staticcheck test-darwin test-go

vet:
	$(GO) vet ./...

$(BIN)/staticcheck:
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

staticcheck: $(BIN)/staticcheck
	$(BIN)/staticcheck ./...

# The Linux-only code stays behind build constraints: the rest must build
# for macOS too.
test-darwin:
	GOOS=darwin GOARCH=arm64 $(GO) build ./...

test-go:
	$(GO) test -race $(LDFLAGS) -timeout 12m ./...

clean:
	rm -rf $(BIN)

# The main job: every available transport side by side on echo, 64 B
# messages, 64 connections, depths 1 and 16 (scripts/demo.sh).
demo: build
	scripts/demo.sh $(BIN)/merlin
