"""Running catalogue cases: compiled steps, one run of a case on fresh connections.

    catalogue.CASES ──Case()──► [Step] ──run_case(address)──► [Result] (normalised frames)

A step sends bytes on one of the case's connections and reads whole reply frames
(raw_resp), so the caller compares exactly what a client would have received. Used by
compat_diff.py; nothing here knows about the proxy.

Threading: one thread; a case's connections live only for its run.
"""

import fnmatch
import re
import shlex

import catalogue
from raw_resp import FrameError, RawConnection, encode, frame_end

# Replies to a command: a proxy holds a command at most hold.timeout (5 s) before
# answering -NOMASTER, so a reply later than this is a hang, not a slow upstream.
REPLY_TIMEOUT_S = 6.0
# Bare reads (pushed messages): on loopback one arrives in well under a millisecond; this
# bound is only paid where a message never comes (the subscription was refused).
PUSH_TIMEOUT_S = 0.5
# How long a QUIT may take to close the connection after its reply.
CLOSE_TIMEOUT_S = 2.0


def _norm_time(reply):
    return re.sub(rb"\$\d+\r\n\d+\r\n", b"$<n>\r\n<digits>\r\n", reply)


def _norm_hello(reply):
    return re.sub(rb"(\$2\r\nid\r\n|\+id\r\n):\d+\r\n", rb"\1:<id>\r\n", reply)


def _norm_integer(reply):
    return re.sub(rb"^:\d+\r\n", b":<n>\r\n", reply)


# Replies that vary on every call or connection; named per step in the catalogue.
NORMALISERS = {"time": _norm_time, "hello": _norm_hello, "integer": _norm_integer}


class ToolFailure(Exception):
    """The measurement itself failed (not a difference)."""


class Step:
    """One compiled catalogue step: bytes to send on connection `conn` (None: read only)."""

    def __init__(self, conn, data, replies, label, names=None, norm=None, close=False,
                 preface=False, timeout=REPLY_TIMEOUT_S):
        self.conn, self.data, self.replies, self.label = conn, data, replies, label
        self.norm, self.close, self.preface = norm, close, preface
        self.timeout = timeout
        # Command name that produced each reply frame read by this step (None: a read
        # step, whose frames answer earlier sends or are pushes).
        self.frame_names = names
        self.sends = names or []  # names of the commands this step sends
        # One command answered by several frames (SUBSCRIBE a b) gets one error instead;
        # a raw pipeline gets a reply per request whatever each one is.
        self.stop_on_error = True


class Case:
    """One catalogue case, compiled: `@name` keys expanded, steps turned into bytes."""

    def __init__(self, group, name, steps):
        self.group, self.name, self.id = group, name, f"{group}/{name}"
        self.prefix = f"compat:{name}:"
        self.steps = [self._compile(s) for s in steps]
        self.command_names = {n for s in self.steps for n in s.sends}

    def _subst(self, text):
        return re.sub(r"@(\w+)", lambda m: self.prefix + m.group(1), text)

    def _compile(self, spec):
        opts = spec if isinstance(spec, dict) else {"cmd": spec}
        conn = opts.get("conn", 0)
        if "read" in opts:
            return Step(conn, None, opts["read"], f"(read {opts['read']})",
                        timeout=PUSH_TIMEOUT_S)
        if "raw" in opts:
            data = re.sub(rb"@(\w+)", lambda m: self.prefix.encode() + m.group(1), opts["raw"])
            step = Step(conn, data, opts.get("replies", 1), "raw " + repr(data)[2:-1],
                        names=request_names(data), close=opts.get("close", False))
            step.stop_on_error = False
            return step
        cmd = opts["cmd"]
        args = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
        args = [self._subst(a) if isinstance(a, str) else a for a in args]
        label = " ".join(a if isinstance(a, str) else repr(a) for a in args)
        if opts.get("conn"):
            label = f"[conn {conn}] {label}"
        replies = opts.get("replies", 1)
        name = (args[0] if isinstance(args[0], str) else args[0].decode()).upper()
        step = Step(conn, encode(args), replies, label, names=[name] * replies,
                    norm=opts.get("norm"), close=opts.get("close", False))
        step.sends = [name]
        return step


