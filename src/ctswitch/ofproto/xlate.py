"""xlate: translate one packet through a bridge's OpenFlow tables into outputs.

Theory of operation
-------------------
``translate`` walks the tables the way ovs-vswitchd's xlate does, starting at
table 0 with the packet's flow key:

* the winning rule of a table (``Classifier.lookup``) runs its actions in
  order; a table miss drops (no controller is ever attached here);
* header actions (``set_field``, ``mod_*``, ``load``, ``move``, ``dec_ttl``)
  change the *key*; outputs snapshot the key, and the datapath writes the
  differences into the frame, as OVS commits "set" datapath actions;
* ``ct(...)`` asks the connection tracker (``switch.tracker.process``), applies
  its NAT result to the key, and, with ``table=N``, forks: a copy with the
  ct_* fields set is queued to resume at table N after the current action
  list ends; the current list continues with the ct fields cleared
  (OVS ``compose_conntrack_action``: "sets the packet to an untracked state");
* ``resubmit`` re-searches a table (depth limit 64, as OVS), ``goto_table``
  continues in a later table, ``NORMAL`` is the L2 learning switch.

The result is a ``Translation``: outputs (port + key snapshot), the rules
that matched (for counters), the ct verdicts (for the offload decision), the
wildcard mask of every field consulted (to know whether the decision may be
cached), a drop reason, and optional trace lines for ``ofproto/trace``.

``Tracer`` mode (``trace=True`` with ``ct_next``) does not touch the
tracker: like OVS's ofproto/trace it resumes each ct() fork with the given
ct_state (default ``trk,new``), so tracing never changes the switch.
"""

from __future__ import annotations

from collections.abc import Callable

from ..conntrack.tracker import CtVerdict
from ..flow import actions as A
from ..flow.key import (
    CS_NEW,
    CS_TRK,
    CT_IPV6_DST,
    CT_IPV6_SRC,
    CT_LABEL,
    CT_MARK,
    CT_NW_DST,
    CT_NW_PROTO,
    CT_NW_SRC,
    CT_STATE,
    CT_TP_DST,
    CT_TP_SRC,
    CT_ZONE,
    DL_DST,
    DL_SRC,
    DL_TYPE,
    EXACT,
    IN_PORT,
    IPV6_DST,
    IPV6_SRC,
    N_FIELDS,
    NW_DST,
    NW_ECN,
    NW_FRAG,
    NW_SRC,
    NW_TOS,
    NW_TTL,
    TCP_FLAGS,
    TP_DST,
    TP_SRC,
    VLAN_TCI,
    extract,
)
from ..packet.headers import ETH_TYPE_IP, ETH_TYPE_IPV6, Packet
from .bridge import OFBridge

MAX_RESUBMIT_DEPTH = 64
MAX_RECIRCULATIONS = 32

CT_FIELDS = (CT_STATE, CT_ZONE, CT_MARK, CT_LABEL, CT_NW_SRC, CT_NW_DST, CT_IPV6_SRC, CT_IPV6_DST,
             CT_NW_PROTO, CT_TP_SRC, CT_TP_DST)
assert CT_FIELDS == tuple(range(CT_STATE, CT_TP_DST + 1))  # _ct_fork writes them in a row (_write_ct)


class Translation:
    """What one packet's pass through the pipeline decided.

    Attributes:
        outputs: (ofport, key snapshot, extra) per transmitted copy, in order; ``extra`` is None
            or (new ICMP echo id or None, new quoted tuple of an ICMP error or None).
        rules: every rule whose actions ran (a rule twice if it ran twice).
        verdicts: CtVerdicts returned by the tracker, in order.
        wc: per-field OR of every mask consulted (un-wildcarding; see classifier).  Read-only:
            a translation replayed from the megaflow cache shares it with the others that
            replayed the same passes (``Program.wc_after``).
        drop: None, or why the packet (or its last fork) was dropped.
        stateful: True when an action's effect depends on more than the key (dec_ttl on
            a varying TTL, NORMAL flooding, controller): the decision must not be cached.
        trace: human-readable lines (ofproto/trace) when tracing, else None.
        controller: packets sent to CONTROLLER (counted, dropped).
        stolen: a ct() queued this IPv4 fragment for reassembly (not a drop).
        defrag: (Reassembled, its key, index of the first output carrying it, index of the first
            rule that saw it) when a ct() completed a datagram with this fragment.
    """

    __slots__ = ("outputs", "rules", "verdicts", "wc", "drop", "stateful", "trace", "controller",
                 "recirc", "dp_actions", "stolen", "defrag", "learns")

    def __init__(self, trace: list | None = None) -> None:
        # A plain slotted class, not a dataclass: one is built per slow-path packet.
        self.outputs: list = []
        self.rules: list = []
        self.verdicts: list = []
        self.wc: list[int] = [0] * N_FIELDS
        self.drop: str | None = None
        self.stateful = False
        self.trace = trace
        self.controller = 0
        self.recirc = 0
        # per pass, datapath action strings (tracing only: None when not tracing)
        self.dp_actions: list | None = None if trace is None else []
        self.stolen = False  # a ct() kept this IP fragment for reassembly: the packet stops there
        # (Reassembled, its flow key, outputs before it, rules before it) when a ct() completed
        # a datagram: later outputs carry the reassembled packet (refragmented) and later rules
        # count its length.
        self.defrag: tuple | None = None
        # (vlan, mac, ofport) NORMAL learned: a cached decision refreshes them at its hits, as
        # OVS's revalidators do from the datapath flows' statistics (xlate_push_stats, XC_NORMAL).
        self.learns: list = []


