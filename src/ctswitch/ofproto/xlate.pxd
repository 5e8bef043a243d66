# Augmenting declarations for xlate.py: Translation and XlateContext become extension types
# (``public object`` fields: their slots); the helpers taking the context become cpdef with it
# typed, and their ``tr = ctx.tr`` local typed Translation, so the context's and the
# translation's fields are struct member reads.  Packets, verdicts and trackers stay untyped.
# ``predict`` and ``predict_reply`` (once per offloaded connection) are cpdef; their body ``_predict``
# has its translation, programs and lists typed, its recirculation count a C int and its op kinds
# compared as C integers; a ct()'s verdict is read as the tracker's CtVerdict (an exact type check:
# the tests' stand-ins take the generic code of the fused ``_predict_ct``).
# The megaflow cache and its programs are typed (megaflow.pxd): a replayed pass reads them as
# struct members; ``_translate`` is ``translate``'s body, so its context and queue are typed too.
# ``translate`` builds its context and translation with ``_context`` (fields stored directly, no
# constructor calls); ``_exec`` compares an op's kind as a C integer with the usual kinds (_K_*).
# Through a megaflow cache, ``translate`` replays in ``_replay`` (its state in typed locals, no
# context, no queue of tuples) and builds the context (``_resume``) only to hand over to the
# general code (``_record_pass``, ``_exec`` from an op, ``_drain``).
# A replayed MAC learning calls a real bridge's learn() in C and ct() reads a real packet's nw_frag as
# a struct member (exact type checks: the tests' stand-in bridges and packets take the generic code).
cimport cython
from ctswitch.conntrack.tracker cimport CtVerdict
from ctswitch.ofproto.megaflow cimport MegaflowCache, Program
from ctswitch.ofproto.bridge cimport OFBridge
from ctswitch.packet.headers cimport Packet

# A verdict: the tracker's CtVerdict (its fields struct member reads) or a stand-in (tests).
ctypedef fused Verdict:
    CtVerdict
    object

# The key indices and the EtherType _nat_key reads: C constants (list stores and loads by a C
# index, no module-global lookup); the module does not export them when compiled.
cdef Py_ssize_t DL_TYPE, NW_SRC, NW_DST, IPV6_SRC, IPV6_DST, TP_SRC, TP_DST
cdef Py_ssize_t _K_OUT, _K_CT, _K_LEARN, _IN_PORT, _VLAN_TCI, _DL_SRC
cdef long ETH_TYPE_IPV6


cdef class Translation:
    cdef public object outputs, rules, verdicts, wc, drop, stateful, trace, controller
    cdef public object recirc, dp_actions, stolen, defrag, learns


cdef class XlateContext:
    cdef public object bridge, pkt, now, tracker, mac_aging_ms, tr, queue, depth, tdepth
    cdef public object icmp_id, icmp_inner, ct_next, field_index, trace_on, orig_in_port, halted
    cdef public object formatter, rec, rec_ok, after_ct, pwc, prules, wcs


cpdef predict(bridge, key, now, cache, verdict)

cpdef predict_reply(bridge, key, now, cache, tracker, conn)

@cython.locals(tr=Translation, prog=Program, op=tuple, ops=tuple, rkey=list, queue=list, rules=list,
               outputs=list, verdicts=list, learns=list, recirc=int, j=Py_ssize_t, last=Py_ssize_t,
               owned=bint, kind=Py_ssize_t, cv=CtVerdict)
cdef _predict(bridge, key, MegaflowCache cache, verdict, tracker, conn)

@cython.locals(rkey=list)
cdef _predict_ct(k, bint final, act, zone, Verdict v, list queue)

cdef _nat_key(list key, Verdict v)

cdef _ct_fields(list rkey, state, zone, Verdict v)

@cython.locals(tr=Translation)
cdef Translation _new_translation(list outputs, list rules, list verdicts, wc, recirc, list learns)

@cython.locals(tr=Translation)
cdef Translation _blank(bint trace, bint cached)

@cython.locals(ctx=XlateContext)
cdef XlateContext _context(bridge, pkt, now, tracker, mac_aging_ms, trace, ct_next, field_index, bint cached)

@cython.locals(tr=Translation, prog=Program, op=tuple, ops=tuple, k=list, rkey=list, outputs=list, rules=list,
               verdicts=list, learns=list, more=list, j=Py_ssize_t, last=Py_ssize_t, kind=Py_ssize_t, final=bint,
               cv=CtVerdict, hp=Packet, ob=OFBridge, ctx=XlateContext)
cpdef _replay(bridge, pkt, key, now, tracker, mac_aging_ms, ct_next, field_index, formatter, MegaflowCache cache)

cdef Translation _finish(Translation tr, icmp_id, icmp_inner)

@cython.locals(ctx=XlateContext, queue=list)
cdef XlateContext _resume(bridge, pkt, key, now, tracker, mac_aging_ms, ct_next, field_index, formatter,
                          Translation tr, qk, qt, qa, list more, icmp_id, icmp_inner)

@cython.locals(tr=Translation)
cpdef _translate(XlateContext ctx, k, trace, formatter, MegaflowCache cache)

@cython.locals(tr=Translation, queue=list)
cpdef _drain(XlateContext ctx, formatter, MegaflowCache cache)

@cython.locals(tr=Translation, prog=Program, twc=list, i=Py_ssize_t, rules=list)
cpdef _run_pass(XlateContext ctx, key, table, formatter, MegaflowCache cache)

@cython.locals(tr=Translation, twc=list, i=Py_ssize_t)
cpdef _record_pass(XlateContext ctx, key, table, formatter, MegaflowCache cache)

@cython.locals(tr=Translation, op=tuple, ops=tuple, j=Py_ssize_t, last=Py_ssize_t, kind=Py_ssize_t,
               ob=OFBridge, learns=list)
cpdef _exec(XlateContext ctx, key, Program prog, Py_ssize_t start=*)

cpdef _rec(XlateContext ctx, op)

@cython.locals(tr=Translation)
cpdef _end_pass(XlateContext ctx, key, start, recirc_id)

cpdef _run_table(XlateContext ctx, key, table_id, formatter)

cpdef _action_indent(XlateContext ctx)

cpdef _run_actions(XlateContext ctx, key, actions, table_id, formatter)

@cython.locals(tr=Translation)
cpdef _emit(XlateContext ctx, key, port, bint final=*)

@cython.locals(tr=Translation)
cpdef _output(XlateContext ctx, key, port, trace, indent)

@cython.locals(tr=Translation)
cpdef _normal(XlateContext ctx, key, trace, indent)

cpdef _ct(XlateContext ctx, key, act, trace, indent)

@cython.locals(cv=CtVerdict, hp=Packet, verdicts=list)
cpdef _ct_apply(XlateContext ctx, key, act, zone, bint final=*)

@cython.locals(tr=Translation, rkey=list, queue=list)
cdef _ct_verdict(XlateContext ctx, key, act, zone, Verdict verdict, bint final)

@cython.locals(tr=Translation)
cpdef _defrag(XlateContext ctx, key, zone)

@cython.locals(tr=Translation, rkey=list)
cpdef _ct_fork(XlateContext ctx, key, act, zone, state, verdict, default_state=*)

cdef _write_ct(key, Py_ssize_t i, state, zone, mark, label, nw_src, nw_dst, ipv6_src, ipv6_dst, proto,
               tp_src, tp_dst)
