"""TCP connection tracking: the netfilter state machine and window tracking.

Theory of operation
-------------------
A packet is first classified by its flags (``classify``: rst > syn/synack >
fin > ack > none) and rejected when the flag combination is not one of
``VALID_FLAGS`` (SYN+FIN, SYN+RST, NULL, FIN/PSH/URG without ACK... are
invalid: the caller marks the packet +inv).  The new state is then
``TABLE[(direction, flag class, old state)]``, a dict written out from the
kernel's ``tcp_conntracks`` table; ``INVALID`` and ``IGNORE`` are outcomes,
not states.  Special cases the table cannot express (reopen from TIME_WAIT,
ignored SYN/ACK resync, RST checks, simultaneous open, challenge ACK) follow
``nf_conntrack_tcp_packet``.

Window tracking (``in_window``) keeps per direction td_end / td_maxend /
td_maxwin / td_scale (Guido van Rooij's scheme, RFC 793 boundaries):
    I.   seq <= sender.td_maxend
    II.  end >= sender.td_end - receiver.td_maxwin
    III. ack <= receiver.td_end
    IV.  ack >= receiver.td_end - MAXACKWINDOW
A failure makes the packet invalid or ignored, unless ``be_liberal`` (sysctl)
or the per-direction BE_LIBERAL flag is set; then only out-of-window RSTs
(the RST check against td_maxack) are invalid.  SACK blocks are not parsed
(the packet record does not carry them), so ``sack == ack``.

``packet()`` returns (result, timeout_ms, events) where result is ACCEPT,
IGNORE (accepted, no state change, no refresh), INVALID, KILL (accept, then
delete the entry: RST before any reply) or REPEAT (delete and look up again:
reopen of a closed connection).
"""

from __future__ import annotations

from ..packet.headers import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, TCP_URG
from .conn import (
    C_FIELDS,
    DIR_ORIG,
    DIR_REPLY,
    EV_ASSURED,
    EV_PROTOINFO,
    IPS_ASSURED,
    IPS_SEEN_REPLY,
    TCP_NAMES,
    TcpConn,
)

# States (kernel enum tcp_conntrack) and outcomes.
NONE, SYN_SENT, SYN_RECV, ESTABLISHED, FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT, CLOSE, SYN_SENT2 = range(10)
INVALID = 10  # sIV
IGNORE = 11  # sIG
STATE_NAMES = ("NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT",
               "LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2")
STATE_BY_NAME = {n: i for i, n in enumerate(STATE_NAMES)}

# Flag classes (kernel enum tcp_bit_set).
SYN_SET, SYNACK_SET, FIN_SET, ACK_SET, RST_SET, NONE_SET = range(6)
CLASS_NAMES = ("syn", "synack", "fin", "ack", "rst", "none")

# ip_ct_tcp_state.flags bits.
F_WINDOW_SCALE = 0x01
F_SACK_PERM = 0x02
F_CLOSE_INIT = 0x04
F_BE_LIBERAL = 0x08
F_DATA_UNACKNOWLEDGED = 0x10
F_MAXACK_SET = 0x20
F_EXP_CHALLENGE_ACK = 0x40
F_SIMULTANEOUS_OPEN = 0x80

# Results of packet().
ACCEPT, R_IGNORE, R_INVALID, KILL, REPEAT = range(5)

_S = (NONE, SYN_SENT, SYN_RECV, ESTABLISHED, FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT, CLOSE, SYN_SENT2)
sNO, sSS, sSR, sES, sFW, sCW, sLA, sTW, sCL, sS2 = _S
sIV, sIG = INVALID, IGNORE

# Rows: flag class -> new state for each old state in the order of _S.
_ROWS = {
    DIR_ORIG: {
        SYN_SET:    (sSS, sSS, sIG, sIG, sIG, sIG, sIG, sSS, sSS, sS2),
        SYNACK_SET: (sIV, sIV, sSR, sIV, sIV, sIV, sIV, sIV, sIV, sSR),
        FIN_SET:    (sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV),
        ACK_SET:    (sES, sIV, sES, sES, sCW, sCW, sTW, sTW, sCL, sIV),
        RST_SET:    (sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL),
        NONE_SET:   (sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV),
    },
    DIR_REPLY: {
        SYN_SET:    (sIV, sS2, sIV, sIV, sIV, sIV, sIV, sSS, sIV, sS2),
        SYNACK_SET: (sIV, sSR, sIG, sIG, sIG, sIG, sIG, sIG, sIG, sSR),
        FIN_SET:    (sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV),
        ACK_SET:    (sIV, sIG, sSR, sES, sCW, sCW, sTW, sTW, sCL, sIG),
        RST_SET:    (sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL),
        NONE_SET:   (sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV),
    },
}
# The transition table: (direction, flag class, old state) -> new state | INVALID | IGNORE.
TABLE: dict[tuple[int, int, int], int] = {
    (d, c, s): row[s] for d, rows in _ROWS.items() for c, row in rows.items() for s in _S
}

