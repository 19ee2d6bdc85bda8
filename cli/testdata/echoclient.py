#!/usr/bin/env python3
"""echoclient: an echo client that is not merlin's own, to check `merlin serve` from outside.

merlin's own load generator (internal/loadgen) shares code and habits with
the servers it tests; this one shares nothing: Python 3, standard library
only (socket, selectors, threading). cmd/merlin's tests run it against
`merlin serve -app echo`.

Modes:

  load   --addr H:P --conns N --depth D --size B --seconds S
         Each connection writes D messages of B bytes in one send, reads
         the echoes back and compares every byte, and repeats for S
         seconds (batches in flight then finish). Every message starts
         with its connection index and sequence number (two little-endian
         uint32) followed by a seeded pattern shifted by both, so a byte
         from another connection or another message is caught. One
         single-threaded selector loop drives all connections, writing and
         reading at once (a large batch would deadlock a client that
         writes everything before reading). Prints one summary line; on the
         first difference, error or stall, prints it and exits 1.

  abuse  --addr H:P
         Clients that misbehave, then a check that the server still
         answers: resets (SO_LINGER 0 close right after connecting, and
         mid-exchange with input and output pending on the server),
         half-closes (shutdown(SHUT_WR), then every echo must arrive before
         EOF), slow readers (a few bytes per 10 ms while sending all the
         socket takes; the echoes read must be exact, and meanwhile a
         normal client must be answered), then normal exchanges. Exits 1 on
         the first failure. Takes a few seconds.

--addr is host:port, or a path for a unix socket. Exit status: 0 when all
checks pass, 1 on a failure, 2 on a usage error. Every socket operation has
a timeout (--timeout, default 10 s), so a stuck server fails the run.
"""

import argparse
import errno
import random
import selectors
import socket
import struct
import sys
import threading
import time

HEADER = struct.Struct("<II")  # connection index, sequence number
PAT_STRIDE = 65521  # a prime: pattern windows start at every offset below it


class Failure(Exception):
    """A check failed: the server is wrong (or unreachable)."""


def connect(addr, timeout):
    """Returns a connected blocking socket with a timeout."""
    if "/" in addr:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target = addr
    else:
        host, _, port = addr.rpartition(":")
        host = host.strip("[]")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        target = (host, int(port))
    s.settimeout(timeout)
    try:
        s.connect(target)
    except OSError as e:
        s.close()
        raise Failure("connect %s: %s" % (addr, e)) from e
    return s


class Pattern:
    """The payload: message seq of connection conn, size bytes."""

    def __init__(self, seed, size):
        self.size = size
        self.pat = random.Random(seed).randbytes(PAT_STRIDE + size)

    def message(self, conn, seq):
        start = (conn * 7919 + seq * 104729) % PAT_STRIDE
        h = HEADER.pack(conn & 0xFFFFFFFF, seq & 0xFFFFFFFF)
        if self.size <= len(h):
            return h[: self.size]
        return h + self.pat[start : start + self.size - len(h)]

    def batch(self, conn, first_seq, depth):
        return b"".join(self.message(conn, first_seq + i) for i in range(depth))


def first_diff(want, got):
    """Returns the offset of the first byte where got differs from want."""
    n = min(len(want), len(got))
    for i in range(n):
        if want[i] != got[i]:
            return i
    return n


# ---------------------------------------------------------------- load


class LoadConn:
    """One connection of the load mode, driven by the selector loop."""

    def __init__(self, idx, sock):
        self.idx = idx
        self.sock = sock
        self.batch = 0
        self.want = b""  # the batch in flight
        self.out = memoryview(b"")  # what is left to send of it
        self.got = 0  # bytes of it echoed and checked


