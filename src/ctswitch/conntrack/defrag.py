"""Defrag: IP reassembly before conntrack, as the kernel does for OVS's ct() action.

Theory of operation
-------------------
"If ct is executed on IPv4 (or IPv6) fragments, then the message is implicitly reassembled
before sending to the connection tracker and refragmented upon output" (ovs-actions(7)); the
kernel datapath calls ``ip_defrag`` / ``nf_ct_frag6_gather`` with a per-zone user, so zones
keep separate queues.  ``Defrag.add(zone, pkt, now)`` takes one fragment and returns:

* ``None`` when the datagram is not complete yet: the fragment is kept and the packet
  is *stolen* (its pipeline stops at this ct(); nothing is dropped or counted as a drop);
* a ``Reassembled`` when it completes the datagram: the whole frame, parsed, plus what
  output needs to cut it again (the fragments' boundaries and ``mru``, the largest
  fragment's IP length; for IPv6 the unfragmentable part's layout);
* ``DROPPED`` when the fragment (or its whole queue) was discarded.

Linux's rules (``net/ipv4/ip_fragment.c``, ``inet_fragment.c``,
``net/ipv6/netfilter/nf_conntrack_reasm.c``) as implemented here: a queue is keyed by
(zone, source, destination, protocol (IPv4 only), identification) and lives
``net.ipv4.ipfrag_time`` (30 s) or ``net.netfilter.nf_conntrack_frag6_timeout`` (60 s) from its
first fragment, then it is freed (ReasmTimeout; conntrack's defrag users send no ICMP
time-exceeded); an exact duplicate is dropped alone, any other overlap discards the whole
queue (RFC 5722, and Linux applies it to IPv4 since 4.19); a non-last fragment whose length
is not a multiple of 8 is truncated (IPv4) or dropped (IPv6); a last fragment that
contradicts the known length, an empty fragment or an oversized datagram discards the
queue; ECN codepoints combine as ``ip_frag_ecn_table`` (CE wins over ECT, not-ECT mixed with
ECT is dropped); an IPv4 datagram carries DF only when its largest fragment did.
``ipfrag_high_thresh`` / ``nf_conntrack_frag6_high_thresh`` bound the bytes held in queues
(fragments beyond are dropped).  IPv4 counters are the kernel's /proc/net/snmp names
(``stats``); IPv6 ones are kept apart (``stats6``).

Not modelled: the slow-path refragmentation of ``ip_do_fragment`` (cloned skbs of
multi-port outputs are cut by the MRU there; here every output keeps the arrival
boundaries).
"""

from __future__ import annotations

from ..packet import codec
from ..packet.fragment import frag6_fields, frag_fields, reassembled, reassembled6

DROPPED = "dropped"
IP_MAX = 65535
# ECN codepoints -> the kernel's IPFRAG_ECN_* bits.
_ECN_BIT = (1, 2, 4, 8)  # NOT_ECT, ECT_1, ECT_0, CE
# The kernel's IP MIB counters this models (/proc/net/snmp "Ip:"; ReasmOverlaps is in
# /proc/net/netstat "IpExt:"); the Frag* ones are counted by the datapath's refragmentation.
STAT_NAMES = ("ReasmTimeout", "ReasmReqds", "ReasmOKs", "ReasmFails", "FragOKs", "FragFails", "FragCreates",
              "ReasmOverlaps")


class Reassembled:
    """A completed datagram: ``frame`` and ``pkt`` (parsed), the payload ``bounds``
    ((offset, length) per fragment, in offset order) and ``mru`` for output."""

    __slots__ = ("frame", "pkt", "bounds", "mru", "v6")

    def __init__(self, frame: bytes, pkt, bounds: list[tuple[int, int]], mru: int, v6: tuple | None = None) -> None:
        self.frame = frame
        self.pkt = pkt
        self.bounds = bounds
        self.mru = mru
        self.v6 = v6  # IPv6: (unfragmentable length, next-header byte offset, identification)


class _Queue:
    __slots__ = ("v6", "expires", "frags", "length", "last_in", "mem", "max_size", "max_df", "ecn", "head")

    def __init__(self, v6: bool, expires: int) -> None:
        self.v6 = v6
        self.expires = expires
        self.frags: list[tuple[int, int, bytes]] = []  # (offset, end, payload), sorted by offset
        self.length = 0  # payload length known so far (the last fragment's end once last_in)
        self.last_in = False
        self.mem = 0
        self.max_size = 0  # largest fragment, IP header included
        self.max_df = 0  # largest fragment that had DF
        self.ecn = 0
        self.head: tuple | None = None  # (frame, l3[, Fragment header, its naming byte]) at offset 0


