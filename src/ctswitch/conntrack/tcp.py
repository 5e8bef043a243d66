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
    DIR_ORIG,
    DIR_REPLY,
    EV_ASSURED,
    EV_PROTOINFO,
    IPS_ASSURED,
    IPS_SEEN_REPLY,
    Conn,
    TcpInfo,
    TcpSide,
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


def _options(pkt, side: TcpSide) -> None:
    side.td_scale = 0
    side.flags &= F_BE_LIBERAL
    if pkt.tcp_sack_perm:
        side.flags |= F_SACK_PERM
    if pkt.tcp_wscale >= 0:
        side.td_scale = min(pkt.tcp_wscale, 14)
        side.flags |= F_WINDOW_SCALE


def new(pkt, loose: bool) -> TcpInfo | None:
    """State of a connection created by ``pkt`` (kernel tcp_new), or None when invalid."""
    cls = classify(pkt.tcp_flags)
    ns = TABLE[(DIR_ORIG, cls, NONE)]
    if ns >= INVALID:
        return None
    info = TcpInfo()
    s0 = info.seen[0]
    end = seg_end(pkt)
    if ns == SYN_SENT:
        s0.td_end = end
        s0.td_maxwin = pkt.tcp_win or 1
        s0.td_maxend = end
        _options(pkt, s0)
    elif not loose:
        return None
    else:
        s0.td_end = end
        s0.td_maxwin = pkt.tcp_win or 1
        s0.td_maxend = (end + s0.td_maxwin) & M32
        s0.flags = info.seen[1].flags = F_SACK_PERM | F_BE_LIBERAL
    info.last_index = NONE_SET
    return info


def _maxackwindow(sender: TcpSide) -> int:
    return sender.td_maxwin if sender.td_maxwin > MAXACKWINCONST else MAXACKWINCONST


def in_window(conn: Conn, d: int, index: int, pkt, be_liberal: bool) -> int:
    """Window check of kernel tcp_in_window; returns ACCEPT, R_IGNORE or R_INVALID."""
    info = conn.tcp
    sender = info.seen[d]
    receiver = info.seen[1 - d]
    flags = pkt.tcp_flags
    seq = pkt.tcp_seq
    ack = sack = pkt.tcp_ack
    win_raw = pkt.tcp_win
    win = win_raw
    end = seg_end(pkt)
    state = conn.state
    syn = flags & TCP_SYN
    if sender.td_maxwin == 0:
        if syn:
            _init_sender(sender, receiver, pkt, end, win)
            if not flags & TCP_ACK:
                return ACCEPT  # simultaneous open
        else:
            sender.td_end = end
            swin = (win << sender.td_scale) & M32
            sender.td_maxwin = swin or 1
            sender.td_maxend = (end + sender.td_maxwin) & M32
            if receiver.td_maxwin == 0:
                receiver.td_end = receiver.td_maxend = sack
            elif sack == ((receiver.td_end + 1) & M32):
                receiver.td_end = (receiver.td_end + 1) & M32
    elif syn and after(end, sender.td_end) and state in (SYN_SENT, SYN_RECV):
        _init_sender(sender, receiver, pkt, end, win)
        if d == DIR_REPLY and not flags & TCP_ACK:
            return ACCEPT
    if not flags & TCP_ACK:
        ack = sack = receiver.td_end
    elif (flags & (TCP_ACK | TCP_RST)) == (TCP_ACK | TCP_RST) and ack == 0:
        ack = sack = receiver.td_end
    if flags & TCP_RST and seq == 0 and state == SYN_SENT:
        seq = end = sender.td_end

    liberal = be_liberal or bool(sender.flags & F_BE_LIBERAL)
    if not before(seq, (sender.td_maxend + 1) & M32):
        overshot = (end - sender.td_maxend + 1) & M32
        ack_ok = after(sack, (receiver.td_end - _maxackwindow(sender) - 1) & M32)
        in_recv = receiver.td_maxwin and after(end, (sender.td_end - receiver.td_maxwin - 1) & M32)
        if in_recv and ack_ok and overshot <= receiver.td_maxwin and before(sack, (receiver.td_end + 1) & M32):
            sender.td_end = end
            sender.flags |= F_DATA_UNACKNOWLEDGED
            return ACCEPT if liberal else R_IGNORE
        return ACCEPT if liberal else R_INVALID
    if not before(sack, (receiver.td_end + 1) & M32):
        return ACCEPT if liberal else R_INVALID
    if receiver.td_maxwin and not after(end, (sender.td_end - receiver.td_maxwin - 1) & M32):
        return ACCEPT if liberal else R_IGNORE
    if not after(sack, (receiver.td_end - _maxackwindow(sender) - 1) & M32):
        return ACCEPT if liberal else R_IGNORE

    if not syn:
        win = (win << sender.td_scale) & M32
    swin = (win + (sack - ack)) & M32
    if sender.td_maxwin < swin:
        sender.td_maxwin = swin
    if after(end, sender.td_end):
        sender.td_end = end
        sender.flags |= F_DATA_UNACKNOWLEDGED
    if flags & TCP_ACK:
        if not sender.flags & F_MAXACK_SET:
            sender.td_maxack = ack
            sender.flags |= F_MAXACK_SET
        elif after(ack, sender.td_maxack):
            sender.td_maxack = ack
    if receiver.td_maxwin != 0 and after(end, sender.td_maxend):
        receiver.td_maxwin = (receiver.td_maxwin + ((end - sender.td_maxend) & M32)) & M32
    if after((sack + win) & M32, (receiver.td_maxend - 1) & M32):
        receiver.td_maxend = (sack + win) & M32
        if win == 0:
            receiver.td_maxend = (receiver.td_maxend + 1) & M32
    if ack == receiver.td_end:
        receiver.flags &= ~F_DATA_UNACKNOWLEDGED
    if index == ACK_SET:
        if (info.last_dir == d and info.last_seq == seq and info.last_ack == ack
                and info.last_end == end and info.last_win == win_raw):
            info.retrans += 1
        else:
            info.last_dir = d
            info.last_seq = seq
            info.last_ack = ack
            info.last_end = end
            info.last_win = win_raw
            info.retrans = 0
    return ACCEPT