# Valid flag combinations once PSH, ECE and CWR are ignored (kernel tcp_valid_flags).
_CORE = TCP_FIN | TCP_SYN | TCP_RST | TCP_ACK | TCP_URG
VALID_FLAGS = frozenset((
    TCP_SYN, TCP_SYN | TCP_URG, TCP_SYN | TCP_ACK, TCP_RST, TCP_RST | TCP_ACK,
    TCP_FIN | TCP_ACK, TCP_FIN | TCP_ACK | TCP_URG, TCP_ACK, TCP_ACK | TCP_URG,
))

MAXACKWINCONST = 66000
M32 = 0xFFFFFFFF

# The constants of the per-packet functions under private names, which tcp.pxd declares C
# integers: compiled, packet/in_window/_window_setup do their flag, state and 32-bit sequence
# arithmetic in C (the public names stay Python ints for the other modules).
_FINF, _SYNF, _RSTF, _ACKF, _M32, _MAXACKWIN = TCP_FIN, TCP_SYN, TCP_RST, TCP_ACK, M32, MAXACKWINCONST
_F_WSCALE, _F_SACK, _F_LIBERAL, _F_UNACKED, _F_MAXACK = (
    F_WINDOW_SCALE, F_SACK_PERM, F_BE_LIBERAL, F_DATA_UNACKNOWLEDGED, F_MAXACK_SET)
_SS, _SR = SYN_SENT, SYN_RECV


def flags_valid(flags: int) -> bool:
    """True when the TCP flag combination is one conntrack accepts."""
    return (flags & _CORE) in VALID_FLAGS


def classify(flags: int) -> int:
    """Flag class of a segment: rst > syn(+ack) > fin > ack > none."""
    if flags & TCP_RST:
        return RST_SET
    if flags & TCP_SYN:
        return SYNACK_SET if flags & TCP_ACK else SYN_SET
    if flags & TCP_FIN:
        return FIN_SET
    if flags & TCP_ACK:
        return ACK_SET
    return NONE_SET


def before(a: int, b: int) -> bool:
    """Sequence-space a < b (mod 2**32)."""
    return ((a - b) & M32) >= 0x80000000


def after(a: int, b: int) -> bool:
    return before(b, a)


def seg_end(pkt) -> int:
    """seq + payload + SYN + FIN (the sequence number after this segment)."""
    f = pkt.tcp_flags
    return (pkt.tcp_seq + pkt.payload_len + (1 if f & TCP_SYN else 0) + (1 if f & TCP_FIN else 0)) & M32


# Precomputed per packet: flag class and validity by the low six flag bits (FIN SYN RST PSH
# ACK URG; ECE/CWR/NS never matter), and TABLE flattened to NEXT[d * 60 + class * 10 + state].
CLASS_OF = tuple(classify(f) for f in range(64))
VALID_OF = tuple(flags_valid(f) for f in range(64))
NEXT = tuple(TABLE[(d, c, s)] for d in (DIR_ORIG, DIR_REPLY) for c in range(6) for s in _S)


def init(conn: TcpConn, pkt, loose: bool) -> bool:
    """Initial TCP state of a connection created by ``pkt`` (kernel tcp_new); False when invalid."""
    flags = pkt.tcp_flags
    ns = NEXT[CLASS_OF[flags & 0x3F] * 10]  # DIR_ORIG, old state NONE
    if ns >= INVALID:
        return False
    end = seg_end(pkt)
    if ns == SYN_SENT:
        conn.end0 = conn.maxend0 = end
        conn.maxwin0 = pkt.tcp_win or 1
        f = F_SACK_PERM if pkt.tcp_sack_perm else 0
        ws = pkt.tcp_wscale
        if ws >= 0:
            conn.scale0 = ws if ws < 14 else 14
            f |= F_WINDOW_SCALE
        conn.flags0 = f
    elif not loose:
        return False
    else:
        conn.end0 = end
        w = conn.maxwin0 = pkt.tcp_win or 1
        conn.maxend0 = (end + w) & M32
        conn.flags0 = conn.flags1 = F_SACK_PERM | F_BE_LIBERAL
    conn.last_index = NONE_SET
    return True


