"""Datapath: receive one frame on a bridge port, return the frames to transmit.

Theory of operation
-------------------
``Datapath.receive(bridge, in_port, frame, now)`` is the input function of
the emulated host (OVS's ``dp_netdev_input`` reads the same way):

1. parse the frame (``packet.codec.parse``); a malformed one is counted by its
   drop reason and dropped;
2. **fast path**: when the packet's exact header tuple has a cached decision
   whose connection is offloaded (``[OFFLOAD]``: the software flowtable, or
   ``[HW_OFFLOAD]``: the modelled eSwitch FDB), apply it: NAT rewrite and
   output, counters credited to the connection and to the OpenFlow rules the
   decision stands for, no OpenFlow lookup and no conntrack state machine.
   TCP packets with FIN or RST, fragments, IPv4 options and TTL <= 1 never
   take it (the hardware rule matches tcp_flags under the mask FIN|RST);
3. **slow path** (the upcall): flow key, ``ofproto.xlate.translate`` (which
   runs conntrack), rule counters, then the offload decision for every
   committed connection the packet touched; a decision that depended only on
   the exact header tuple and an offloaded, established connection is cached
   for the fast path (a cache is only a cache: it is dropped whenever the
   bridge's generation changes or the connection leaves offload).

Where cached decisions live: ``cache`` (cache key -> ``FastEntry``), and, once
``enable_batch`` ran, the batch table (``fastpath.BatchFastPath``): there a decision
the kernel can apply (one output, MAC/IPv4/port rewrites, IPv4 TCP/UDP without
VLAN) is only a table row plus a few per-entry-id array slots, no Python object
(~0.2 KB instead of ~1.9 KB a direction); ``cache`` keeps the others and those a
full table refused.  ``cached_items()`` lists both.

``tick(now)`` runs the timers: every second of switch time the offload GC
(30 s idle aging), conntrack expiry, flow idle/hard timeouts and MAC aging.
All counters live in ``stats`` and ``drops`` (``Counts``: Counters whose stores are dict's own) for the summaries and views.
"""

from __future__ import annotations

from collections import Counter

from ..conntrack.conn import IPS_HW_OFFLOAD, IPS_OFFLOAD, Conn
from ..conntrack.tcp import SYN_RECV, SYN_SENT, SYN_SENT2
from ..conntrack.tracker import CtVerdict
from ..flow.key import (
    CS_EST,
    CT_STATE,
    DL_DST,
    DL_SRC,
    DL_TYPE,
    IN_PORT,
    IPV6_DST,
    IPV6_SRC,
    N_FIELDS,
    NW_DST,
    NW_ECN,
    NW_FRAG,
    NW_PROTO,
    NW_SRC,
    NW_TOS,
    NW_TTL,
    TP_DST,
    TP_SRC,
    VLAN_TCI,
    extract,
)
from ..ofproto import xlate
from ..ofproto.bridge import OFBridge
from ..ofproto.megaflow import MegaflowCache
from ..ofproto.rule import credit_rules
from ..ofproto.xlate import _replay, predict_reply
from ..packet import rewrite
from ..packet.codec import parse
from ..packet.fragment import refragment
from ..packet.headers import ETH_TYPE_IP, ETH_TYPE_IPV6, TCP_FIN, TCP_RST, Packet
from ..packet.rewrite import apply

# Fields a cached decision may depend on: exactly the fields of the cache key.
_CACHE_FIELDS = frozenset((IN_PORT, DL_SRC, DL_DST, DL_TYPE, VLAN_TCI, NW_SRC, NW_DST, IPV6_SRC,
                           IPV6_DST, NW_PROTO, TP_SRC, TP_DST, CT_STATE))