def request_names(data):
    """Upper-cased command name of each request in raw bytes that gets a reply: multibulk
    or inline, as Redis frames them (empty requests get none)."""
    names, pos = [], 0
    while pos < len(data):
        if data[pos:pos + 1] == b"*":
            try:
                end = frame_end(data, pos)
                count = int(data[pos + 1:data.index(b"\r\n", pos)])
            except (FrameError, ValueError):
                return names + ["(malformed)"]  # Redis answers a protocol error, closes
            if end is None:
                return names + ["(incomplete)"]
            if count > 0:
                head = data.index(b"\r\n", data.index(b"\r\n", pos) + 2) + 2
                names.append(data[head:data.index(b"\r\n", head)].decode().upper())
        else:
            nl = data.find(b"\n", pos)
            end = len(data) if nl < 0 else nl + 1
            words = data[pos:end].split()
            if words:
                names.append(words[0].decode(errors="replace").upper())
        pos = end
    return names


def load_cases(pattern=None):
    cases = [Case(g, n, s) for g, n, s in catalogue.CASES]
    ids = [c.id for c in cases]
    if len(set(c.name for c in cases)) != len(cases):
        raise ToolFailure("catalogue case names are not unique")
    if pattern:
        cases = [c for c in cases if fnmatch.fnmatch(c.id, pattern)]
        if not cases:
            raise ToolFailure(f"no case matches {pattern!r} (cases: {', '.join(ids[:5])}, ...)")
    return cases


# ---------------------------------------------------------------------------------------
# Running one case


class Result:
    """Normalised reply frames of one step (markers such as b"<eof>" are frames too)."""

    def __init__(self, step, frames):
        self.step, self.frames = step, list(frames)
        self.reply = b"".join(self.frames)


def _is_error(frame):
    return frame[:1] in (b"-", b"!")


def _read_replies(conn, step):
    frames = []
    for _ in range(step.replies):
        frame = conn.read_frame(step.timeout)
        frames.append(frame)
        if frame in (b"<eof>", b"<timeout>") or (step.stop_on_error and _is_error(frame)):
            break
    lost = frames[-1] in (b"<eof>", b"<timeout>") if frames else False
    if step.close:
        frames.append(b"<closed>" if conn.closed_within(CLOSE_TIMEOUT_S) else b"<still open>")
    if step.norm:
        frames = [NORMALISERS[step.norm](f) for f in frames]
    return frames, lost or step.close


def run_case(case, address, resp3, admin=None):
    """Runs every step; returns [Result]. With `admin` (the direct run) the case's
    connections are killed server-side before closing."""
    conns, dead, results = {}, set(), []

    def connection(i):
        if i not in conns:
            conns[i] = RawConnection(address, REPLY_TIMEOUT_S)
            if resp3:
                hello = Step(i, encode(["HELLO", "3"]), 1, f"[conn {i}] HELLO 3 (RESP3 run)",
                             names=["HELLO"], norm="hello", preface=True)
                conns[i].send(hello.data)
                reply, lost = _read_replies(conns[i], hello)
                results.append(Result(hello, reply))
                if lost:
                    dead.add(i)
        return conns[i]

    try:
        for step in case.steps:
            conn = connection(step.conn)
            if step.conn in dead:
                results.append(Result(step, [b"<not run: connection gone>"]))
                continue
            if step.data is not None:
                try:
                    conn.send(step.data)
                except OSError as e:
                    results.append(Result(step, [b"<send failed: %s>" % str(e).encode()]))
                    dead.add(step.conn)
                    continue
            if step.replies == 0:
                results.append(Result(step, []))
                continue
            reply, lost = _read_replies(conn, step)
            results.append(Result(step, reply))
            if lost:
                dead.add(step.conn)
    finally:
        for i, conn in conns.items():
            if admin is not None and i not in dead:
                admin.command("CLIENT", "KILL", "ADDR", conn.local_address)
            conn.close()
    return results