def in_window(conn: TcpConn, d: int, index: int, pkt, be_liberal: bool) -> int:
    """Window check of kernel tcp_in_window; returns ACCEPT, R_IGNORE or R_INVALID."""
    if _COMPILED:
        if not _fits(conn, pkt):
            return _on_copy(_source().in_window, conn, d, index, pkt, be_liberal)
    elif _ON_C and type(conn) is TcpConn:
        return _on_copy(in_window, conn, d, index, pkt, be_liberal)
    return _in_window(conn, d, index, pkt, be_liberal)


def _u32(x) -> bool:
    """True when ``x`` is an int in [0, 2**32 - 1]: compiled, the int object compared with the two
    constants where it is (no conversion, no exception to catch)."""
    return type(x) is int and 0 <= x <= 0xFFFFFFFF


def _u8(x) -> bool:
    """True when ``x`` is an int in [0, 255]."""
    return type(x) is int and 0 <= x <= 255


def _u5(x) -> bool:
    """True when ``x`` is an int in [0, 31]."""
    return type(x) is int and 0 <= x <= 31


def _fits(c: TcpConn, pkt) -> bool:
    """True when every value ``_in_window`` and ``_window_setup`` read into a C integer (tcp.pxd)
    is an int that integer holds and their arithmetic on it is exact: the packet's flags,
    sequence numbers, window and payload length, its window-scale option (-1 or a byte), and the
    connection's state and window fields (the scales below 32: a C shift by 32 or more is
    undefined).  The parser and this module produce nothing else; anything else (a float, a
    negative or wider number, None) goes to this module's Python source instead (``_source``),
    so the compiled core answers (or raises) as Python does.  The connection's 32-bit fields are
    C integers (conn.pxd) unless one holds another value, which ``odd`` keeps."""
    ws = pkt.tcp_wscale
    return (_u32(pkt.tcp_flags) and _u32(pkt.tcp_seq) and _u32(pkt.tcp_ack)
            and _u32(pkt.tcp_win) and _u32(pkt.payload_len)
            and type(ws) is int and (ws == -1 or _u8(ws)) and _u32(c.state) and c.odd is None
            and _u5(c.scale0) and _u32(c.flags0) and _u5(c.scale1) and _u32(c.flags1))


# True when this module runs compiled (the Python source has no use for ``_fits``).
_COMPILED = not __file__.endswith(".py")
# True when this module runs as Python on the compiled connection type, whose 32-bit fields are C
# integers (a test comparing the compiled module with its source): see ``_on_copy``.
_ON_C = C_FIELDS and not _COMPILED
_SOURCE = []
_PY_CONN = []


def _on_copy(fn, conn: TcpConn, *args):
    """``fn(conn, *args)``, one of this module's functions run as Python, on a Python copy of the
    compiled ``conn`` (the Python source writes its 32-bit fields directly, and there any value
    can stand), every field copied back afterwards, even when ``fn`` raises (through the
    properties, which keep a value no C integer holds in ``odd``): the connection ends as
    Python would leave it."""
    if not _PY_CONN:
        from .. import _native
        _PY_CONN.append(_native.source_module("conntrack.conn", "ctswitch.conntrack._conn_source").TcpConn)
    k = _PY_CONN[0]
    c = k.__new__(k)
    c.odd = None
    for n in TCP_NAMES:
        setattr(c, n, getattr(conn, n))
    try:
        return fn(c, *args)
    finally:
        for n in TCP_NAMES:
            setattr(conn, n, getattr(c, n))


def _source():
    """This module run from its Python source (loaded once, only by a compiled build that met
    values ``_fits`` refuses)."""
    if not _SOURCE:
        from .. import _native
        _SOURCE.append(_native.source_module("conntrack.tcp", "ctswitch.conntrack._tcp_source"))
    return _SOURCE[0]