_UNCACHEABLE = tuple(i for i in range(N_FIELDS) if i not in _CACHE_FIELDS)
# Header fields an output may have changed (what packet.rewrite.apply writes).
_REWRITABLE = (DL_SRC, DL_DST, NW_SRC, NW_DST, IPV6_SRC, IPV6_DST, NW_TOS, NW_ECN, NW_TTL, TP_SRC, TP_DST)
GC_INTERVAL_MS = 1000
PROTO_TCP = 6
_HANDSHAKE = frozenset((SYN_SENT, SYN_RECV, SYN_SENT2))  # TCP states before ESTABLISHED
_SYN_SENT, _SYN_RECV, _SYN_SENT2 = SYN_SENT, SYN_RECV, SYN_SENT2  # compiled: C integers (_note_peer)
_N_FIELDS, _CS_EST = N_FIELDS, CS_EST  # compiled: C integers (_cache_peer)
# The flow-key fields the per-packet methods read, by position: datapath.pxd declares these C
# integers, so ``key[_IN_PORT]`` is a list item read, not a subscript by a Python int.
(_IN_PORT, _DL_SRC, _DL_DST, _DL_TYPE, _VLAN_TCI, _NW_SRC, _NW_DST, _IPV6_SRC, _IPV6_DST, _NW_PROTO, _TP_SRC,
 _TP_DST, _NW_FRAG) = (IN_PORT, DL_SRC, DL_DST, DL_TYPE, VLAN_TCI, NW_SRC, NW_DST, IPV6_SRC, IPV6_DST, NW_PROTO,
                       TP_SRC, TP_DST, NW_FRAG)
# Every port's MTU (ports have no mtu_request here): what a reassembled datagram is cut for.
PORT_MTU = 1500
# fastpath.row_new, bound by enable_batch (fastpath loads numba: not before it is used).
_row_new = None


class Counts(Counter):
    """``stats`` and ``drops``: a Counter (a missing key reads 0) whose item stores are dict's
    own.  Counter defines ``__delitem__`` (a missing key is not an error), so its stores go
    through a Python-level slot (a ``__setitem__`` lookup per ``+=``); with dict's
    ``__delitem__`` back, the type's store slot is dict's C function.  Only ``del`` of a
    missing key differs (KeyError, as for a dict); nothing deletes from these counters."""

    __slots__ = ()
    __delitem__ = dict.__delitem__


class FastEntry:
    """A cached decision for one direction of one offloaded connection.

    It names its connection by id and finds it through the tracker on use (``conn``), so
    the cache holds no reference to the connection object: the offload manager can then
    move an idle offloaded connection into the tracker's compact tier (conntrack/cold.py
    freezes only what nothing else references), and the next use thaws it.
    """

    __slots__ = ("generation", "cid", "tracker", "reply", "outputs", "rules", "extra", "packets", "bytes",
                 "used", "created", "learns")

    def __init__(self, generation, conn, reply, outputs, rules, extra, now=0, tracker=None, learns=()):
        self.generation = generation
        self.cid = conn.id
        self.tracker = tracker
        self.reply = reply
        self.outputs = outputs  # [(ofport, new_key)] ; new_key is compared to the packet's key
        self.rules = rules
        self.extra = extra
        self.packets = 0
        self.bytes = 0
        self.used = None  # ms of the last hit, None: never
        self.created = now
        self.learns = learns  # (vlan, mac, ofport) NORMAL learned: each hit refreshes them

    @property
    def conn(self):
        """The connection (thawed from the compact tier if it was frozen); None once deleted."""
        return self.tracker.get(self.cid)


def _consults_uncacheable(wc) -> bool:
    """Whether the wildcards ``wc`` of a translation consulted a field beyond the cache key's."""
    for i in _UNCACHEABLE:
        if wc[i]:
            return True
    return False


def _batchable(conn) -> bool:
    """Whether ``conn``'s decisions may go to the batch table (the modelled eSwitch FDB): only
    while it is offloaded to hardware.  The table's hits are credited later, in bulk, and a
    software-offloaded connection's hit has effects that depend on each hit's time and on what
    came between (the manager's hardware insert retry, at most one a second, may take a slot a
    later packet frees), so its decisions are FastEntries, used one packet at a time (found by
    tests/integration/test_replay_loops_property.py)."""
    return conn is not None and bool(conn.status & IPS_HW_OFFLOAD)