def run_load(args):
    pattern = Pattern(args.seed, args.size)
    sel = selectors.DefaultSelector()
    conns = []
    stats = {"requests": 0, "bytes": 0}

    def start_batch(c):
        c.want = pattern.batch(c.idx, c.batch * args.depth, args.depth)
        c.out = memoryview(c.want)
        c.got = 0
        sel.modify(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)

    try:
        for i in range(args.conns):
            s = connect(args.addr, args.timeout)
            s.setblocking(False)
            c = LoadConn(i, s)
            conns.append(c)
            sel.register(s, selectors.EVENT_READ, c)
        start = time.monotonic()
        end = start + args.seconds
        for c in conns:
            start_batch(c)
        active = len(conns)
        last_progress = time.monotonic()
        while active:
            events = sel.select(timeout=0.5)
            now = time.monotonic()
            if not events:
                if now - last_progress > args.timeout:
                    waiting = [c.idx for c in conns if c.sock.fileno() >= 0 and c.want]
                    raise Failure("stalled: no progress for %.0f s; %d connections waiting (first: conn %d, batch %d, %d of %d bytes echoed)"
                                  % (args.timeout, len(waiting), waiting[0], conns[waiting[0]].batch, conns[waiting[0]].got, len(conns[waiting[0]].want)))
                continue
            last_progress = now
            for key, mask in events:
                c = key.data
                if mask & selectors.EVENT_WRITE and c.out:
                    try:
                        n = c.sock.send(c.out)
                    except (BlockingIOError, InterruptedError):
                        n = 0
                    except OSError as e:
                        raise Failure("conn %d batch %d: send: %s" % (c.idx, c.batch, e)) from e
                    c.out = c.out[n:]
                    if not c.out:
                        sel.modify(c.sock, selectors.EVENT_READ, c)
                if mask & selectors.EVENT_READ:
                    try:
                        data = c.sock.recv(1 << 18)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError as e:
                        raise Failure("conn %d batch %d: recv after %d of %d bytes: %s" % (c.idx, c.batch, c.got, len(c.want), e)) from e
                    if not data:
                        raise Failure("conn %d batch %d: EOF after %d of %d bytes echoed" % (c.idx, c.batch, c.got, len(c.want)))
                    want = c.want[c.got : c.got + len(data)]
                    if want != data:
                        off = first_diff(want, data)
                        if off == len(want):
                            raise Failure("conn %d batch %d: %d bytes more than were sent" % (c.idx, c.batch, len(data) - len(want)))
                        at = c.got + off
                        msg, byte = divmod(at, args.size)
                        raise Failure("mismatch: conn %d batch %d: echo differs at byte %d (message %d, byte %d): want 0x%02x, got 0x%02x"
                                      % (c.idx, c.batch, at, msg, byte, want[off], data[off]))
                    c.got += len(data)
                    if c.got == len(c.want):
                        stats["requests"] += args.depth
                        stats["bytes"] += len(c.want)
                        c.batch += 1
                        if now < end:
                            start_batch(c)
                        else:
                            sel.unregister(c.sock)
                            c.sock.close()
                            c.want = b""
                            active -= 1
        elapsed = time.monotonic() - start
    finally:
        for c in conns:
            c.sock.close()
        sel.close()
    print("echoclient load: addr=%s conns=%d depth=%d size=%d seconds=%.2f requests=%d bytes=%d req/s=%.0f MB/s=%.2f errors=0"
          % (args.addr, args.conns, args.depth, args.size, elapsed, stats["requests"], stats["bytes"],
             stats["requests"] / elapsed, stats["bytes"] / elapsed / 1e6))


# ---------------------------------------------------------------- abuse


def exchange(addr, timeout, pattern, conn_idx, depth=4):
    """One normal exchange on a fresh connection: it must echo exactly."""
    s = connect(addr, timeout)
    try:
        want = pattern.batch(conn_idx, 0, depth)
        s.sendall(want)
        got = bytearray()
        while len(got) < len(want):
            try:
                b = s.recv(len(want) - len(got))
            except OSError as e:
                raise Failure("exchange: recv after %d of %d bytes: %s" % (len(got), len(want), e)) from e
            if not b:
                raise Failure("exchange: EOF after %d of %d bytes" % (len(got), len(want)))
            got += b
        if got != want:
            raise Failure("exchange: echo differs at byte %d" % first_diff(want, got))
    finally:
        s.close()