def _in_window(conn: TcpConn, d: int, index: int, pkt, be_liberal: bool) -> int:
    """``in_window`` for values ``_fits`` accepts.

    The sender's and the receiver's fields are read into locals (``s_*``/``r_*``)
    and only the ones a branch changes are written back; before(a, b) is
    ``(a - b) & M32 >= 2**31`` inline.  The rare set-up of a direction's window
    (first segment seen that way, or a SYN restarting it) is ``_window_setup``,
    which updates the connection in place before the checks read it.  Compiled,
    the locals are C unsigned 32-bit integers (tcp.pxd): the masked arithmetic is the same.
    """
    c = conn
    flags = pkt.tcp_flags
    seq = pkt.tcp_seq
    ack = pkt.tcp_ack  # also the kernel's sack: SACK blocks are not parsed, so sack == ack
    win = pkt.tcp_win
    plen = pkt.payload_len
    syn = flags & _SYNF
    end = seq + plen
    if syn:
        end += 1
    if flags & _FINF:
        end += 1
    end &= _M32
    state = c.state
    if ((not (c._maxwin1 if d else c._maxwin0) or (syn and (state == _SS or state == _SR)))
            and _window_setup(c, d, pkt, flags, end, win, ack)):
        return ACCEPT  # simultaneous open
    if d:
        s_end, s_maxend, s_maxwin, s_maxack, s_scale, s_flags = (
            c._end1, c._maxend1, c._maxwin1, c._maxack1, c.scale1, c.flags1)
        r_end, r_maxend, r_maxwin, r_flags = c._end0, c._maxend0, c._maxwin0, c.flags0
    else:
        s_end, s_maxend, s_maxwin, s_maxack, s_scale, s_flags = (
            c._end0, c._maxend0, c._maxwin0, c._maxack0, c.scale0, c.flags0)
        r_end, r_maxend, r_maxwin, r_flags = c._end1, c._maxend1, c._maxwin1, c.flags1
    # What the fields held: only the ones that change are written back below (compiled, each
    # write is a new int object and the old one's release).
    o_send, o_smaxwin, o_smaxack, o_sflags = s_end, s_maxwin, s_maxack, s_flags
    o_rmaxend, o_rmaxwin, o_rflags = r_maxend, r_maxwin, r_flags
    if not flags & _ACKF:
        ack = r_end
    elif flags & _RSTF and ack == 0:
        ack = r_end
    if flags & _RSTF and seq == 0 and state == _SS:
        seq = end = s_end
    maxackwin = s_maxwin if s_maxwin > _MAXACKWIN else _MAXACKWIN
    if ((s_maxend - seq) & _M32) >= 0x80000000:  # I fails: after(seq, td_maxend)
        liberal = be_liberal or s_flags & _F_LIBERAL
        if (r_maxwin and ((s_end - r_maxwin - 1 - end) & _M32) >= 0x80000000
                and ((r_end - maxackwin - 1 - ack) & _M32) >= 0x80000000
                and ((end - s_maxend + 1) & _M32) <= r_maxwin
                and ((ack - r_end - 1) & _M32) >= 0x80000000):
            s_flags |= _F_UNACKED
            if d:
                c._end1, c.flags1 = end, s_flags
            else:
                c._end0, c.flags0 = end, s_flags
            return ACCEPT if liberal else R_IGNORE
        return ACCEPT if liberal else R_INVALID
    if ((r_end - ack) & _M32) >= 0x80000000:  # III fails: after(ack, receiver td_end)
        return ACCEPT if be_liberal or s_flags & _F_LIBERAL else R_INVALID
    if r_maxwin and ((end - s_end + r_maxwin) & _M32) >= 0x80000000:  # II fails: before(end, td_end - td_maxwin)
        return ACCEPT if be_liberal or s_flags & _F_LIBERAL else R_IGNORE
    if ((ack - r_end + maxackwin) & _M32) >= 0x80000000:  # IV fails: before(ack, td_end - maxackwin)
        return ACCEPT if be_liberal or s_flags & _F_LIBERAL else R_IGNORE
    # In window: update both directions (td_scale, td_end of the receiver and td_maxend of
    # the sender do not change here).
    swin = win if syn else (win << s_scale) & _M32
    if s_maxwin < swin:  # swin = win + (sack - ack), and sack == ack (no SACK blocks)
        s_maxwin = swin
    if ((s_end - end) & _M32) >= 0x80000000:
        s_end = end
        s_flags |= _F_UNACKED
    if flags & _ACKF:
        if not s_flags & _F_MAXACK:
            s_maxack = ack
            s_flags |= _F_MAXACK
        elif ((s_maxack - ack) & _M32) >= 0x80000000:
            s_maxack = ack
    if r_maxwin != 0 and ((s_maxend - end) & _M32) >= 0x80000000:
        r_maxwin = (r_maxwin + ((end - s_maxend) & _M32)) & _M32
    if ((r_maxend - 1 - ack - swin) & _M32) >= 0x80000000:
        r_maxend = (ack + swin) & _M32
        if swin == 0:
            r_maxend = (r_maxend + 1) & _M32
    if ack == r_end:
        r_flags &= ~_F_UNACKED
    if index == ACK_SET:
        # Compiled, C integers compared and stored in C integers (conn.pxd): no int object.
        if (c.last_dir == d and c._last_seq == seq and c._last_ack == ack
                and c._last_end == end and c._last_win == win):
            c.retrans += 1
        else:
            c.last_dir = d
            c._last_seq = seq
            c._last_ack = ack
            c._last_end = end
            c._last_win = win
            c.retrans = 0
    if d:
        if s_end != o_send:
            c._end1 = s_end
        if s_maxwin != o_smaxwin:
            c._maxwin1 = s_maxwin
        if s_maxack != o_smaxack:
            c._maxack1 = s_maxack
        if s_flags != o_sflags:
            c.flags1 = s_flags
        if r_maxend != o_rmaxend:
            c._maxend0 = r_maxend
        if r_maxwin != o_rmaxwin:
            c._maxwin0 = r_maxwin
        if r_flags != o_rflags:
            c.flags0 = r_flags
    else:
        if s_end != o_send:
            c._end0 = s_end
        if s_maxwin != o_smaxwin:
            c._maxwin0 = s_maxwin
        if s_maxack != o_smaxack:
            c._maxack0 = s_maxack
        if s_flags != o_sflags:
            c.flags0 = s_flags
        if r_maxend != o_rmaxend:
            c._maxend1 = r_maxend
        if r_maxwin != o_rmaxwin:
            c._maxwin1 = r_maxwin
        if r_flags != o_rflags:
            c.flags1 = r_flags
    return ACCEPT


