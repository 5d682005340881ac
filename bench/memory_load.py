"""Memory of one target (redis-server, redis-tether or a peer proxy) as clients come and go.

Run by bench/memory.sh with Debian's /usr/bin/python3; prints one line of key=value
figures in KiB, read from /proc/PID/status of the target process:

  base      VmRSS before any client connects
  idle      VmRSS with --clients connections open, each having answered one PING
  busy      VmHWM (peak) while every connection has --pipeline SETs of --value bytes in
            flight at once, written before any reply is read
  closed    VmRSS --settle seconds after every connection closed (default 12: a target may
            give freed memory back on a timer; redis-tether checks every 10 s)

Standard library only; every socket is blocking with a timeout, and every loop is bounded
by the client count."""

import argparse
import resource
import socket
import sys
import time


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} missing from /proc/{pid}/status")


def command(*args):
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def read_replies(sock, count, expected):
    """Reads `count` replies that are each exactly `expected` bytes."""
    want = count * len(expected)
    got = bytearray()
    while len(got) < want:
        chunk = sock.recv(min(1 << 16, want - len(got)))
        if not chunk:
            raise RuntimeError(f"connection closed after {len(got)} of {want} reply bytes")
        got += chunk
    if bytes(got) != expected * count:
        raise RuntimeError(f"unexpected replies: {bytes(got[:80])!r}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--clients", type=int, default=1000)
    p.add_argument("--pipeline", type=int, default=16)
    p.add_argument("--value", type=int, default=1024)
    p.add_argument("--settle", type=float, default=12.0)
    a = p.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = a.clients + 64
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))

    base = status_kib(a.pid, "VmRSS")
    socks = []
    try:
        for _ in range(a.clients):
            s = socket.create_connection(("127.0.0.1", a.port), timeout=30)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            socks.append(s)
        ping = command("PING")
        for s in socks:
            s.sendall(ping)
        for s in socks:
            read_replies(s, 1, b"+PONG\r\n")
        time.sleep(0.5)
        idle = status_kib(a.pid, "VmRSS")

        value = b"x" * a.value
        batch = b"".join(command("SET", f"memory:{i % 16}", value) for i in range(a.pipeline))
        for s in socks:
            s.sendall(batch)
        for s in socks:
            read_replies(s, a.pipeline, b"+OK\r\n")
        busy = status_kib(a.pid, "VmHWM")
    finally:
        for s in socks:
            s.close()
    time.sleep(a.settle)
    closed = status_kib(a.pid, "VmRSS")
    print(f"base={base} idle={idle} busy={busy} closed={closed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