def reset(s):
    """Closes s with SO_LINGER 0: the peer sees RST."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def send_some(s, data):
    """Sends what the socket takes now, without blocking; returns the count."""
    s.setblocking(False)
    sent = 0
    try:
        while sent < len(data):
            sent += s.send(data[sent:])
    except (BlockingIOError, InterruptedError):
        pass
    return sent


def abuse_resets(args, pattern):
    """Resets right after connect, and mid-exchange with data both ways."""
    big = Pattern(args.seed, 1 << 20).message(1, 0)
    for i in range(16):
        reset(connect(args.addr, args.timeout))
    for i in range(16):
        s = connect(args.addr, args.timeout)
        s.sendall(pattern.batch(100 + i, 0, 4))
        # Read part of the echo, so the reset lands mid-exchange.
        s.recv(16)
        send_some(s, big)  # the server now has input and output pending
        reset(s)
    exchange(args.addr, args.timeout, pattern, 7)
    return "32 clients reset (16 at once, 16 mid-exchange with 1 MiB in flight)"


def half_close(args, total):
    """Sends total bytes while reading, then SHUT_WR; every echo must arrive before EOF."""
    data = Pattern(args.seed + total, total).message(3, 0) if total else b""
    s = connect(args.addr, args.timeout)
    try:
        s.setblocking(False)
        sel = selectors.DefaultSelector()
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
        sent, got, shut = 0, bytearray(), False
        if total == 0:
            s.shutdown(socket.SHUT_WR)
            shut = True
            sel.modify(s, selectors.EVENT_READ)
        deadline = time.monotonic() + args.timeout
        while True:
            events = sel.select(timeout=0.5)
            if time.monotonic() > deadline:
                raise Failure("half-close %d bytes: no EOF within %.0f s (%d sent, %d echoed)" % (total, args.timeout, sent, len(got)))
            for _, mask in events:
                if mask & selectors.EVENT_WRITE and sent < total:
                    try:
                        sent += s.send(data[sent:])
                    except (BlockingIOError, InterruptedError):
                        pass
                    if sent == total:
                        s.shutdown(socket.SHUT_WR)
                        shut = True
                        sel.modify(s, selectors.EVENT_READ)
                if mask & selectors.EVENT_READ:
                    try:
                        b = s.recv(1 << 18)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError as e:
                        raise Failure("half-close %d bytes: recv after %d echoed: %s" % (total, len(got), e)) from e
                    if not b:
                        if not shut:
                            raise Failure("half-close %d bytes: EOF before our FIN, after %d echoed" % (total, len(got)))
                        if got != data:
                            raise Failure("half-close %d bytes: %d echoed before EOF, first difference at byte %d"
                                          % (total, len(got), first_diff(data, got)))
                        sel.close()
                        return
                    got += b
    finally:
        s.close()


def abuse_half_close(args, pattern):
    sizes = [0, 1, 4096, 256 << 10, 1 << 20]
    for total in sizes:
        half_close(args, total)
    exchange(args.addr, args.timeout, pattern, 8)
    return "%d half-closes (%s bytes), every echo before EOF" % (len(sizes), ", ".join(str(n) for n in sizes))


SLOW_PERIOD = 1000003  # a prime: the slow clients' stream repeats with this period


def slow_client(args, idx, seconds, results, pushed):
    """Offers up to 1 MiB every 10 ms and reads 16 bytes, for seconds; the
    socket must push back (the server stops reading once its output backs
    up) and the bytes read must be exact. Then it resets (idx even), or
    half-closes and drains at full speed, checking every byte (idx odd).
    It sets the event pushed once the socket pushed back, or once it ends."""
    block = Pattern(args.seed + idx, SLOW_PERIOD).message(idx, 0)
    block2 = block + block  # any window of up to SLOW_PERIOD bytes, unwrapped

    def window(off, n):
        return block2[off % SLOW_PERIOD : off % SLOW_PERIOD + n]

    def check(off, b):
        if b != window(off, len(b)):
            raise Failure("slow client %d: echo differs at byte %d" % (idx, off + first_diff(window(off, len(b)), b)))

    try:
        s = connect(args.addr, args.timeout)
    except Failure as e:
        results[idx] = str(e)
        pushed.set()
        return
    try:
        sent, got, pushed_back = 0, 0, False
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            n = send_some(s, window(sent, 1 << 20))
            if n < (1 << 20):
                pushed_back = True
                pushed.set()
            sent += n
            s.setblocking(True)
            s.settimeout(args.timeout)
            if got < sent:
                b = s.recv(min(16, sent - got))
                if not b:
                    raise Failure("slow client %d: EOF after %d echoed" % (idx, got))
                check(got, b)
                got += len(b)
            time.sleep(0.010)  # the slowness under test, not synchronisation
        if not pushed_back:
            raise Failure("slow client %d: %d bytes sent without the socket ever pushing back: the server buffers without limit" % (idx, sent))
        if idx % 2 == 0:
            reset(s)
            results[idx] = "ok: %d sent, %d read slowly, then reset" % (sent, got)
            return
        # Half-close and drain at full speed: nothing lost to backpressure.
        s.shutdown(socket.SHUT_WR)
        while True:
            b = s.recv(1 << 18)
            if not b:
                break
            check(got, b)
            got += len(b)
        if got != sent:
            raise Failure("slow client %d: EOF after %d of %d bytes echoed" % (idx, got, sent))
        results[idx] = "ok: %d sent, all echoed after the slow phase" % sent
    except (Failure, OSError) as e:
        results[idx] = "slow client %d: %s" % (idx, e)
    finally:
        pushed.set()
        s.close()


def abuse_slow(args, pattern):
    n, seconds = 4, 1.0  # every slow client pushes the server into backpressure
    results = [None] * n
    pushed = [threading.Event() for _ in range(n)]
    threads = [threading.Thread(target=slow_client, args=(args, i, seconds, results, pushed[i])) for i in range(n)]
    for t in threads:
        t.start()
    for e in pushed:
        e.wait(args.timeout)
    # While they hold the server in backpressure, a normal client is answered.
    t0 = time.monotonic()
    exchange(args.addr, args.timeout, pattern, 9)
    during = time.monotonic() - t0
    for t in threads:
        t.join(args.timeout + seconds + 5)
        if t.is_alive():
            raise Failure("a slow client did not finish")
    for r in results:
        if r is None or not r.startswith("ok"):
            raise Failure(r or "a slow client reported nothing")
    return "%d slow clients (%s); a normal exchange meanwhile took %.3f s" % (n, "; ".join(results), during)


def run_abuse(args):
    pattern = Pattern(args.seed, 1000)
    exchange(args.addr, args.timeout, pattern, 0)
    for name, step in [("resets", abuse_resets), ("half-close", abuse_half_close), ("slow", abuse_slow)]:
        t0 = time.monotonic()
        what = step(args, pattern)
        print("echoclient abuse %s: %s (%.2f s)" % (name, what, time.monotonic() - t0))
    for i in range(4):
        exchange(args.addr, args.timeout, pattern, 10 + i, depth=16)
    print("echoclient abuse: the server still answers; ok")


# ---------------------------------------------------------------- main


def main():
    p = argparse.ArgumentParser(description="An echo client that is not merlin's own (see the module doc).")
    sub = p.add_subparsers(dest="mode", required=True)
    lp = sub.add_parser("load", help="write depth x size, read back, compare, repeat")
    lp.add_argument("--addr", required=True, help="host:port, or a unix socket path")
    lp.add_argument("--conns", type=int, default=8)
    lp.add_argument("--depth", type=int, default=1)
    lp.add_argument("--size", type=int, default=64)
    lp.add_argument("--seconds", type=float, default=1.0)
    ap = sub.add_parser("abuse", help="resets, half-closes, slow readers, then a normal exchange")
    ap.add_argument("--addr", required=True, help="host:port, or a unix socket path")
    for sp in (lp, ap):
        sp.add_argument("--timeout", type=float, default=10.0, help="bound on every socket operation and on a stall")
        sp.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    if args.mode == "load" and (args.conns < 1 or args.depth < 1 or args.size < 1 or args.seconds <= 0):
        p.error("--conns, --depth, --size and --seconds must be positive")
    try:
        if args.mode == "load":
            run_load(args)
        else:
            run_abuse(args)
    except Failure as e:
        print("echoclient %s: FAIL: %s" % (args.mode, e), file=sys.stderr)
        return 1
    except OSError as e:
        print("echoclient %s: FAIL: %s" % (args.mode, e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