def _window_setup(c: TcpConn, d: int, pkt, flags: int, end: int, win: int, ack: int) -> bool:
    """The part of tcp_in_window before the checks, for a segment whose sender has no window
    yet (td_maxwin 0) or a SYN in SYN_SENT/SYN_RECV: learns or restarts the sender's window in
    place.  Returns True when the segment is accepted without the checks (simultaneous open)."""
    if d:
        s_end, s_maxend, s_maxwin, s_scale, s_flags = c._end1, c._maxend1, c._maxwin1, c.scale1, c.flags1
        r_end, r_maxend, r_maxwin, r_scale, r_flags = c._end0, c._maxend0, c._maxwin0, c.scale0, c.flags0
    else:
        s_end, s_maxend, s_maxwin, s_scale, s_flags = c._end0, c._maxend0, c._maxwin0, c.scale0, c.flags0
        r_end, r_maxend, r_maxwin, r_scale, r_flags = c._end1, c._maxend1, c._maxwin1, c.scale1, c.flags1
    accept = False
    if s_maxwin == 0:
        init = flags & _SYNF
        if init:
            accept = not flags & _ACKF  # simultaneous open
        else:
            s_end = end
            s_maxwin = ((win << s_scale) & _M32) or 1
            s_maxend = (end + s_maxwin) & _M32
            if r_maxwin == 0:
                r_end = r_maxend = ack
            elif ack == ((r_end + 1) & _M32):
                r_end = (r_end + 1) & _M32
    elif ((s_end - end) & _M32) >= 0x80000000:  # a SYN in SYN_SENT or SYN_RECV (see in_window)
        init = True
        accept = d == DIR_REPLY and not flags & _ACKF
    else:
        return False
    if init:  # kernel: the sender's state restarts from this SYN
        s_end = s_maxend = end
        s_maxwin = win or 1
        s_flags &= _F_LIBERAL
        s_scale = 0
        if pkt.tcp_sack_perm:
            s_flags |= _F_SACK
        ws = pkt.tcp_wscale
        if ws >= 0:
            s_scale = ws if ws < 14 else 14
            s_flags |= _F_WSCALE
        if not (s_flags & _F_WSCALE and r_flags & _F_WSCALE):
            s_scale = r_scale = 0
    if d:
        c._end1, c._maxend1, c._maxwin1, c.scale1, c.flags1 = s_end, s_maxend, s_maxwin, s_scale, s_flags
        c._end0, c._maxend0, c._maxwin0, c.scale0, c.flags0 = r_end, r_maxend, r_maxwin, r_scale, r_flags
    else:
        c._end0, c._maxend0, c._maxwin0, c.scale0, c.flags0 = s_end, s_maxend, s_maxwin, s_scale, s_flags
        c._end1, c._maxend1, c._maxwin1, c.scale1, c.flags1 = r_end, r_maxend, r_maxwin, r_scale, r_flags
    return accept