class XlateContext:
    """Mutable state of one translation (one packet, all its forks)."""

    __slots__ = ("bridge", "pkt", "now", "tracker", "mac_aging_ms", "tr", "queue", "depth", "tdepth",
                 "icmp_id", "icmp_inner", "ct_next", "field_index", "trace_on", "orig_in_port", "halted", "formatter",
                 "rec", "rec_ok", "after_ct", "pwc", "prules", "wcs")

    def __init__(self, bridge: OFBridge, pkt, now: int, tracker, mac_aging_ms: int,
                 trace: bool, ct_next: list[int] | None, field_index: Callable[[str], tuple[int, int, int]]):
        self.bridge = bridge
        self.pkt = pkt
        self.now = now
        self.tracker = tracker
        self.mac_aging_ms = mac_aging_ms
        self.tr = Translation([] if trace else None)
        self.queue: list[tuple] = []  # (key, table, trace: default ct_state?, trace: a nat fork?)
        self.depth = 0
        self.tdepth = 0  # trace nesting: resubmits that are not the last action of their list
        self.icmp_id: int | None = None
        self.icmp_inner: tuple | None = None  # ICMP error under NAT: the new quoted tuple
        self.ct_next = ct_next
        self.field_index = field_index
        self.trace_on = trace
        self.orig_in_port = 0
        self.formatter = None
        self.halted = False  # a ct() dropped the packet (kernel semantics): stop everything
        # Recording of the current pass for the megaflow cache (ofproto/megaflow.py).
        self.rec: list | None = None  # ops of the pass, or None when not recording
        self.rec_ok = False  # False once the pass did something a cached program cannot replay
        self.after_ct = False  # a ct() ran in this pass: later lookups depend on its result
        self.pwc: list[int] = self.tr.wc  # wildcard mask of the current pass
        self.prules: list | None = None  # rules of the current pass (while recording)
        self.wcs = False  # tr.wc is a megaflow program's shared list (or None): copy it to change it


def translate(bridge: OFBridge, pkt, key: list[int], now: int, *, tracker=None,
              mac_aging_ms: int = 300_000, trace: bool = False, ct_next: list[int] | None = None,
              field_index: Callable[[str], tuple[int, int, int]] | None = None,
              formatter=None, cache=None) -> Translation:
    """Translates one packet (parsed ``pkt`` with flow ``key``) through ``bridge``.

    Args:
        bridge: the bridge whose tables apply.
        pkt: the parsed packet (conntrack reads TCP details from it).
        key: the packet's flow key; not modified (work happens on copies).
        now: switch time, ms.
        tracker: the connection tracker (None: ct() marks the packet +trk+inv).
        mac_aging_ms: MAC learning aging for NORMAL.
        trace: collect ofproto/trace lines.
        ct_next: in trace mode, the ct_state each successive ct() fork resumes with.
        field_index: maps a field name to (key index, width) for set_field/load/move.
        formatter: object with ``rule(rule) -> str`` and ``actions(list) -> str`` used for trace lines.
        cache: a ``megaflow.MegaflowCache``: passes whose decision was recorded before are
            replayed from it (conntrack still runs for every ct()); new ones are recorded.
    """
    if trace:
        cache = None
    elif cache is not None:
        return _replay(bridge, pkt, key, now, tracker, mac_aging_ms, ct_next, field_index, formatter, cache)
    ctx = _context(bridge, pkt, now, tracker, mac_aging_ms, trace, ct_next,
                   field_index or _default_field_index, cache is not None)
    ctx.orig_in_port = key[IN_PORT]
    ctx.formatter = formatter
    return _translate(ctx, list(key), trace, formatter, cache)


