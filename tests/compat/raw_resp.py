"""Raw RESP2/RESP3 reply frames for the compatibility tool: the exact bytes of each reply.

    socket ──recv──► buffer ──frame_end()──► bytes of one complete reply (nothing decoded)

The comparison is byte for byte, so nothing here builds values: `frame_end` only finds
where a reply ends. RESP3 types are all understood (`_ , # ( ! = % ~ > |`); an attribute
(`|`) is kept together with the reply it annotates. A push (`>`) is a frame of its own,
as a client library sees it.

Threading: a RawConnection is used by one thread.
"""

import select
import socket
import time

# Depth of nested aggregates accepted in one reply; Redis's own replies stay far below
# (the proxy's reply framer also stops at 128).
MAX_DEPTH = 128


class FrameError(Exception):
    """The peer sent bytes that are not RESP."""


def frame_end(buf, pos=0, depth=0):
    """Index just past the reply that starts at buf[pos], or None if more bytes are needed."""
    if depth > MAX_DEPTH:
        raise FrameError("reply nested deeper than %d" % MAX_DEPTH)
    if pos >= len(buf):
        return None
    eol = buf.find(b"\r\n", pos)
    if eol < 0:
        return None
    kind = buf[pos:pos + 1]
    head = bytes(buf[pos + 1:eol])
    after = eol + 2
    if kind in (b"+", b"-", b":", b"_", b",", b"#", b"("):
        return after
    try:
        n = int(head)
    except ValueError:
        raise FrameError("bad length in %r" % bytes(buf[pos:eol])) from None
    if kind in (b"$", b"!", b"="):
        if n < 0:
            return after
        end = after + n + 2
        if len(buf) < end:
            return None
        if buf[end - 2:end] != b"\r\n":
            raise FrameError("bulk not followed by CRLF")
        return end
    if kind in (b"*", b"~", b">", b"%", b"|"):
        if n < 0:
            return after
        count = 2 * n if kind in (b"%", b"|") else n
        for _ in range(count):
            after = frame_end(buf, after, depth + 1)
            if after is None:
                return None
        if kind == b"|":  # an attribute precedes the reply it describes
            return frame_end(buf, after, depth + 1)
        return after
    raise FrameError("unknown reply type in %r" % bytes(buf[pos:eol])[:80])


class RawConnection:
    """One TCP connection; send bytes, read whole reply frames as bytes."""

    def __init__(self, address, timeout):
        self.sock = socket.create_connection(address, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.eof = False

    @property
    def local_address(self):
        host, port = self.sock.getsockname()[:2]
        return f"{host}:{port}"

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0 or self.eof:
            return False
        readable, _, _ = select.select([self.sock], [], [], left)
        if not readable:
            return False
        try:
            chunk = self.sock.recv(1 << 20)
        except (ConnectionResetError, socket.timeout):
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def read_frame(self, timeout):
        """The bytes of the next reply; b"<eof>" if the peer closed, b"<timeout>" if none
        arrived within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            end = frame_end(self.buf)
            if end is not None:
                frame = bytes(self.buf[:end])
                del self.buf[:end]
                return frame
            if not self._fill(deadline):
                return b"<eof>" if self.eof else b"<timeout>"

    def closed_within(self, timeout):
        """True if the peer closes the connection within `timeout` with nothing unread."""
        deadline = time.monotonic() + timeout
        while not self.eof and not self.buf:
            if not self._fill(deadline):
                break
        return self.eof and not self.buf


def encode(args):
    """A multibulk request from str/bytes/int arguments."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, int):
            a = str(a)
        if isinstance(a, str):
            a = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)