def _set_side(c: TcpConn, d: int, end: int, maxend: int, maxwin: int, scale: int, flags: int) -> None:
    # (through the fields' properties: any value stands, as in Python; rare, not per packet)
    if d:
        c.end1, c.maxend1, c.maxwin1, c.scale1, c.flags1 = end, maxend, maxwin, scale, flags
    else:
        c.end0, c.maxend0, c.maxwin0, c.scale0, c.flags0 = end, maxend, maxwin, scale, flags


def packet(conn: TcpConn, d: int, pkt, t, now: int) -> tuple[int, int, int]:
    """Runs one segment through the state machine (kernel nf_conntrack_tcp_packet).

    ``t`` is the ``Timeouts``.  Returns (result, timeout_ms, events); the
    caller refreshes ``conn.expires`` with the timeout on ACCEPT.
    """
    c = conn
    if c.wide is not None:  # offloaded: packed by on_offload
        c.unpack()
    if _COMPILED:
        if not _fits(c, pkt):
            return _on_copy(_source().packet, conn, d, pkt, t, now)
    elif _ON_C and type(c) is TcpConn:
        return _on_copy(packet, conn, d, pkt, t, now)
    old = c.state
    flags = pkt.tcp_flags
    index = CLASS_OF[flags & 0x3F]
    ns = NEXT[d * 60 + index * 10 + old]
    events = 0
    skip_window = False
    if ns != ESTABLISHED:  # none of the special cases below concerns ESTABLISHED
        if ns == SYN_SENT and old >= TIME_WAIT:
            if ((c.flags0 | c.flags1) & F_CLOSE_INIT
                    or (c.last_dir == d and c.last_index == RST_SET)):
                return REPEAT, 0, 0
            ns = IGNORE
        if ns == SYN_SENT and old < TIME_WAIT:
            pass
        elif ns == IGNORE:
            if (index == SYNACK_SET and c.last_index == SYN_SET and c.last_dir != d
                    and pkt.tcp_ack == c._last_end):
                # The SYN/ACK answers a SYN we ignored: resync from the annotated values
                # (compiled, ``_in_window`` then reads them as C integers: see ``_fits``).
                if _COMPILED and not _u5(c.last_wscale):
                    return _on_copy(_source().packet, conn, d, pkt, t, now)
                old = SYN_SENT
                ns = SYN_RECV
                le = c._last_end
                _set_side(c, c.last_dir, le, le, c._last_win or 1, c.last_wscale,
                          c.last_flags & (F_WINDOW_SCALE | F_SACK_PERM))
                _set_side(c, d, 0, 0, 0, 0, 0)
                if d:
                    c._maxack1 = 0
                else:
                    c._maxack0 = 0
            else:
                c.last_index = index
                c.last_dir = d
                c._last_seq = pkt.tcp_seq
                c._last_end = seg_end(pkt)
                c._last_win = pkt.tcp_win
                if index == SYN_SET and d == DIR_ORIG:
                    lf = 0
                    lw = 0
                    ws = pkt.tcp_wscale
                    if ws >= 0:
                        lf = F_WINDOW_SCALE
                        lw = ws if ws < 14 else 14
                    if pkt.tcp_sack_perm:
                        lf |= F_SACK_PERM
                    c.last_flags = lf
                    c.last_wscale = lw
                if old == LAST_ACK:
                    c.last_flags |= F_EXP_CHALLENGE_ACK
                return R_IGNORE, 0, 0
        elif ns == INVALID:
            return R_INVALID, 0, 0
        elif ns == TIME_WAIT:
            if (old == LAST_ACK and index == ACK_SET and c.last_dir != d
                    and c.last_index == SYN_SET and c.last_flags & F_EXP_CHALLENGE_ACK):
                c.last_flags &= ~F_EXP_CHALLENGE_ACK
                return R_IGNORE, 0, 0
        elif ns == SYN_SENT2:
            c.last_flags |= F_SIMULTANEOUS_OPEN
        elif ns == SYN_RECV:
            if d == DIR_REPLY and index == ACK_SET and c.last_flags & F_SIMULTANEOUS_OPEN:
                ns = ESTABLISHED
        elif ns == CLOSE and index == RST_SET:
            peer_flags, peer_maxack = (c.flags0, c._maxack0) if d else (c.flags1, c._maxack1)
            seq = pkt.tcp_seq
            if peer_flags & F_MAXACK_SET and c.last_index != SYN_SET:
                if seq == 0 and old != ESTABLISHED:
                    pass
                elif ((seq - peer_maxack) & M32) >= 0x80000000 and not t.ignore_invalid_rst:
                    return R_INVALID, 0, 0
                elif old == ESTABLISHED and seq != peer_maxack and not (
                        c.last_index == ACK_SET and c.last_dir == d and seq == c._last_end):
                    ns = old  # inexact RST: keep state to allow a challenge ACK
            if (((c.status & IPS_SEEN_REPLY and c.last_index == SYN_SET)
                 or (not c.status & IPS_ASSURED and c.last_index == ACK_SET))
                    and pkt.tcp_ack == c._last_end):
                skip_window = True
            elif (old == SYN_SENT and c.last_index == ACK_SET and c.last_dir == DIR_REPLY
                  and seq == c._last_end):
                skip_window = True

    if not skip_window:
        res = _in_window(c, d, index, pkt, t.be_liberal)
        if res:
            if res == R_IGNORE:
                return R_IGNORE, 0, 0
            _handle_invalid(c, d, index, t, now)
            return R_INVALID, 0, 0

    c.last_index = index
    c.last_dir = d
    c.state = ns
    if old != ns and ns == FIN_WAIT:
        if d:
            c.flags1 |= F_CLOSE_INIT
        else:
            c.flags0 |= F_CLOSE_INIT

    tt = t.tcp
    tns = tt[ns]
    if c.retrans >= t.max_retrans and tns > t.tcp_retrans:
        timeout = t.tcp_retrans
    elif index == RST_SET:
        timeout = tt[CLOSE]
    elif (c.flags0 | c.flags1) & F_DATA_UNACKNOWLEDGED and tns > t.tcp_unack:
        timeout = t.tcp_unack
    elif c._last_win == 0 and tns > t.tcp_retrans:
        timeout = t.tcp_retrans
    else:
        timeout = tns
    if ns != old:
        events = EV_PROTOINFO
    status = c.status
    if not status & IPS_SEEN_REPLY:
        if flags & TCP_RST:
            return KILL, timeout, events
        if index == SYN_SET and old == SYN_SENT:
            return ACCEPT, -1, events  # SYN retransmit: do not renew the timeout
        if ns == ESTABLISHED and timeout > t.tcp_unack:
            timeout = t.tcp_unack
    elif not status & IPS_ASSURED and (old == SYN_RECV or old == ESTABLISHED) and ns == ESTABLISHED:
        c.status = status | IPS_ASSURED
        events |= EV_ASSURED
    return ACCEPT, timeout, events


def _handle_invalid(conn: TcpConn, d: int, index: int, t, now: int) -> None:
    """Shrinks the timeout of an ASSURED connection whose FIN/RST answers an invalid one."""
    info = conn
    if not conn.status & IPS_ASSURED or index not in (RST_SET, FIN_SET):
        return
    if info.last_dir != d and info.last_index in (FIN_SET, RST_SET):
        remaining = conn.expires - now
        if remaining < 120_000:
            return
        if remaining > t.tcp_unack:
            conn.expires = now + t.tcp_unack
            conn.timeout = t.tcp_unack
    else:
        info.last_index = index
        info.last_dir = d