def _replay(bridge: OFBridge, pkt, key: list[int], now: int, tracker, mac_aging_ms: int, ct_next, field_index,
            formatter, cache) -> Translation:
    """``translate`` through a megaflow cache, untraced: while every pass is recorded and its ops
    are outputs, MAC learning and ct() of a packet that is no fragment, with the tracker's
    CtVerdicts, the passes are replayed here, with the state of ``_translate`` and ``_exec`` in
    locals (no context, no queue of tuples: almost every slow-path packet).  At anything else (a
    pass not recorded, another op, no tracker, a fragment, a stand-in verdict) the context is
    built with the state so far and the general code goes on from there: the same translation,
    the same calls in the same order."""
    tr = _blank(False, True)
    outputs = tr.outputs
    rules = tr.rules
    verdicts = tr.verdicts
    learns = tr.learns
    k = list(key)
    table = 0
    # The queue of recirculations: its head in qk/qt/qa (key, table, ct action), the rest in ``more``.
    qk = None
    qt = 0
    qa = None
    more = None
    icmp_id = None
    icmp_inner = None
    while True:
        prog = cache.lookup(bridge, table, k)
        if prog is None:
            ctx = _resume(bridge, pkt, key, now, tracker, mac_aging_ms, ct_next, field_index, formatter, tr,
                          qk, qt, qa, more, icmp_id, icmp_inner)
            _record_pass(ctx, k, table, formatter, cache)
            return _drain(ctx, formatter, cache)
        tr.wc = prog.wc_after(tr.wc)
        rules.extend(prog.rules)
        ops = prog.ops
        last = len(ops) - 1
        for j in range(last + 1):
            op = ops[j]
            kind = op[0]
            final = j == last  # nothing reads the key after the pass's last op (see _exec)
            if kind == _K_OUT:
                outputs.append((op[1], k if final else list(k), None))
                continue
            if kind == _K_LEARN:
                vlan = k[_VLAN_TCI] & 0x0FFF
                mac = k[_DL_SRC]
                port = k[_IN_PORT]
                if type(bridge) is OFBridge:  # compiled: a C call of learn
                    ob = bridge
                    ob.learn(vlan, mac, port, now)
                else:  # a stand-in (tests)
                    bridge.learn(vlan, mac, port, now)
                learns.append((vlan, mac, port))
                continue
            if kind == _K_CT and tracker is not None:
                if type(pkt) is Packet:  # compiled: a struct member read
                    hp = pkt
                    frag = hp.nw_frag
                else:  # a stand-in (tests)
                    frag = pkt.nw_frag
                if not frag:
                    act = op[1]
                    zone = op[2]
                    verdict = tracker.process(pkt, k, zone, act, now)
                    verdicts.append(verdict)
                    if type(verdict) is CtVerdict:  # _ct_verdict, with the queue and ICMP rewrites in locals
                        cv = verdict
                        if cv.drop:
                            tr.drop = cv.drop
                            outputs.clear()  # the kernel drops the packet: nothing after this ct()
                            return _finish(tr, icmp_id, icmp_inner)
                        _nat_key(k, cv)
                        if cv.icmp_id is not None:
                            icmp_id = cv.icmp_id
                        if cv.icmp_inner is not None:
                            icmp_inner = cv.icmp_inner
                        ctable = act.table
                        if ctable is not None:
                            rkey = k if final else list(k)
                            _ct_fields(rkey, cv.state, zone, cv)
                            if qk is None:
                                qk = rkey
                                qt = ctable
                                qa = act
                            else:
                                if more is None:
                                    more = []
                                more.append((rkey, ctable, act))
                        if not final:  # this copy goes on untracked
                            _write_ct(k, CT_STATE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
                        continue
                    # a stand-in verdict (tests): the general code from its answer on
                    ctx = _resume(bridge, pkt, key, now, tracker, mac_aging_ms, ct_next, field_index, formatter,
                                  tr, qk, qt, qa, more, icmp_id, icmp_inner)
                    _ct_verdict(ctx, k, act, zone, verdict, final)
                    _exec(ctx, k, prog, j + 1)
                    return _drain(ctx, formatter, cache)
            # anything else: the general code from this op on
            ctx = _resume(bridge, pkt, key, now, tracker, mac_aging_ms, ct_next, field_index, formatter, tr,
                          qk, qt, qa, more, icmp_id, icmp_inner)
            _exec(ctx, k, prog, j)
            return _drain(ctx, formatter, cache)
        if qk is None:
            break
        tr.recirc += 1
        if tr.recirc > MAX_RECIRCULATIONS:
            tr.drop = "too many recirculations"
            break
        k = qk
        table = qt
        if more:
            qk, qt, qa = more.pop(0)
        else:
            qk = None
            qa = None
    return _finish(tr, icmp_id, icmp_inner)


def _finish(tr: Translation, icmp_id, icmp_inner) -> Translation:
    """The end of ``_translate``: the ICMP rewrites on every output, the drop reason of no output."""
    if icmp_id is not None or icmp_inner is not None:
        extra = (icmp_id, icmp_inner)
        tr.outputs = [(p, kk, extra) for p, kk, _ in tr.outputs]
    if not tr.outputs and tr.drop is None:
        tr.drop = "no output action"
    return tr


def _resume(bridge: OFBridge, pkt, key: list[int], now: int, tracker, mac_aging_ms: int, ct_next, field_index,
            formatter, tr: Translation, qk, qt, qa, more, icmp_id, icmp_inner) -> XlateContext:
    """The context ``translate`` would have at this point of ``_replay``: its translation ``tr``,
    the queue of recirculations (``qk``... and ``more``) and the ICMP rewrites so far."""
    ctx = _context(bridge, pkt, now, tracker, mac_aging_ms, False, ct_next, field_index or _default_field_index,
                   True)
    ctx.orig_in_port = key[IN_PORT]
    ctx.formatter = formatter
    ctx.tr = tr
    if qk is not None:
        queue = ctx.queue
        queue.append((qk, qt, False, qa.nat is not None))
        if more is not None:
            for rkey, table, act in more:
                queue.append((rkey, table, False, act.nat is not None))
    ctx.icmp_id = icmp_id
    ctx.icmp_inner = icmp_inner
    return ctx


def _new_translation(outputs: list, rules: list, verdicts: list, wc, recirc: int, learns: list) -> Translation:
    """A ``Translation`` of these fields, the others as its constructor leaves them (untraced),
    built field by field (no argument parsing of a constructor call per packet)."""
    tr = Translation.__new__(Translation)
    tr.outputs = outputs
    tr.rules = rules
    tr.verdicts = verdicts
    tr.wc = wc
    tr.drop = None
    tr.stateful = False
    tr.trace = None
    tr.controller = 0
    tr.recirc = recirc
    tr.dp_actions = None
    tr.stolen = False
    tr.defrag = None
    tr.learns = learns
    return tr


def _blank(trace: bool, cached: bool) -> Translation:
    """``Translation(...)``, empty; ``cached``: its mask starts unset (see ``_context``)."""
    tr = _new_translation([], [], [], None if cached else [0] * N_FIELDS, 0, [])
    if trace:
        tr.trace = []
        tr.dp_actions = []
    return tr


def _context(bridge: OFBridge, pkt, now: int, tracker, mac_aging_ms: int, trace: bool,
             ct_next: list[int] | None, field_index, cached: bool) -> XlateContext:
    """``XlateContext(...)`` with its translation, built field by field (no argument parsing of
    two constructors per packet).  ``cached``: the passes go through a megaflow cache, so the
    translation's mask starts unset and shared (``wcs``; see ``_run_pass``)."""
    tr = _blank(trace, cached)
    ctx = XlateContext.__new__(XlateContext)
    ctx.bridge = bridge
    ctx.pkt = pkt
    ctx.now = now
    ctx.tracker = tracker
    ctx.mac_aging_ms = mac_aging_ms
    ctx.tr = tr
    ctx.queue = []
    ctx.depth = 0
    ctx.tdepth = 0
    ctx.icmp_id = None
    ctx.icmp_inner = None
    ctx.ct_next = ct_next
    ctx.field_index = field_index
    ctx.trace_on = trace
    ctx.orig_in_port = 0
    ctx.formatter = None
    ctx.halted = False
    ctx.rec = None
    ctx.rec_ok = False
    ctx.after_ct = False
    ctx.pwc = tr.wc
    ctx.prules = None
    ctx.wcs = cached
    return ctx


def _translate(ctx: XlateContext, k: list[int], trace: bool, formatter, cache) -> Translation:
    """``translate`` from its context on: the first pass, then the recirculations queued."""
    tr = ctx.tr
    if trace:
        cache = None
        tr.dp_actions.append([])
        start = list(k)
    _run_pass(ctx, k, 0, formatter, cache)
    if trace:
        _end_pass(ctx, k, start, 0)
    return _drain(ctx, formatter, cache)


def _drain(ctx: XlateContext, formatter, cache) -> Translation:
    """``_translate`` after its first pass: the recirculations queued, then the translation's end."""
    tr = ctx.tr
    queue = ctx.queue
    trace = ctx.trace_on
    while queue and not ctx.halted:
        tr.recirc += 1
        if tr.recirc > MAX_RECIRCULATIONS:
            tr.drop = "too many recirculations"
            break
        rkey, table, default_state, nat_fork = queue[0]
        del queue[0]
        if tr.trace is not None:
            state = ("default ct_state=trk|new (use --ct-next to customize)" if default_state
                     else f"ct_state={_ct_state_text(rkey[CT_STATE])}")
            tr.trace += ["", "=" * 79, f"recirc(0x{tr.recirc:x}) - resume conntrack with {state}"]
            if nat_fork:  # ofproto_trace_recirc_node: the trace cannot NAT, and says so
                tr.trace += ["Replacing src/dst IP/ports to simulate NAT:", " Initial flow: ", " Modified flow: "]
            tr.trace += ["=" * 79, ""]
            flow = getattr(formatter, "flow", None)
            if flow is not None:  # ofproto_trace_recirc_node: the resumed flow
                tr.trace += [f"Flow: {flow(rkey, tr.recirc)}", ""]
            tr.trace.append(f'bridge("{ctx.bridge.name}")')
            tr.trace.append("-" * (len(ctx.bridge.name) + 10))
            tr.trace.append("    thaw")
            tr.trace.append(f"        Resuming from table {table}")
        if trace:
            tr.dp_actions.append([])
            start = list(rkey)
        _run_pass(ctx, rkey, table, formatter, cache)
        if trace:
            _end_pass(ctx, rkey, start, tr.recirc)
    return _finish(tr, ctx.icmp_id, ctx.icmp_inner)


def _run_pass(ctx: XlateContext, key: list[int], table: int, formatter, cache) -> None:
    """One pass (table ``table`` on, until the actions end): replayed from the megaflow cache
    when a recorded decision covers ``key``, else translated and, if replayable, recorded."""
    if cache is None:
        _run_table(ctx, key, table, formatter)
        return
    tr = ctx.tr
    prog = cache.lookup(ctx.bridge, table, key)
    if prog is not None:
        if ctx.wcs:  # the mask is shared (or unset): the program's list for it
            tr.wc = prog.wc_after(tr.wc)
        else:
            twc = tr.wc
            for i, m in prog.wc:
                x = twc[i]
                twc[i] = m if x == 0 else x | m
        rules = tr.rules
        rules.extend(prog.rules)
        _exec(ctx, key, prog, 0)
        return
    _record_pass(ctx, key, table, formatter, cache)


def _record_pass(ctx: XlateContext, key: list[int], table: int, formatter, cache) -> None:
    """``_run_pass`` for a pass the cache does not hold: translated and, if replayable, recorded."""
    tr = ctx.tr
    start = list(key)
    ctx.rec = []
    ctx.rec_ok = True
    ctx.after_ct = False
    ctx.pwc = [0] * N_FIELDS
    ctx.prules = []
    _run_table(ctx, key, table, formatter)
    wc = ctx.pwc
    twc = tr.wc
    if ctx.wcs:  # this translation's own mask from now on
        twc = tr.wc = [0] * N_FIELDS if twc is None else list(twc)
        ctx.wcs = False
    for i in range(N_FIELDS):
        if wc[i]:
            twc[i] |= wc[i]
    if ctx.rec_ok and not ctx.halted:
        cache.insert(ctx.bridge, table, start, wc, ctx.rec, ctx.prules)
    ctx.rec = None
    ctx.pwc = twc


def _exec(ctx: XlateContext, key: list[int], prog, start: int = 0) -> None:
    """Replays a recorded pass's header changes, ct() calls and outputs from its op ``start`` on
    (its rules are listed by the caller: ``_run_pass``, or ``_replay``, which did the ops before)."""
    tr = ctx.tr
    ops = prog.ops
    last = len(ops) - 1
    for j in range(start, last + 1):
        if ctx.halted:
            return
        op = ops[j]
        kind = op[0]
        # ``key`` is this translation's own (translate's copy or a queued fork) and nothing
        # reads it after the pass's last op: that op may keep it instead of copying it.
        if kind == _K_OUT:
            _emit(ctx, key, op[1], j == last)
        elif kind == _K_CT:
            _ct_apply(ctx, key, op[1], op[2], j == last)
        elif kind == _K_LEARN:
            vlan = key[_VLAN_TCI] & 0x0FFF
            mac = key[_DL_SRC]
            port = key[_IN_PORT]
            br = ctx.bridge
            if type(br) is OFBridge:  # compiled: a C call of learn
                ob = br
                ob.learn(vlan, mac, port, ctx.now)
            else:  # a stand-in (tests)
                br.learn(vlan, mac, port, ctx.now)
            learns = tr.learns
            learns.append((vlan, mac, port))
        elif kind == OP_SET:
            _, idx, m, v = op
            key[idx] = (key[idx] & ~m) | v
        elif kind == OP_MOVE:
            _, si, sofs, nbits, di, dofs = op
            v = (key[si] >> sofs) & ((1 << nbits) - 1)
            m = ((1 << nbits) - 1) << dofs
            key[di] = (key[di] & ~m) | ((v << dofs) & m)
        elif kind == OP_DEC_TTL:
            if key[NW_TTL] <= 1:
                tr.drop = "ttl expired (dec_ttl)"
                return
            key[NW_TTL] -= 1
        elif kind == OP_CT_CLEAR:
            for i in CT_FIELDS:
                key[i] = 0
        elif kind == OP_DROP:
            tr.drop = op[1]
        elif kind == OP_IN_PORT:
            key[IN_PORT] = op[1]


def predict(bridge: OFBridge, key: list[int], now: int, cache, verdict: Callable) -> Translation | None:
    """The translation a packet with flow ``key`` would get, replayed from recorded passes only,
    with every ct() answered by ``verdict(act, zone)`` (a CtVerdict, or None: cannot tell).

    Changes nothing: no classifier lookup, no conntrack, no MAC learning (recorded in ``learns``
    for the cached decision's hits), no megaflow counters.  None when a pass is not recorded, when an op other
    than ct(), output and MAC learning is met, or when a ct() cannot be told.  The datapath uses
    it to cache the reply direction of a connection as it is offloaded (both directions go to the
    hardware at once; the reply's datapath flows were installed by its earlier packets), through
    ``predict_reply``.

    The replay of ``_exec`` specialised to what a prediction can meet (it runs once per
    offloaded connection): no context, no tracker stand-in; a ct() is ``_ct_apply`` and
    ``_ct_fork`` for a packet that is no fragment, whose verdict is known, without tracing (the
    ICMP rewrites a verdict carries are not kept: the prediction has no ICMP output to apply
    them to, as before).  The translation's mask is shared as a replayed translation's is
    (``Program.wc_after``: read-only), and an output that is the last op of a pass whose key is
    the prediction's own keeps that key (as ``_exec``'s last op does) instead of copying it.
    """
    return _predict(bridge, key, cache, verdict, None, None)


def predict_reply(bridge: OFBridge, key: list[int], now: int, cache, tracker, conn) -> Translation | None:
    """``predict`` with every ct() answered by ``tracker.offloaded_verdict(conn, True, zone, act)``
    (the reply direction of the offloaded connection ``conn``; ``Datapath._cache_peer``): the
    same translation, without a callback object per prediction."""
    return _predict(bridge, key, cache, None, tracker, conn)


def _predict(bridge, key: list[int], cache, verdict, tracker, conn) -> Translation | None:
    """``predict`` (``verdict`` given) or ``predict_reply`` (``tracker`` and ``conn`` given)."""
    wc = None
    rules = []
    outputs = []
    verdicts = []
    learns = []
    queue = []
    k = key  # copied before its first change (``owned``): the caller's key is not modified
    owned = False
    table = 0
    recirc = 0
    while True:
        prog = cache.peek(bridge, table, k)
        if prog is None:
            return None
        wc = prog.wc_after(wc)
        rules.extend(prog.rules)
        ops = prog.ops
        last = len(ops) - 1
        for j in range(last + 1):
            op = ops[j]
            kind = op[0]
            if kind == _K_OUT:
                # a snapshot, as _emit; nothing changes an owned key after its pass's last op
                outputs.append((op[1], k if owned and j == last else list(k), None))
            elif kind == _K_CT:
                act = op[1]
                zone = op[2]
                if tracker is not None:
                    v = tracker.offloaded_verdict(conn, True, zone, act)
                else:
                    v = verdict(act, zone)
                if type(v) is CtVerdict:  # compiled: its fields are struct member reads
                    cv = v
                    if cv.drop:
                        return None  # the packet would be dropped: halted
                    verdicts.append(cv)
                    if j != last and not owned:
                        k = list(k)
                        owned = True
                    _predict_ct(k, j == last, act, zone, cv, queue)
                else:  # a stand-in (tests), or None
                    if v is None or v.drop:
                        return None  # cannot tell, or the packet would be dropped: halted
                    verdicts.append(v)
                    if j != last and not owned:
                        k = list(k)
                        owned = True
                    _predict_ct(k, j == last, act, zone, v, queue)
            elif kind == _K_LEARN:  # not learned now: the cached decision refreshes it at its hits
                learns.append((k[VLAN_TCI] & 0x0FFF, k[DL_SRC], k[IN_PORT]))
            else:
                return None
        if not queue:
            break
        recirc += 1
        if recirc > MAX_RECIRCULATIONS:
            return None
        k, table = queue.pop(0)
        owned = True
    return _new_translation(outputs, rules, verdicts, wc, recirc, learns)


def _predict_ct(k: list[int], final: bool, act: A.Ct, zone: int, v, queue: list) -> None:
    """``_predict``'s ct() once its verdict ``v`` is known (no drop): ``_ct_verdict`` without a
    context.  ``final``: the last op of its pass (nothing reads ``k`` after it: only the
    recirculated copy, if any, gets the NAT and the ct fields), else ``k`` is the prediction's own
    and goes on untracked."""
    ctable = act.table
    if final:
        if ctable is not None:
            rkey = list(k)
            _nat_key(rkey, v)
            _ct_fields(rkey, v.state, zone, v)
            queue.append((rkey, ctable))
        return
    _nat_key(k, v)
    if ctable is not None:  # _ct_fork's recirculated copy
        rkey = list(k)
        _ct_fields(rkey, v.state, zone, v)
        queue.append((rkey, ctable))
    _write_ct(k, CT_STATE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)


def _nat_key(key: list[int], v) -> None:
    """The NAT of verdict ``v`` written into ``key`` (``_ct_apply``, ``predict``)."""
    nat_src = v.nat_src
    nat_dst = v.nat_dst
    if nat_src is None and nat_dst is None:
        return
    ipv6 = key[DL_TYPE] == ETH_TYPE_IPV6
    if nat_src is not None:
        addr, port = nat_src
        key[IPV6_SRC if ipv6 else NW_SRC] = addr
        if port is not None:
            key[TP_SRC] = port
    if nat_dst is not None:
        addr, port = nat_dst
        key[IPV6_DST if ipv6 else NW_DST] = addr
        if port is not None:
            key[TP_DST] = port


def _ct_fields(rkey: list[int], state: int, zone: int, v) -> None:
    """The ct_* fields of a recirculated copy (``_ct_fork``, ``predict``): ``state``, ``zone`` and
    verdict ``v``'s mark, label and original tuple."""
    orig = v.orig
    if orig is not None:
        ver, src, dst, proto, sport, dport = orig
        if ver == 6:
            _write_ct(rkey, CT_STATE, state, zone, v.mark, v.label, 0, 0, src, dst, proto, sport, dport)
        else:
            _write_ct(rkey, CT_STATE, state, zone, v.mark, v.label, src, dst, 0, 0, proto, sport, dport)
    else:  # no connection tuple: the ct_nw_* fields stay as they were
        rkey[CT_STATE:CT_LABEL + 1] = (state, zone, v.mark, v.label)


# Ops of a recorded pass (see _exec).
OP_OUT, OP_CT, OP_SET, OP_LEARN, OP_MOVE, OP_DEC_TTL, OP_CT_CLEAR, OP_DROP, OP_IN_PORT = range(9)
_K_OUT, _K_CT, _K_LEARN = OP_OUT, OP_CT, OP_LEARN  # compiled: C integers (_exec's usual kinds)
_IN_PORT, _VLAN_TCI, _DL_SRC = IN_PORT, VLAN_TCI, DL_SRC  # compiled: C indices (the others stay exported)


def _rec(ctx: XlateContext, op: tuple) -> None:
    if ctx.rec is not None:
        ctx.rec.append(op)


def _end_pass(ctx: XlateContext, key: list[int], start: list[int], recirc_id: int) -> None:
    """The end of a traced pass: ``Final flow:`` (``unchanged`` when the pass changed no field
    of the flow it started with) and ``Datapath actions:``."""
    tr = ctx.tr
    if tr.trace is not None:
        acts = tr.dp_actions[-1]
        tr.trace.append("")
        flow = getattr(ctx.formatter, "flow", None)
        if flow is not None:
            tr.trace.append("Final flow: " + ("unchanged" if key == start else flow(key, recirc_id)))
        tr.trace.append("Datapath actions: " + (",".join(acts) if acts else "drop"))


def _ct_state_text(cs: int) -> str:
    from ..flow.key import CS_NAMES
    names = [n for n, b in CS_NAMES if cs & b]
    return "|".join(names) if names else "0"


def _run_table(ctx: XlateContext, key: list[int], table_id: int, formatter) -> None:
    tr = ctx.tr
    if ctx.halted:
        return
    t = ctx.bridge.tables[table_id] if 0 <= table_id < len(ctx.bridge.tables) else None
    if ctx.after_ct:
        ctx.rec_ok = False  # this lookup sees what conntrack (NAT) wrote: not replayable
    rule = t.lookup(key, ctx.pwc) if t is not None else None
    if tr.trace is not None:
        indent = "    " * ctx.tdepth
        if rule is None:
            tr.trace.append(f"{indent}{table_id:2d}. No match.")
            tr.trace.append(f"{indent}    drop")
        else:
            text = formatter.rule(rule) if formatter else repr(rule)
            tr.trace.append(f"{indent}{table_id:2d}. {text}")
    if rule is None:
        tr.drop = f"no matching flow in table {table_id}"
        _rec(ctx, (OP_DROP, tr.drop))
        return
    tr.rules.append(rule)
    if ctx.rec is not None:
        ctx.prules.append(rule)
    if not rule.actions:
        tr.drop = "explicit drop"
        _rec(ctx, (OP_DROP, tr.drop))
        if tr.trace is not None:
            tr.trace.append(_action_indent(ctx) + "drop")
        return
    _run_actions(ctx, key, rule.actions, table_id, formatter)


def _action_indent(ctx: XlateContext) -> str:
    """Indentation of the trace lines of a table's actions: 4 at the top, and under a nested
    table (a resubmit with more actions after it) twice its header's, as OVS prints them."""
    return "    " * (2 * ctx.tdepth + 1)


def _run_actions(ctx: XlateContext, key: list[int], actions, table_id: int, formatter) -> None:
    tr = ctx.tr
    trace = tr.trace
    indent = _action_indent(ctx)
    last = len(actions) - 1
    for n, act in enumerate(actions):
        if ctx.halted:
            return
        cls = type(act)
        if trace is not None:
            trace.append(indent + (formatter.actions([act]) if formatter else repr(act)))
            if cls is A.Ct:  # ct()'s own action list (exec, nat), or "drop" when empty, as OVS traces it
                nested = [indent + (formatter.actions([sub]) if formatter else repr(sub)) for sub in act.exec]
                if act.nat is not None:
                    nested.insert(min(act.nat_index, len(nested)), indent + _nat_text(act, formatter))
                trace.extend(nested or [indent + "drop"])
        if cls is A.Output:
            _output(ctx, key, act.port, trace, indent)
        elif cls is A.Ct:
            _ct(ctx, key, act, trace, indent)
        elif cls is A.Resubmit:
            if ctx.depth >= MAX_RESUBMIT_DEPTH:
                tr.drop = "resubmit depth exceeded"
                ctx.rec_ok = False
                return
            saved = key[IN_PORT]
            if act.port is not None:
                key[IN_PORT] = act.port
                _rec(ctx, (OP_IN_PORT, act.port))
            nest = n != last  # OVS traces a resubmit that ends the list as a tail call (no nesting)
            ctx.depth += 1
            ctx.tdepth += nest
            _run_table(ctx, key, table_id if act.table is None else act.table, formatter)
            ctx.depth -= 1
            ctx.tdepth -= nest
            if act.port is not None:
                key[IN_PORT] = saved
                _rec(ctx, (OP_IN_PORT, saved))
        elif cls is A.GotoTable:
            _run_table(ctx, key, act.table, formatter)
            return
        elif cls is A.SetField:
            idx, width, shift = ctx.field_index(act.field)
            m = ((1 << width) - 1) if act.mask is None else act.mask
            key[idx] = (key[idx] & ~(m << shift)) | ((act.value & m) << shift)
            _rec(ctx, (OP_SET, idx, m << shift, (act.value & m) << shift))
        elif cls is A.Load:
            idx, _w, shift = ctx.field_index(act.dst.field)
            ofs = act.dst.ofs + shift
            m = ((1 << act.dst.n_bits) - 1) << ofs
            key[idx] = (key[idx] & ~m) | ((act.value << ofs) & m)
            _rec(ctx, (OP_SET, idx, m, (act.value << ofs) & m))
        elif cls is A.Move:
            si, _, sshift = ctx.field_index(act.src.field)
            di, _, dshift = ctx.field_index(act.dst.field)
            sofs = act.src.ofs + sshift
            v = (key[si] >> sofs) & ((1 << act.src.n_bits) - 1)
            dofs = act.dst.ofs + dshift
            m = ((1 << act.dst.n_bits) - 1) << dofs
            key[di] = (key[di] & ~m) | ((v << dofs) & m)
            ctx.pwc[si] |= ((1 << act.src.n_bits) - 1) << sofs
            _rec(ctx, (OP_MOVE, si, sofs, act.src.n_bits, di, dofs))
        elif cls is A.DecTtl:
            if key[DL_TYPE] not in (ETH_TYPE_IP, ETH_TYPE_IPV6):
                continue
            ctx.pwc[NW_TTL] |= 0xFF
            _rec(ctx, (OP_DEC_TTL,))
            if key[NW_TTL] <= 1:
                tr.drop = "ttl expired (dec_ttl)"
                if trace is not None:
                    trace.append(indent + " -> TTL exceeded: packet dropped")
                return
            key[NW_TTL] -= 1
        elif cls is A.CtClear:
            for i in CT_FIELDS:
                key[i] = 0
            _rec(ctx, (OP_CT_CLEAR,))
        elif cls is A.Controller:
            tr.controller += 1
            tr.stateful = True
            ctx.rec_ok = False
        elif cls is A.Note:
            pass
        else:  # an action the parser knows but xlate does not: refuse loudly in the drop reason
            tr.drop = f"unsupported action {type(act).__name__}"
            ctx.rec_ok = False
            return


def _emit(ctx: XlateContext, key: list[int], port: int, final: bool = False) -> None:
    """Outputs a snapshot of ``key`` to ``port``; ``final``: nothing changes or reads ``key``
    after this (the last op of a replayed pass), so it is the snapshot itself."""
    tr = ctx.tr
    tr.outputs.append((port, key if final else list(key), None))  # a snapshot: later actions change the key
    if ctx.rec is not None:
        ctx.rec.append((OP_OUT, port))
    if tr.trace is not None:
        tr.dp_actions[-1].append(str(port))


def _output(ctx: XlateContext, key: list[int], port: int, trace, indent: str) -> None:
    br = ctx.bridge
    in_port = key[IN_PORT]
    tr = ctx.tr
    ctx.pwc[IN_PORT] = EXACT[IN_PORT]
    if port == A.OFPP_NORMAL:
        _normal(ctx, key, trace, indent)
    elif port == A.OFPP_FLOOD or port == A.OFPP_ALL:
        for p in br.by_no:
            if p != in_port:
                _emit(ctx, key, p)
    elif port == A.OFPP_IN_PORT:
        _emit(ctx, key, in_port)
    elif port == A.OFPP_CONTROLLER:
        tr.controller += 1
        ctx.rec_ok = False
    elif port == A.OFPP_TABLE or port == A.OFPP_NONE:
        pass
    elif port == in_port:
        # OpenFlow: output to the ingress port is skipped unless IN_PORT is used.
        if trace is not None:
            trace.append(indent + " >> skipping output to input port")  # a warning (OFT_WARN)
    elif port in br.by_no:
        _emit(ctx, key, port)
    else:
        if trace is not None:
            trace.append(indent + f" -> output to nonexistent port {port}")


def _normal(ctx: XlateContext, key: list[int], trace, indent: str) -> None:
    """The L2 learning switch of OFPP_NORMAL (no VLAN port modes: every port is a trunk)."""
    br = ctx.bridge
    tr = ctx.tr
    in_port = key[IN_PORT]
    vlan = key[VLAN_TCI] & 0x0FFF
    wc = ctx.pwc
    wc[DL_SRC] = EXACT[DL_SRC]
    wc[DL_DST] = EXACT[DL_DST]
    wc[VLAN_TCI] = EXACT[VLAN_TCI]
    wc[IN_PORT] = EXACT[IN_PORT]
    if not ctx.trace_on:
        br.learn(vlan, key[DL_SRC], in_port, ctx.now)
        tr.learns.append((vlan, key[DL_SRC], in_port))
        _rec(ctx, (OP_LEARN,))
    dst = key[DL_DST]
    if dst & (1 << 40):  # broadcast or multicast: flood
        out = None
    else:
        out = br.mac_lookup(vlan, dst, ctx.now, ctx.mac_aging_ms)
    if out is None:
        tr.stateful = True  # flooding depends on the MAC table; never cache it
        ctx.rec_ok = False
        if trace is not None:
            trace.append(indent + " -> no learned MAC for destination, flooding")
        for p in br.by_no:
            if p != in_port:
                _emit(ctx, key, p)
    elif out == in_port:
        if trace is not None:
            trace.append(indent + " -> learned port is input port, dropping")
    else:
        if trace is not None:
            trace.append(indent + " -> forwarding to learned port")
        _emit(ctx, key, out)


def _ct(ctx: XlateContext, key: list[int], act: A.Ct, trace, indent: str) -> None:
    if act.zone_src is not None:
        idx, _, shift = ctx.field_index(act.zone_src.field)
        ofs = act.zone_src.ofs + shift
        zone = (key[idx] >> ofs) & ((1 << act.zone_src.n_bits) - 1)
        ctx.pwc[idx] |= ((1 << act.zone_src.n_bits) - 1) << ofs
    else:
        zone = act.zone
    if ctx.trace_on:
        # ofproto/trace never runs the tracker: the fork resumes with --ct-next flags.
        default = not ctx.ct_next
        state = ctx.ct_next.pop(0) if ctx.ct_next else (CS_TRK | CS_NEW)
        _ct_fork(ctx, key, act, zone, state, None, default)
    else:
        _rec(ctx, (OP_CT, act, zone))
        _ct_apply(ctx, key, act, zone)
        ctx.after_ct = True


def _ct_apply(ctx: XlateContext, key: list[int], act: A.Ct, zone: int, final: bool = False) -> None:
    """Runs the tracker for one ct(), writes its NAT into the key, forks the recirculation.
    ``final``: nothing changes or reads ``key`` after this ct() (the last op of a replayed pass)."""
    if ctx.tracker is None:
        _ct_fork(ctx, key, act, zone, CS_TRK | 0x10, None)
        return
    pkt = ctx.pkt
    if type(pkt) is Packet:  # compiled: a struct member read
        hp = pkt
        frag = hp.nw_frag
    else:  # a stand-in (tests)
        frag = pkt.nw_frag
    if frag and _defrag(ctx, key, zone):
        return
    verdict = ctx.tracker.process(ctx.pkt, key, zone, act, ctx.now)
    verdicts = ctx.tr.verdicts
    verdicts.append(verdict)
    if type(verdict) is CtVerdict:  # compiled: its fields are struct member reads
        cv = verdict
        _ct_verdict(ctx, key, act, zone, cv, final)
    else:  # a stand-in (tests)
        _ct_verdict(ctx, key, act, zone, verdict, final)


def _ct_verdict(ctx: XlateContext, key: list[int], act: A.Ct, zone: int, verdict, final: bool) -> None:
    """``_ct_apply`` once the tracker answered ``verdict``: the drop, or the NAT written into the
    key and ``_ct_fork`` (untraced: a translation that runs the tracker is never traced).
    ``final``: the key is the fork's, uncleared, instead of a copy (nothing reads it after)."""
    tr = ctx.tr
    if verdict.drop:
        tr.drop = verdict.drop
        # The kernel drops the packet: nothing after this ct() happens, no fork.
        ctx.queue.clear()
        tr.outputs.clear()
        ctx.halted = True
        return
    _nat_key(key, verdict)
    if verdict.icmp_id is not None:
        ctx.icmp_id = verdict.icmp_id
    if verdict.icmp_inner is not None:
        ctx.icmp_inner = verdict.icmp_inner
    table = act.table
    if table is not None:
        rkey = key if final else list(key)
        _ct_fields(rkey, verdict.state, zone, verdict)
        queue = ctx.queue
        queue.append((rkey, table, False, act.nat is not None))
    if not final:  # this copy goes on untracked
        _write_ct(key, CT_STATE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)


def _defrag(ctx: XlateContext, key: list[int], zone: int) -> bool:
    """ct() on an IP fragment: reassembly first (conntrack/defrag.py).  True when the packet
    stops here (kept until its datagram completes, or dropped); else the datagram replaces it:
    ``ctx.pkt`` and the key's L4 fields are the whole datagram's, as the kernel's
    ``handle_fragments`` re-extracts them."""
    ctx.rec_ok = False  # the packet changes under this pass: never recorded
    tr = ctx.tr
    r = ctx.tracker.defrag.add(zone, ctx.pkt, ctx.now)
    if r is None or r.__class__ is str:
        if r is None:
            tr.stolen = True
        else:
            tr.drop = "ip fragment dropped by reassembly"
        ctx.queue.clear()
        ctx.halted = True
        return True
    base = extract(r.pkt, ctx.orig_in_port)
    for i in (NW_FRAG, NW_TOS, NW_ECN, TP_SRC, TP_DST, TCP_FLAGS):
        key[i] = base[i]
    tr.defrag = (r, base, len(tr.outputs), len(tr.rules))
    ctx.pkt = r.pkt
    return False


def _ct_fork(ctx: XlateContext, key: list[int], act: A.Ct, zone: int, state: int, verdict,
             default_state: bool = False) -> None:
    """The recirculated copy (with ct_* set) is queued; this copy goes on untracked.
    ``default_state``: a trace resumes it with the default ct_state (no --ct-next left)."""
    tr = ctx.tr
    trace = tr.trace
    formatter = ctx.formatter
    if trace is not None:
        indent = _action_indent(ctx)
        parts = []
        if act.force:
            parts.append("force_commit")
        elif act.commit:
            parts.append("commit")
        if zone:
            parts.append(f"zone={zone}")
        for name, width, label in (("ct_mark", 32, "mark"), ("ct_label", 128, "labels")):
            vm = _exec_value(act.exec, name, width)
            if vm is not None:
                parts.append(f"{label}={vm[0]:#x}/{vm[1]:#x}")
        if act.nat is not None:
            parts.append(_nat_text(act, formatter))
        tr.dp_actions[-1].append("ct(" + ",".join(parts) + ")" if parts else "ct")
        if act.table is not None:
            tr.dp_actions[-1].append(f"recirc(0x{tr.recirc + len(ctx.queue) + 1:x})")
    table = act.table
    if table is not None:
        rkey = list(key)
        if verdict is not None:
            _ct_fields(rkey, state, zone, verdict)
        else:
            _write_ct(rkey, CT_STATE, state, zone, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        ctx.queue.append((rkey, table, default_state, act.nat is not None))
        if trace is not None:
            trace.append(indent + f" -> A clone of the packet is forked to recirculate. "
                                  f"The forked pipeline will be resumed at table {table}.")
    if trace is not None:
        trace.append(indent + " -> Sets the packet to an untracked state, and clears all the conntrack fields.")
    _write_ct(key, CT_STATE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)


def _write_ct(key: list[int], i: int, state, zone, mark, label, nw_src, nw_dst, ipv6_src, ipv6_dst, proto,
              tp_src, tp_dst) -> None:
    """``key[i:i + 11] = (state, ..., tp_dst)``: the ct_* fields, CT_STATE .. CT_TP_DST (consecutive
    in the key, in this order), one store each (compiled: C-indexed list stores, cheaper than
    building a tuple and a slice for them)."""
    key[i] = state
    key[i + 1] = zone
    key[i + 2] = mark
    key[i + 3] = label
    key[i + 4] = nw_src
    key[i + 5] = nw_dst
    key[i + 6] = ipv6_src
    key[i + 7] = ipv6_dst
    key[i + 8] = proto
    key[i + 9] = tp_src
    key[i + 10] = tp_dst


def _nat_text(act: A.Ct, formatter) -> str:
    """``nat`` / ``nat(src=...)`` as printed inside ct()."""
    return (formatter.actions([A.Ct(nat=act.nat)]) if formatter else "ct(nat)")[3:-1]


def _exec_value(actions: tuple, field: str, width: int) -> tuple[int, int] | None:
    """(value, mask) that ct(exec(...)) writes into ``field``, or None (for the datapath
    action of a trace: ``ct(commit,mark=0x2a/0xffffffff)``)."""
    value = mask = 0
    for a in actions:
        if isinstance(a, A.SetField) and a.field == field:
            m = ((1 << width) - 1) if a.mask is None else a.mask
            value, mask = (value & ~m) | (a.value & m), mask | m
        elif isinstance(a, A.Load) and a.dst.field == field:
            m = ((1 << a.dst.n_bits) - 1) << a.dst.ofs
            value, mask = (value & ~m) | ((a.value << a.dst.ofs) & m), mask | m
    return (value, mask) if mask else None


def _default_field_index(name: str) -> tuple[int, int, int]:
    from ..flow import fields
    f = fields.by_nxm(name)
    if f is None:
        raise KeyError(name)
    return f.index, f.n_bits, f.shift