class Defrag:
    """Reassembly queues of one switch (see the module docstring)."""

    def __init__(self, params) -> None:
        self.params = params
        self.queues: dict[tuple, _Queue] = {}
        self.mem = {4: 0, 6: 0}  # bytes held per IP version (separate limits, as in the kernel)
        self.stats = dict.fromkeys(STAT_NAMES, 0)  # IPv4 (the IP MIB)
        self.stats6 = dict.fromkeys(STAT_NAMES, 0)  # IPv6 (nf_conntrack_reasm; no MIB shown)

    def _limits(self, v6: bool) -> tuple[int, int]:
        """(timeout ms, high threshold bytes) of IPv4 or IPv6 reassembly."""
        g = self.params.get
        if v6:
            return (int(g("sysctl:net.netfilter.nf_conntrack_frag6_timeout")) * 1000,
                    int(g("sysctl:net.netfilter.nf_conntrack_frag6_high_thresh")))
        return int(g("sysctl:net.ipv4.ipfrag_time")) * 1000, int(g("sysctl:net.ipv4.ipfrag_high_thresh"))

    def __len__(self) -> int:
        return len(self.queues)

    def add(self, zone: int, pkt, now: int):
        """One IP fragment (``pkt.nw_frag`` set) through ct() in ``zone``; see the module
        docstring for the three answers."""
        frame, l3 = pkt.frame, pkt.l3
        v6 = pkt.ip_ver == 6
        stats = self.stats6 if v6 else self.stats
        stats["ReasmReqds"] += 1
        if v6:
            f6 = frag6_fields(frame, l3)
            if f6 is None:
                stats["ReasmFails"] += 1
                return DROPPED
            fh, nh_at, _nexthdr, offset, more, ident = f6
            start, df = fh + 8, False
            key = (zone, 6, pkt.nw_src, pkt.nw_dst, ident)
        else:
            ident, offset, more, df = frag_fields(frame, l3)
            start = l3 + ((frame[l3] & 0x0F) << 2)
            key = (zone, 4, pkt.nw_src, pkt.nw_dst, pkt.nw_proto, ident)
        ver = 6 if v6 else 4
        q = self.queues.get(key)
        if q is not None and q.expires <= now:
            self._kill(key, q, timeout=True)
            q = None
        size = pkt.ip_len  # the fragment's IP length: what mru is made of
        payload = bytes(frame[start:l3 + pkt.ip_len])
        end = offset + len(payload)
        if q is None:
            timeout, high = self._limits(v6)
            if self.mem[ver] + len(frame) > high:
                stats["ReasmFails"] += 1
                return DROPPED
            q = self.queues[key] = _Queue(v6, now + timeout)
        if not more:
            if end < q.length or (q.last_in and end != q.length):
                return self._discard(key, q)
            q.last_in = True
            q.length = end
        else:
            if end & 7:
                if v6:  # RFC 8200: a parameter problem; nf_ct_frag6_queue drops the fragment
                    stats["ReasmFails"] += 1
                    return DROPPED
                end &= ~7
                payload = payload[:end - offset]
            if end > q.length:
                if q.last_in:
                    return self._discard(key, q)
                q.length = end
        if end == offset:
            return self._discard(key, q)
        frags = q.frags
        i = len(frags)
        while i and frags[i - 1][0] > offset:
            i -= 1
        prev_end = frags[i - 1][1] if i else 0
        nxt = frags[i][0] if i < len(frags) else None
        if i and frags[i - 1][0] == offset and frags[i - 1][1] == end:
            return DROPPED  # an exact duplicate: dropped, the queue stays
        if (i and offset < prev_end) or (nxt is not None and end > nxt):
            stats["ReasmOverlaps"] += 1
            return self._discard(key, q)
        frags.insert(i, (offset, end, payload))
        q.mem += len(frame)
        self.mem[ver] += len(frame)
        if size > q.max_size:
            q.max_size = size
        if df and size > q.max_df:
            q.max_df = size
        q.ecn |= _ECN_BIT[pkt.nw_tos & 3]
        if offset == 0:
            q.head = (bytes(frame), l3, fh, nh_at) if v6 else (bytes(frame), l3)
        if not (q.last_in and q.head is not None and sum(e - o for o, e, _ in frags) == q.length):
            return None
        del self.queues[key]
        self.mem[ver] -= q.mem
        hframe, hl3 = q.head[0], q.head[1]
        unfrag = q.head[2] - hl3 if v6 else (hframe[hl3] & 0x0F) << 2
        if unfrag + q.length > (IP_MAX + 40 if v6 else IP_MAX):
            stats["ReasmFails"] += 1
            return DROPPED
        if q.ecn & 1 and q.ecn & 14:  # not-ECT mixed with ECT/CE: the kernel drops it
            stats["ReasmFails"] += 1
            return DROPPED
        data = b"".join(p for _, _, p in frags)
        bounds = [(o, e - o) for o, e, _ in frags]
        stats["ReasmOKs"] += 1
        if v6:
            fh, nh_at = q.head[2], q.head[3]
            whole, layout = reassembled6(hframe, hl3, fh, nh_at, hframe[fh], data, bool(q.ecn & 8))
            return Reassembled(whole, codec.parse(whole), bounds, q.max_size, layout)
        tos = hframe[hl3 + 1] | (3 if q.ecn & 8 else 0)
        whole = reassembled(hframe, hl3, data, tos, q.max_df == q.max_size)
        return Reassembled(whole, codec.parse(whole), bounds, q.max_size)

    def _discard(self, key: tuple, q: _Queue) -> str:
        self._kill(key, q, timeout=False)
        return DROPPED

    def _kill(self, key: tuple, q: _Queue, timeout: bool) -> None:
        del self.queues[key]
        self.mem[6 if q.v6 else 4] -= q.mem
        stats = self.stats6 if q.v6 else self.stats
        stats["ReasmFails"] += 1
        if timeout:
            stats["ReasmTimeout"] += 1

    def expire(self, now: int) -> int:
        """Frees the queues whose time is up; returns how many."""
        dead = [(k, q) for k, q in self.queues.items() if q.expires <= now]
        for k, q in dead:
            self._kill(k, q, timeout=True)
        return len(dead)

    def clear(self) -> None:
        self.queues.clear()
        self.mem = {4: 0, 6: 0}