class Datapath:
    """The packet path of one Switch (see module docstring)."""

    def __init__(self, switch) -> None:
        self.switch = switch
        # Decisions not held by the batch table (all of them while batch mode is off).
        self.cache: dict[tuple, FastEntry] = {}
        self.by_conn: dict[int, list[tuple]] = {}  # connection id -> cache keys of its decisions in cache
        self.batch = None  # the batched (Numba) fast path, once enable_batch() ran
        self.megaflows = MegaflowCache()  # recorded pipeline passes (the slow path's own cache)
        # connection id -> L2 fields of a TCP connection's reply during its handshake (_note_peer)
        self._peer_l2: dict[int, tuple] = {}
        # The last mask _cache_peer checked (_consults_uncacheable) and whether it may be cached: a
        # prediction's mask is its passes' shared, read-only list (Program.wc_after), one per shape.
        self._peer_wc = None
        self._peer_wc_ok = False
        # The same memo for _maybe_cache (a replayed translation's mask is its passes' shared list).
        self._tr_wc = None
        self._tr_wc_ok = False
        self._params_version = -1
        self._aging = 300_000
        self.stats: Counter = Counts()
        self.drops: Counter = Counts()
        self.next_tick = 0

    # ------------------------------------------------------------------ timers
    def tick(self, now: int) -> None:
        """Runs every timer due at ``now`` (call before each packet and on time warps)."""
        if now < self.next_tick:
            return
        self.next_tick = now - now % GC_INTERVAL_MS + GC_INTERVAL_MS
        self.sync_counters()  # hardware counters first: aging reads the last-used times
        sw = self.switch
        if sw.offload is not None:
            aged = sw.offload.gc(now)
            self.stats["offload_aged"] += len(aged)
        if sw.tracker is not None:
            gone = sw.tracker.sweep(now)
            self.stats["ct_expired"] += len(gone)
            sw.tracker.defrag.expire(now)
        aging_ms = int(sw.params.get("other_config:mac-aging-time")) * 1000
        for br in sw.bridges.values():
            expired = br.expire(now)
            self.stats["flows_expired"] += len(expired)
            br.age_macs(now, aging_ms)

    # ------------------------------------------------------------------ input
    def receive(self, bridge: OFBridge, in_port: int, frame: bytes, now: int,
                _kernel_miss: bool = False) -> list[tuple[int, bytes]]:
        """Processes one frame arriving on ``in_port`` of ``bridge`` at ``now`` (ms).

        ``_kernel_miss``: the batch kernel just looked the frame up in the bridge's table and
        found no current entry (``BatchFastPath.receive_batch``), so that lookup is not repeated.

        Returns:
            (ofport, frame) pairs to transmit, in order.
        """
        stats = self.stats
        stats["rx_packets"] += 1
        by_no = bridge.by_no
        port = by_no.get(in_port)
        if port is not None:
            port.rx_packets += 1
            port.rx_bytes += len(frame)
        pkt = parse(frame)
        if pkt.drop is not None:
            self.drops["malformed: " + pkt.drop] += 1
            if port is not None:
                port.rx_dropped += 1
            return []
        key = extract(pkt, in_port)
        if self.cache:
            out = self._fast(bridge, pkt, key, frame, now)
            if out is not None:
                return out
        elif self.batch is not None and self.batch.live:
            out = self._fast_table(bridge, pkt, key, frame, now, _kernel_miss)
            if out is not None:
                return out
        return self._slow(bridge, pkt, key, frame, now)

    def _mac_aging_ms(self) -> int:
        params = self.switch.params
        if params.version != self._params_version:
            self._params_version = params.version
            self._aging = int(params.get("other_config:mac-aging-time")) * 1000
        return self._aging

    def _cache_key(self, bridge: OFBridge, key: list[int]) -> tuple:
        return (bridge.name, key[_IN_PORT], key[_DL_SRC], key[_DL_DST], key[_DL_TYPE], key[_VLAN_TCI],
                key[_NW_SRC], key[_NW_DST], key[_IPV6_SRC], key[_IPV6_DST], key[_NW_PROTO], key[_TP_SRC], key[_TP_DST])

    def _fast(self, bridge, pkt, key, frame, now, kernel_miss=False):
        ck = self._cache_key(bridge, key)
        e = self.cache.get(ck)
        if e is None:
            if self.batch is not None and self.batch.live:
                return self._fast_table(bridge, pkt, key, frame, now, kernel_miss)
            return None
        conn = e.conn
        if conn is None or e.generation != bridge.generation or not (conn.status & IPS_OFFLOAD):
            self._uncache(ck)
            return None
        flags = pkt.tcp_flags
        if flags & (TCP_FIN | TCP_RST):
            # The flowtable sees the close first: it tears the offload down, then the
            # packet takes the slow path so conntrack follows the close (act_ct).
            self.switch.offload.sw_hit(conn, now, 0, e.reply, flags)
            self._uncache(ck)
            return None
        if pkt.nw_frag or pkt.ip_options or pkt.nw_ttl <= 1:
            return None  # not looked up in the flow table (act_ct); a SYN is (tcp_flags mask FIN|RST)
        n = len(frame)
        e.packets += 1
        e.bytes += n
        e.used = now
        hw = bool(conn.status & IPS_HW_OFFLOAD)
        off = self.switch.offload
        if hw:
            self.stats["fast_hw"] += 1
            off.hw_hit(conn, now, n, e.reply)
        else:
            self.stats["fast_sw"] += 1
            off.sw_hit(conn, now, n, e.reply)
        credit_rules(e.rules, 1, n, now)
        for vlan, mac, port in e.learns:  # as OVS's revalidators refresh them from the flow stats
            bridge.learn(vlan, mac, port, now)
        outputs = []
        for ofport, deltas in e.outputs:
            okey = key
            if deltas:
                okey = list(key)
                for i, v in deltas:
                    okey[i] = v
            outputs.append((ofport, okey))
        return self._emit(bridge, pkt, key, frame, outputs, e.extra)

    def _fast_table(self, bridge, pkt, key, frame, now, kernel_miss):
        """``_fast`` for a decision held by the batch table (``BatchFastPath``): same checks,
        counters and output as for a ``FastEntry``."""
        if key[_DL_TYPE] != 0x0800 or key[_VLAN_TCI] or (key[_NW_PROTO] != 6 and key[_NW_PROTO] != 17):
            return None
        b = self.batch
        t = b.tables.get(bridge.name)
        if t is None or t._nfree == t.capacity:  # (len(t) == 0)
            return None
        if t.generation != bridge.generation:
            t = b._table(bridge.name, bridge.generation)
        if kernel_miss and not t.nstale:
            return None
        found, e, cid1, meta = t.find_flow(not kernel_miss and t.live_current() != 0, key[_IN_PORT], key[_DL_SRC],
                                           key[_DL_DST], key[_NW_SRC], key[_NW_DST], key[_NW_PROTO], key[_TP_SRC],
                                           key[_TP_DST])
        tracker = self.switch.tracker
        if found != 1:
            if found == 2:  # a decision of an older generation: dropped at its first use
                tracker.get(cid1 - 1)
                b.remove(t, e)
            return None
        conn = tracker.get(cid1 - 1)
        if conn is None or not (conn.status & IPS_OFFLOAD):
            b.remove(t, e)
            return None
        reply = bool(meta & 1)
        flags = pkt.tcp_flags
        if flags & (TCP_FIN | TCP_RST):
            self.switch.offload.sw_hit(conn, now, 0, reply, flags)  # (its teardown may forget the entry)
            b.remove(t, e, cid1)
            return None
        if pkt.nw_frag or pkt.ip_options or pkt.nw_ttl <= 1:
            return None
        b._credit_one(t, e)  # the kernel's hits of this entry came first
        n = len(frame)
        t.fpk[e] += 1
        t.fby[e] += n
        t.fused1[e] = now + 1
        hw = bool(conn.status & IPS_HW_OFFLOAD)
        off = self.switch.offload
        if hw:
            self.stats["fast_hw"] += 1
            off.hw_hit(conn, now, n, reply)
        else:
            self.stats["fast_sw"] += 1
            off.sw_hit(conn, now, n, reply)
        _gen, rules, extra, learns = t.shapes[meta >> 1]
        credit_rules(rules, 1, n, now)
        if learns:
            bridge.learn(0, key[_DL_SRC], key[_IN_PORT], now)
        port, dl_src, dl_dst, nw_src, nw_dst, tp_src, tp_dst = _row_new(t.ent[e].tolist())
        okey = key
        if (dl_src != key[_DL_SRC] or dl_dst != key[_DL_DST] or nw_src != key[_NW_SRC] or nw_dst != key[_NW_DST]
                or tp_src != key[_TP_SRC] or tp_dst != key[_TP_DST]):
            okey = list(key)
            okey[_DL_SRC], okey[_DL_DST], okey[_NW_SRC], okey[_NW_DST], okey[_TP_SRC], okey[_TP_DST] = \
                dl_src, dl_dst, nw_src, nw_dst, tp_src, tp_dst
        return self._emit(bridge, pkt, key, frame, [(port, okey)], extra)

    def _emit(self, bridge, pkt, key, frame, outputs, extra, defrag=None):
        result = []
        by_no = bridge.by_no
        if extra is None and defrag is None:  # the loop below without ICMP rewrites or refragmenting
            for o in outputs:
                ofport, okey = o[0], o[1]
                data = frame if okey == key else apply(frame, pkt, key, okey)
                p = by_no.get(ofport)
                if p is not None:
                    p.tx_packets += 1
                    p.tx_bytes += len(data)
                # (bytes(x) of a bytes object is x itself, through a type call: skipped for one)
                result.append((ofport, data if type(data) is bytes else bytes(data)))
            self.stats["tx_packets"] += len(result)
            return result
        icmp_id, inner = extra if extra is not None else (None, None)
        for o in outputs:
            ofport, okey = o[0], o[1]
            if inner is not None:
                # An ICMP error about a NATed connection: outer and quoted headers both change.
                si, di = (IPV6_SRC, IPV6_DST) if pkt.ip_ver == 6 else (NW_SRC, NW_DST)
                src = okey[si] if okey[si] != key[si] else None
                dst = okey[di] if okey[di] != key[di] else None
                data = rewrite.nat_icmp_error(frame, pkt, src, dst, *inner)
            else:
                data = frame if okey == key else apply(frame, pkt, key, okey)
            if icmp_id is not None and icmp_id != pkt.icmp_id:
                data = rewrite.set_icmp_id(data, pkt, icmp_id)
            p = by_no.get(ofport)
            for piece in (data,) if defrag is None else self._refragment(data, pkt.l3, defrag):
                if p is not None:
                    p.tx_packets += 1
                    p.tx_bytes += len(piece)
                result.append((ofport, piece if type(piece) is bytes else bytes(piece)))
        self.stats["tx_packets"] += len(result)
        return result

    def _refragment(self, data, l3: int, r) -> list:
        """A reassembled datagram on its way out, as the kernel datapath's ``do_output``: whole
        when it fits in the largest fragment received (``mru``), else cut along the arrival
        boundaries when ``mru`` fits the port MTU, else dropped."""
        if len(data) - l3 <= r.mru:
            return [data]
        d = self.switch.tracker.defrag
        mib = d.stats6 if r.v6 else d.stats
        if r.mru <= PORT_MTU:
            pieces = refragment(data, l3, r.bounds, r.v6)
            mib["FragOKs"] += 1
            mib["FragCreates"] += len(pieces)
            return pieces
        mib["FragFails"] += 1
        self.drops["reassembled datagram larger than the port MTU"] += 1
        return []

    def _slow(self, bridge, pkt, key, frame, now):
        sw = self.switch
        self.stats["slow_path"] += 1
        cache = self.megaflows
        if cache is not None:  # xlate.translate through the cache, called in C
            tr = _replay(bridge, pkt, key, now, sw.tracker, self._mac_aging_ms(), None, None, None, cache)
        else:
            tr = xlate.translate(bridge, pkt, key, now, tracker=sw.tracker, mac_aging_ms=self._mac_aging_ms())
        n = len(frame)
        d = tr.defrag
        if d is None:
            credit_rules(tr.rules, 1, n, now)
        else:  # the rules after a reassembly (the first d[3] ran before it) see the datagram
            credit_rules(tr.rules[:d[3]], 1, n, now)
            credit_rules(tr.rules[d[3]:], 1, len(d[0].frame), now)
        extra = tr.outputs[0][2] if tr.outputs else None
        if d is None:
            out = self._emit(bridge, pkt, key, frame, tr.outputs, extra)
        else:  # a ct() completed an IPv4 datagram: outputs after it carry it, refragmented
            r, dkey, n_pre, _ = d
            out = self._emit(bridge, pkt, key, frame, tr.outputs[:n_pre], extra) if n_pre else []
            out += self._emit(bridge, r.pkt, dkey, r.frame, tr.outputs[n_pre:], extra, r)
        if not out:
            if tr.stolen:
                self.stats["frag_queued"] += 1  # kept for reassembly: not a drop
            else:
                self.drops[tr.drop or "dropped"] += 1
        off = sw.offload
        if off is not None and tr.verdicts:
            peer = None
            # The connections considered (a packet has one or two ct() verdicts): the first, then a
            # list of the others only when there are others (no list per packet).
            first = None
            seen = None
            if type(pkt) is Packet:  # compiled: a struct member read
                hp = pkt
                closing = hp.tcp_flags & (TCP_FIN | TCP_RST)
            else:  # a stand-in (tests)
                closing = pkt.tcp_flags & (TCP_FIN | TCP_RST)
            for v in tr.verdicts:
                if type(v) is CtVerdict:  # compiled: struct member reads (the verdict, its connection)
                    cv = v
                    c = cv.conn
                else:  # a stand-in (tests)
                    c = v.conn
                if c is None or c is first:
                    continue
                if first is None:
                    first = c
                elif seen is None:
                    seen = [c]
                else:
                    dup = False
                    for x in seen:  # (a loop, not any(): Cython cannot compile that genexpr in a cpdef method)
                        if x is c:
                            dup = True
                            break
                    if dup:
                        continue
                    seen.append(c)
                if closing:
                    # A closing TCP connection is never (re)offloaded; keep the teardown reason.
                    if c.status & IPS_OFFLOAD:
                        off.teardown(c, "torn down by RST" if closing & TCP_RST else "torn down by FIN", now)
                else:
                    if isinstance(c, Conn):  # compiled: struct member reads
                        cc = c
                        was = cc.status & IPS_OFFLOAD
                        tcp = cc.proto == PROTO_TCP
                    else:  # a stand-in (tests)
                        was = c.status & IPS_OFFLOAD
                        tcp = c.proto == PROTO_TCP
                    om = off  # (typed: a C call)
                    om.consider(c, now, True, pkt)
                    if tcp:
                        peer = self._note_peer(c, cv.reply if type(v) is CtVerdict else v.reply, key, was) or peer
            self._maybe_cache(bridge, key, tr, now)
            if peer is not None:
                self._cache_peer(bridge, peer[0], peer[1], now)
        return out

    def _note_peer(self, c, reply: bool, key: list[int], was: int):
        """Keeps the L2 part of the key of TCP connection ``c``'s reply during its handshake (the
        SYN-ACK's; only the reply's: a SYN flood keeps nothing); when this packet, of the original
        direction, offloaded ``c``, returns (c, that L2) for ``_cache_peer``, else None."""
        peers = self._peer_l2
        state = c.state
        if state == _SYN_SENT or state == _SYN_RECV or state == _SYN_SENT2:  # (in _HANDSHAKE)
            if reply:
                peers[c.id] = (key[_IN_PORT], key[_DL_SRC], key[_DL_DST], key[_VLAN_TCI])
            return None
        l2 = peers.pop(c.id, None) if peers else None
        if l2 is None or reply or was or not c.status & IPS_OFFLOAD:
            return None
        return c, l2

    def _cache_peer(self, bridge, conn, l2: tuple, now: int) -> None:
        """Caches the reply direction of ``conn``, just offloaded by a packet of its original one.

        The conntrack offload puts both directions in the hardware at once, and the datapath
        flows a reply needs were installed by the SYN-ACK, so the next reply is handled in
        hardware, not in software.  The decision is predicted from the recorded passes
        (``xlate.predict``) for a key made of the SYN-ACK's L2 fields (``l2``: in_port, dl_src,
        dl_dst, vlan_tci) and the reply tuple; it is cached only under
        the rules of ``_maybe_cache`` (nothing beyond those fields consulted, an established
        verdict, one ct() connection).  No decision of that key exists: a connection has none
        while it is not offloaded, and the tuple was no other live connection's.
        """
        tup = conn.reply
        k = [0] * _N_FIELDS
        k[_IN_PORT], k[_DL_SRC], k[_DL_DST], k[_VLAN_TCI] = l2
        if conn.ip_ver == 4:
            k[_DL_TYPE] = ETH_TYPE_IP
            k[_NW_SRC], k[_NW_DST] = tup[0], tup[1]
        else:
            k[_DL_TYPE] = ETH_TYPE_IPV6
            k[_IPV6_SRC], k[_IPV6_DST] = tup[0], tup[1]
        k[_NW_PROTO] = conn.proto
        k[_TP_SRC], k[_TP_DST] = tup[2], tup[3]
        tr = predict_reply(bridge, k, now, self.megaflows, self.switch.tracker, conn)
        if tr is None or tr.stateful or tr.controller or len(tr.outputs) != 1:
            return
        wc = tr.wc
        if wc is not self._peer_wc:  # (the memo holds the list: no other list can take its identity)
            self._peer_wc_ok = not _consults_uncacheable(wc)
            self._peer_wc = wc
        if not self._peer_wc_ok:
            return
        for v in tr.verdicts:
            st = v.state
            if v.conn is not conn or not (st & _CS_EST) or st & 0x15 & ~_CS_EST:
                return
        self._cache(bridge, k, self._cache_key(bridge, k), conn, True, tr, now)

    def _maybe_cache(self, bridge, key, tr, now) -> None:
        if key[_NW_FRAG]:
            return  # fragments never take the fast path
        last = tr.verdicts[-1].conn
        if last is None or not (last.status & IPS_OFFLOAD) or tr.stateful or tr.controller or not tr.outputs:
            return
        conn = None
        reply = False
        for v in tr.verdicts:
            c = v.conn
            st = v.state
            if c is None or not (st & CS_EST) or st & 0x15 & ~CS_EST:
                return
            if conn is not None and c is not conn:
                return
            conn, reply = c, v.reply
        if conn is None or not (conn.status & IPS_OFFLOAD):
            return
        if reply and getattr(conn.offload, "uni", False):
            return  # a one-way offload (UDP before ASSURED): its replies go to conntrack
        wc = tr.wc
        if wc is not self._tr_wc:  # (the memo holds the list: no other list can take its identity)
            self._tr_wc_ok = not _consults_uncacheable(wc)
            self._tr_wc = wc
        if not self._tr_wc_ok:
            return
        self._cache(bridge, key, self._cache_key(bridge, key), conn, reply, tr, now)

    def _cache(self, bridge, key, ck, conn, reply, tr, now) -> None:
        """Caches the decision ``tr`` for packets of flow ``key`` (cache key ``ck``), direction
        ``reply`` of ``conn``: in the batch table when it can hold it (``_batchable``), else as a
        FastEntry."""
        cache = self.cache
        if cache and ck in cache:
            self._uncache(ck)
        touts = tr.outputs
        out0 = touts[0]
        extra = out0[2]
        batch = self.batch
        mirror = batch is not None and len(touts) == 1 and _batchable(conn)
        # (the table reads the rules and learned MACs, it keeps its own copy of a new shape)
        if mirror and batch.add_output(ck, bridge.generation, conn.id, reply, out0[0], key, out0[1], tr.rules,
                                       extra, now, tr.learns) >= 0:
            return  # the batch table holds it (and dropped any older decision of the same key)
        outputs = []
        for o in touts:
            okey = o[1]
            deltas = []
            if okey != key:
                for i in _REWRITABLE:
                    v = okey[i]
                    if v != key[i]:
                        deltas.append((i, v))
            outputs.append((o[0], deltas))
        # (the translation's own rules list: nothing changes it once translated)
        learns = tr.learns
        cid = conn.id
        entry = FastEntry(bridge.generation, conn, reply, outputs, tr.rules, extra, now, self.switch.tracker,
                          () if not learns else (learns[0],) if len(learns) == 1 else tuple(dict.fromkeys(learns)))
        if batch is not None and not mirror:
            batch.discard(ck)  # what add() does with a decision it cannot mirror
        cache[ck] = entry
        cks = self.by_conn.get(cid)
        if cks is None:
            self.by_conn[cid] = [ck]
        else:
            cks.append(ck)

    def _uncache(self, ck: tuple) -> None:
        e = self.cache.pop(ck, None)
        if e is not None:
            cks = self.by_conn.get(e.cid)
            if cks is not None and ck in cks:
                cks.remove(ck)
                if not cks:
                    del self.by_conn[e.cid]
        elif self.batch is not None:
            self.batch.discard(ck)

    def forget_conn(self, conn) -> None:
        """Drops cached decisions of ``conn`` (it left offload or was deleted)."""
        cid = conn.id
        if self._peer_l2:
            self._peer_l2.pop(cid, None)
        if self.by_conn:
            for ck in self.by_conn.pop(cid, ()):
                e = self.cache.get(ck)
                if e is not None and e.cid == cid:
                    del self.cache[ck]
        b = self.batch
        if b is not None and b.live:
            b.forget(cid)

    def cached_items(self):
        """(cache key, FastEntry) of every cached decision: the dict's, then the batch table's
        (snapshots built from their rows: reading them changes nothing)."""
        yield from list(self.cache.items())
        if self.batch is not None and self.batch.live:
            yield from self.batch.items()

    def n_cached(self) -> int:
        """How many decisions are cached (dict and batch table)."""
        return len(self.cache) + (len(self.batch) if self.batch is not None else 0)

    def sync_counters(self) -> None:
        """Credits the batched fast path's deferred hits (views, saves and timers call this)."""
        if self.batch is not None:
            self.batch.sync()

    def flush_cache(self) -> None:
        """Drops every cached decision (flow table changed, conntrack flushed...)."""
        self.sync_counters()
        self.megaflows.clear()
        self.cache.clear()
        self.by_conn.clear()
        if self.batch is not None:
            self.batch.clear()

    def enable_batch(self, capacity: int = 1 << 18) -> bool:
        """Turns on the batched Numba fast path (replay); False when it is not available."""
        if self.batch is not None:
            return True
        global _row_new
        try:
            from .fastpath import BatchFastPath, row_new
        except ImportError:
            return False
        _row_new = row_new
        self.batch = b = BatchFastPath(self, capacity)
        for ck, e in list(self.cache.items()):
            if _batchable(e.conn) and b.add(ck, e) >= 0:  # moved to the table with its counters
                del self.cache[ck]
                cks = self.by_conn[e.cid]
                cks.remove(ck)
                if not cks:
                    del self.by_conn[e.cid]
        return True

    def to_state(self) -> dict:
        self.sync_counters()
        return {"stats": dict(self.stats), "drops": dict(self.drops), "next_tick": self.next_tick}

    def load_state(self, state: dict) -> None:
        self.stats = Counts(state.get("stats") or {})
        self.drops = Counts(state.get("drops") or {})
        self.next_tick = int(state.get("next_tick", 0))