def _init_sender(sender: TcpSide, receiver: TcpSide, pkt, end: int, win: int) -> None:
    sender.td_end = sender.td_maxend = end
    sender.td_maxwin = win or 1
    _options(pkt, sender)
    if not (sender.flags & F_WINDOW_SCALE and receiver.flags & F_WINDOW_SCALE):
        sender.td_scale = receiver.td_scale = 0


def _established_like(conn: Conn) -> bool:
    return conn.state == ESTABLISHED


def packet(conn: Conn, d: int, pkt, t, now: int) -> tuple[int, int, int]:
    """Runs one segment through the state machine (kernel nf_conntrack_tcp_packet).

    ``t`` is the ``Timeouts``.  Returns (result, timeout_ms, events); the
    caller refreshes ``conn.expires`` with the timeout on ACCEPT.
    """
    info = conn.tcp
    old = conn.state
    index = classify(pkt.tcp_flags)
    ns = TABLE[(d, index, old)]
    events = 0
    skip_window = False
    if ns == SYN_SENT and old >= TIME_WAIT:
        if ((info.seen[d].flags | info.seen[1 - d].flags) & F_CLOSE_INIT
                or (info.last_dir == d and info.last_index == RST_SET)):
            return REPEAT, 0, 0
        ns = IGNORE
    if ns == SYN_SENT and old < TIME_WAIT:
        pass
    elif ns == IGNORE:
        if (index == SYNACK_SET and info.last_index == SYN_SET and info.last_dir != d
                and pkt.tcp_ack == info.last_end):
            # The SYN/ACK answers a SYN we ignored: resync from the annotated values.
            old = SYN_SENT
            ns = SYN_RECV
            ld = info.seen[info.last_dir]
            ld.td_end = ld.td_maxend = info.last_end
            ld.td_maxwin = info.last_win or 1
            ld.td_scale = info.last_wscale
            ld.flags = info.last_flags & (F_WINDOW_SCALE | F_SACK_PERM)
            fresh = info.seen[d]
            fresh.td_end = fresh.td_maxend = fresh.td_maxwin = fresh.td_maxack = fresh.td_scale = fresh.flags = 0
        else:
            info.last_index = index
            info.last_dir = d
            info.last_seq = pkt.tcp_seq
            info.last_end = seg_end(pkt)
            info.last_win = pkt.tcp_win
            if index == SYN_SET and d == DIR_ORIG:
                info.last_flags = 0
                info.last_wscale = 0
                if pkt.tcp_wscale >= 0:
                    info.last_flags |= F_WINDOW_SCALE
                    info.last_wscale = min(pkt.tcp_wscale, 14)
                if pkt.tcp_sack_perm:
                    info.last_flags |= F_SACK_PERM
            if old == LAST_ACK:
                info.last_flags |= F_EXP_CHALLENGE_ACK
            return R_IGNORE, 0, 0
    elif ns == INVALID:
        return R_INVALID, 0, 0
    elif ns == TIME_WAIT:
        if (old == LAST_ACK and index == ACK_SET and info.last_dir != d
                and info.last_index == SYN_SET and info.last_flags & F_EXP_CHALLENGE_ACK):
            info.last_flags &= ~F_EXP_CHALLENGE_ACK
            return R_IGNORE, 0, 0
    elif ns == SYN_SENT2:
        info.last_flags |= F_SIMULTANEOUS_OPEN
    elif ns == SYN_RECV:
        if d == DIR_REPLY and index == ACK_SET and info.last_flags & F_SIMULTANEOUS_OPEN:
            ns = ESTABLISHED
    elif ns == CLOSE and index == RST_SET:
        peer = info.seen[1 - d]
        seq = pkt.tcp_seq
        if peer.flags & F_MAXACK_SET and info.last_index != SYN_SET:
            if seq == 0 and old != ESTABLISHED:
                pass
            elif before(seq, peer.td_maxack) and not t.ignore_invalid_rst:
                return R_INVALID, 0, 0
            elif old == ESTABLISHED and seq != peer.td_maxack and not (
                    info.last_index == ACK_SET and info.last_dir == d and seq == info.last_end):
                ns = old  # inexact RST: keep state to allow a challenge ACK
        if (((conn.status & IPS_SEEN_REPLY and info.last_index == SYN_SET)
             or (not conn.status & IPS_ASSURED and info.last_index == ACK_SET))
                and pkt.tcp_ack == info.last_end):
            skip_window = True
        elif (old == SYN_SENT and info.last_index == ACK_SET and info.last_dir == DIR_REPLY
              and seq == info.last_end):
            skip_window = True

    if not skip_window:
        res = in_window(conn, d, index, pkt, t.be_liberal)
        if res == R_IGNORE:
            return R_IGNORE, 0, 0
        if res == R_INVALID:
            _handle_invalid(conn, d, index, t, now)
            return R_INVALID, 0, 0

    info.last_index = index
    info.last_dir = d
    conn.state = ns
    if old != ns and ns == FIN_WAIT:
        info.seen[d].flags |= F_CLOSE_INIT

    tt = t.tcp
    if info.retrans >= t.max_retrans and tt[ns] > t.tcp_retrans:
        timeout = t.tcp_retrans
    elif index == RST_SET:
        timeout = tt[CLOSE]
    elif ((info.seen[0].flags | info.seen[1].flags) & F_DATA_UNACKNOWLEDGED
          and tt[ns] > t.tcp_unack):
        timeout = t.tcp_unack
    elif info.last_win == 0 and tt[ns] > t.tcp_retrans:
        timeout = t.tcp_retrans
    else:
        timeout = tt[ns]
    if ns != old:
        events |= EV_PROTOINFO
    if not conn.status & IPS_SEEN_REPLY:
        if pkt.tcp_flags & TCP_RST:
            return KILL, timeout, events
        if index == SYN_SET and old == SYN_SENT:
            return ACCEPT, -1, events  # SYN retransmit: do not renew the timeout
        if ns == ESTABLISHED and timeout > t.tcp_unack:
            timeout = t.tcp_unack
    elif (not conn.status & IPS_ASSURED and old in (SYN_RECV, ESTABLISHED) and ns == ESTABLISHED):
        conn.status |= IPS_ASSURED
        events |= EV_ASSURED
    return ACCEPT, timeout, events


def _handle_invalid(conn: Conn, d: int, index: int, t, now: int) -> None:
    """Shrinks the timeout of an ASSURED connection whose FIN/RST answers an invalid one."""
    info = conn.tcp
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
