"""Match half of the ovs-ofctl flow syntax: building, printing, normalising matches.

Theory of operation
-------------------
A match is built in two mutable lists (values, masks) indexed by flow-key slot.
``MatchBuilder.set(field, value, mask)`` stores a field the way OVS's
``mf_set`` does: most fields replace their whole slot; fields that share a slot
(``dl_vlan``/``dl_vlan_pcp`` inside VLAN_TCI, ``nw_tos``/``ip_dscp`` inside
NW_TOS) replace only their own bits.  Protocol shorthands (``PROTOCOLS``) set
dl_type and nw_proto.

``format_match`` prints a match in ``match_format``'s order (priority, pkt_mark,
ct_*, protocol shorthand, regs, metadata, in_port, vlan, dl_*, dl_type, L3,
nw_proto, arp_sha/tha, tos/ecn/ttl/frag, L4, tcp_flags); each slot has its own
printing rule (``reg0=0x1``, ``ct_zone=5``, ``nw_src=10.0.0.0/24`` ...).

``normalize_match`` drops fields whose prerequisites are missing, which is what
the switch ends up storing when ovs-ofctl encodes a match (OF1.0 normalisation
or NXM's conditional encoding both drop e.g. ``tp_dst`` without ``tcp``/``udp``).
``prereq_error`` reports what the switch rejects outright (ct tuple fields
without ``ip``/``ipv6`` and a valid ct_state): ``OFPBMC_BAD_PREREQ``.
"""

from __future__ import annotations

from ..packet.headers import ETH_TYPE_ARP, ETH_TYPE_IP, ETH_TYPE_IPV6
from . import fields as F
from . import key as K

ETH_TYPE_RARP = 0x8035
DEFAULT_PRIORITY = 32768

# name -> (dl_type, nw_proto or 0)   [ofp_parse_protocol]
PROTOCOLS: dict[str, tuple[int, int]] = {
    "ip": (ETH_TYPE_IP, 0), "ipv4": (ETH_TYPE_IP, 0), "ip4": (ETH_TYPE_IP, 0),
    "arp": (ETH_TYPE_ARP, 0), "icmp": (ETH_TYPE_IP, 1), "tcp": (ETH_TYPE_IP, 6),
    "udp": (ETH_TYPE_IP, 17), "sctp": (ETH_TYPE_IP, 132), "ipv6": (ETH_TYPE_IPV6, 0),
    "ip6": (ETH_TYPE_IPV6, 0), "icmp6": (ETH_TYPE_IPV6, 58), "tcp6": (ETH_TYPE_IPV6, 6),
    "udp6": (ETH_TYPE_IPV6, 17), "sctp6": (ETH_TYPE_IPV6, 132), "rarp": (ETH_TYPE_RARP, 0),
    "mpls": (0x8847, 0), "mplsm": (0x8848, 0),
}
# Printed shorthands [match_format]: (dl_type, nw_proto) -> name; (dl_type, None) without proto.
_SHORT_IP = {1: "icmp", 6: "tcp", 17: "udp", 132: "sctp"}
_SHORT_IP6 = {58: "icmp6", 6: "tcp6", 17: "udp6", 132: "sctp6"}
_SHORT_OTHER = {ETH_TYPE_ARP: "arp", ETH_TYPE_RARP: "rarp", 0x8847: "mpls", 0x8848: "mplsm"}

_CFI, _VID, _PCP = 0x1000, 0x0FFF, 0xE000


class MatchBuilder:
    """Mutable (values, masks) being filled by the parser."""

    __slots__ = ("values", "masks")

    def __init__(self, match: K.Match | None = None) -> None:
        self.values = list(match.values) if match else [0] * K.N_FIELDS
        self.masks = list(match.mask) if match else [0] * K.N_FIELDS

    def match(self) -> K.Match:
        return K.Match(tuple(self.values), tuple(self.masks))

    def _put(self, i: int, value: int, mask: int, owned: int | None = None) -> None:
        mask &= K.EXACT[i]
        if owned is None:
            self.values[i] = value & mask
            self.masks[i] = mask
        else:
            self.values[i] = (self.values[i] & ~owned) | (value & mask & owned)
            self.masks[i] = (self.masks[i] & ~owned) | (mask & owned)

    def set_protocol(self, name: str) -> None:
        dl_type, proto = PROTOCOLS[name]
        self._put(K.DL_TYPE, dl_type, 0xFFFF)
        if proto:
            self._put(K.NW_PROTO, proto, 0xFF)

    def set(self, f: F.Field, value: int, mask: int) -> None:
        """Stores a parsed field (value/mask in field units) as ``mf_set`` does."""
        i, kind = f.index, f.kind
        if mask == 0:  # "*" / empty value: wildcard the field
            self._put(i, 0, 0, f.slot_mask if f.name in ("dl_vlan", "dl_vlan_pcp", "ip_dscp") else None)
            return
        if f.name == "dl_vlan":
            if value == 0xFFFF:
                self._put(i, 0, 0xFFFF)
            else:
                self._put(i, (value & _VID) | _CFI, _VID | _CFI, _VID | _CFI)
        elif f.name == "dl_vlan_pcp":
            self._put(i, ((value & 7) << 13) | _CFI, _PCP | _CFI, _PCP | _CFI)
        elif f.name in ("nw_tos", "ip_dscp"):
            self._put(i, value << f.shift, 0xFC, 0xFC)
        elif f.name == "nw_ecn":
            self._put(i, value, 0x3)
        elif f.name == "ip_frag":
            self._put(i, value, mask & 0x3)
        elif f.name == "arp_op":
            self._put(i, value & 0xFF, 0xFF)
        elif f.name in ("icmp_type", "icmp_code", "icmpv6_type", "icmpv6_code"):
            self._put(i, value, 0xFFFF)
        elif f.name == "ct_state":
            self._put(i, value, mask & 0xFF)
        elif kind == "port":
            self._put(i, value, K.EXACT[i])
        else:
            full = (1 << (8 * f.n_bytes)) - 1
            self._put(i, value, K.EXACT[i] if mask & full == full else mask)

    def set_subfield(self, f: F.Field, ofs: int, n_bits: int, value: int) -> None:
        """``FIELD[a..b]=V`` in a match: sets those bits exactly."""
        bits = ((1 << n_bits) - 1) << (ofs + f.shift)
        self._put(f.index, value << (ofs + f.shift), bits, bits)


# ---------------------------------------------------------------------------
# Prerequisites

def _dl_type(m: K.Match) -> int:
    return m.values[K.DL_TYPE] if m.mask[K.DL_TYPE] == 0xFFFF else 0


def _nw_proto(m: K.Match) -> int | None:
    return m.values[K.NW_PROTO] if m.mask[K.NW_PROTO] & 0xFF == 0xFF else None


def is_ct_valid(m: K.Match) -> bool:
    """OVS ``is_ct_valid`` for a match: some state bit implying a valid entry, or +trk-inv."""
    st, mk = m.values[K.CT_STATE], m.mask[K.CT_STATE]
    if st & (K.CS_NEW | K.CS_EST | K.CS_REL | K.CS_RPL | K.CS_SNAT | K.CS_DNAT):
        return True
    return bool(st & K.CS_TRK and mk & K.CS_INV and not st & K.CS_INV)


def prereqs_ok(f: F.Field, m: K.Match) -> bool:
    """``mf_are_prereqs_ok`` for field ``f`` against match ``m``."""
    dl, proto = _dl_type(m), _nw_proto(m)
    ip_any = dl in (ETH_TYPE_IP, ETH_TYPE_IPV6)
    p = f.prereq
    if p in (F.P_NONE, F.P_ETH):
        return True
    if p == F.P_IP:
        return ip_any
    if p == F.P_IPV4:
        return dl == ETH_TYPE_IP
    if p == F.P_IPV6:
        return dl == ETH_TYPE_IPV6
    if p == F.P_ARP:
        return dl in (ETH_TYPE_ARP, ETH_TYPE_RARP)
    if p == F.P_TCP:
        return ip_any and proto == 6
    if p == F.P_UDP:
        return ip_any and proto == 17
    if p == F.P_SCTP:
        return ip_any and proto == 132
    if p == F.P_ICMP:
        return dl == ETH_TYPE_IP and proto == 1
    if p == F.P_ICMPV6:
        return dl == ETH_TYPE_IPV6 and proto == 58
    if p == F.P_CT:
        return ip_any and is_ct_valid(m)
    return True


_L3 = (K.NW_SRC, K.NW_DST, K.NW_PROTO, K.NW_TOS, K.NW_ECN, K.NW_TTL, K.NW_FRAG,
       K.IPV6_SRC, K.IPV6_DST, K.IPV6_LABEL, K.TP_SRC, K.TP_DST, K.TCP_FLAGS, K.ARP_SHA, K.ARP_THA)


def normalize_match(m: K.Match) -> K.Match:
    """The match the switch keeps: L3/L4 fields whose prerequisites are missing are dropped."""
    dl, proto = _dl_type(m), _nw_proto(m)
    keep: set[int] = set()
    if dl == ETH_TYPE_IP:
        keep = {K.NW_SRC, K.NW_DST, K.NW_PROTO, K.NW_TOS, K.NW_ECN, K.NW_TTL, K.NW_FRAG}
        if proto in (1, 6, 17, 132):
            keep |= {K.TP_SRC, K.TP_DST}
    elif dl == ETH_TYPE_IPV6:
        keep = {K.IPV6_SRC, K.IPV6_DST, K.IPV6_LABEL, K.NW_PROTO, K.NW_TOS, K.NW_ECN, K.NW_TTL, K.NW_FRAG}
        if proto in (6, 17, 58, 132):
            keep |= {K.TP_SRC, K.TP_DST}
    elif dl in (ETH_TYPE_ARP, ETH_TYPE_RARP):
        keep = {K.NW_SRC, K.NW_DST, K.NW_PROTO, K.ARP_SHA, K.ARP_THA}
    if dl in (ETH_TYPE_IP, ETH_TYPE_IPV6) and proto == 6:
        keep.add(K.TCP_FLAGS)
    drop = [i for i in _L3 if i not in keep and m.mask[i]]
    # ICMP type/code travel as exact 8-bit fields: masks are lost, high bits cut.
    icmp = (dl == ETH_TYPE_IP and proto == 1) or (dl == ETH_TYPE_IPV6 and proto == 58)
    fix_icmp = icmp and any(m.mask[i] and (m.mask[i] != 0xFFFF or m.values[i] > 0xFF) for i in (K.TP_SRC, K.TP_DST))
    if not drop and not fix_icmp:
        return m
    values, masks = list(m.values), list(m.mask)
    for i in drop:
        values[i] = masks[i] = 0
    if fix_icmp:
        for i in (K.TP_SRC, K.TP_DST):
            if masks[i]:
                values[i], masks[i] = values[i] & 0xFF, 0xFFFF
    return K.Match(tuple(values), tuple(masks))


_CT_TUPLE = (("ct_nw_src", K.CT_NW_SRC), ("ct_nw_dst", K.CT_NW_DST), ("ct_ipv6_src", K.CT_IPV6_SRC),
             ("ct_ipv6_dst", K.CT_IPV6_DST), ("ct_nw_proto", K.CT_NW_PROTO), ("ct_tp_src", K.CT_TP_SRC),
             ("ct_tp_dst", K.CT_TP_DST))


def prereq_error(m: K.Match) -> str | None:
    """The OpenFlow error the switch returns for this match, else None.

    ``OFPBMC_BAD_PREREQ`` (decoding the match) when a ct tuple field lacks ip/ipv6 or a
    valid ct_state; ``OFPBAC_MATCH_INCONSISTENT`` (the later consistency check) when the
    address family of ct_nw_*/ct_ipv6_* is not the match's (``ipv6,...,ct_nw_src=``)."""
    dl = _dl_type(m)
    used = [name for name, i in _CT_TUPLE if m.mask[i]]
    if any(not prereqs_ok(F.by_name(name), m) for name in used):  # type: ignore[arg-type]
        return "OFPBMC_BAD_PREREQ"
    for name in used:
        if (name in ("ct_nw_src", "ct_nw_dst") and dl != ETH_TYPE_IP) or (
                name in ("ct_ipv6_src", "ct_ipv6_dst") and dl != ETH_TYPE_IPV6):
            return "OFPBAC_MATCH_INCONSISTENT"
    return None


# ---------------------------------------------------------------------------
# Printing [match_format]

def _u32(name: str, v: int, mk: int, full: int) -> str:
    return f"{name}={F.hex_c(v)}" + ("" if mk == full else f"/{F.hex_c(mk)}")


def _u16(name: str, v: int, mk: int) -> str:
    return f"{name}={v}" if mk == 0xFFFF else f"{name}={v:#x}/{mk:#x}" if v else f"{name}=0x0/{mk:#x}"


def format_match(match: K.Match, priority: int = DEFAULT_PRIORITY, ports: F.PortNames | None = None,
                 names: bool = True) -> str:
    """A match as ``ovs-ofctl dump-flows`` prints it (without the trailing space)."""
    v, mk = match.values, match.mask
    out: list[str] = []
    put = out.append
    if priority != DEFAULT_PRIORITY:
        put(f"priority={priority}")
    if mk[K.PKT_MARK]:
        put(_u32("pkt_mark", v[K.PKT_MARK], mk[K.PKT_MARK], 0xFFFFFFFF))
    cs_mask = mk[K.CT_STATE] & 0xFF
    if cs_mask:
        if cs_mask == 0xFF:
            put("ct_state=" + F.format_flags(v[K.CT_STATE] & 0xFF, F.CT_STATE_NAMES))
        else:
            put("ct_state=" + F.format_flags_masked(v[K.CT_STATE], cs_mask, F.CT_STATE_NAMES, 0xFF))
    if mk[K.CT_ZONE]:
        z, zm = v[K.CT_ZONE], mk[K.CT_ZONE]
        put(f"ct_zone={z}" if zm == 0xFFFF else f"ct_zone={z:#x}/{zm:#x}")
    if mk[K.CT_MARK]:
        put(_u32("ct_mark", v[K.CT_MARK], mk[K.CT_MARK], 0xFFFFFFFF))
    if mk[K.CT_LABEL]:
        s = "ct_label=" + F.hex_ds(v[K.CT_LABEL])
        if mk[K.CT_LABEL] != K.EXACT[K.CT_LABEL]:
            s += "/" + F.hex_ds(mk[K.CT_LABEL])
        put(s)
    for name, i, six in (("ct_nw_src", K.CT_NW_SRC, False), ("ct_ipv6_src", K.CT_IPV6_SRC, True),
                         ("ct_nw_dst", K.CT_NW_DST, False), ("ct_ipv6_dst", K.CT_IPV6_DST, True)):
        if mk[i]:
            put(f"{name}=" + (F.format_ipv6_masked(v[i], mk[i]) if six else F.format_ipv4_masked(v[i], mk[i])))
    if mk[K.CT_NW_PROTO]:
        put(f"ct_nw_proto={v[K.CT_NW_PROTO]}")
        for name, i in (("ct_tp_src", K.CT_TP_SRC), ("ct_tp_dst", K.CT_TP_DST)):
            if mk[i]:
                put(_u16(name, v[i], mk[i]))
    dl_type = v[K.DL_TYPE]
    skip_type = skip_proto = False
    if mk[K.DL_TYPE]:
        skip_type = True
        proto_masked = bool(mk[K.NW_PROTO])
        if dl_type in (ETH_TYPE_IP, ETH_TYPE_IPV6):
            table, base = (_SHORT_IP, "ip") if dl_type == ETH_TYPE_IP else (_SHORT_IP6, "ipv6")
            name = table.get(v[K.NW_PROTO]) if proto_masked else None
            skip_proto = name is not None
            put(name or base)
        elif dl_type in _SHORT_OTHER:
            put(_SHORT_OTHER[dl_type])
        else:
            skip_type = False
    for r in range(16):
        i = K.REG0 + r
        if mk[i]:
            put(_u32(f"reg{r}", v[i], mk[i], 0xFFFFFFFF))
    if mk[K.METADATA]:
        put(_u32("metadata", v[K.METADATA], mk[K.METADATA], K.EXACT[K.METADATA]))
    if mk[K.IN_PORT]:
        put("in_port=" + F.format_port(v[K.IN_PORT], ports, names))
    tci, tmask = v[K.VLAN_TCI], mk[K.VLAN_TCI] & 0xFFFF
    if tmask:
        vid_m, pcp_m = tmask & _VID, tmask & _PCP
        if (tmask & _CFI and tci & _CFI and vid_m in (0, _VID) and pcp_m in (0, _PCP) and (vid_m or pcp_m)):
            if vid_m:
                put(f"dl_vlan={tci & _VID}")
            if pcp_m:
                put(f"dl_vlan_pcp={tci >> 13}")
        elif tmask == 0xFFFF:
            put(f"vlan_tci=0x{tci:04x}")
        else:
            put(f"vlan_tci=0x{tci:04x}/0x{tmask:04x}")
    if mk[K.DL_SRC]:
        put("dl_src=" + F.format_mac_masked(v[K.DL_SRC], mk[K.DL_SRC]))
    if mk[K.DL_DST]:
        put("dl_dst=" + F.format_mac_masked(v[K.DL_DST], mk[K.DL_DST]))
    if not skip_type and mk[K.DL_TYPE]:
        put(f"dl_type=0x{dl_type:04x}")
    is_arp = dl_type in (ETH_TYPE_ARP, ETH_TYPE_RARP)
    if dl_type == ETH_TYPE_IPV6:
        for name, i in (("ipv6_src", K.IPV6_SRC), ("ipv6_dst", K.IPV6_DST)):
            if mk[i]:
                put(f"{name}=" + F.format_ipv6_masked(v[i], mk[i]))
        if mk[K.IPV6_LABEL]:
            lm = mk[K.IPV6_LABEL]
            put(f"ipv6_label=0x{v[K.IPV6_LABEL]:05x}" + ("" if lm == 0xFFFFF else f"/0x{lm:05x}"))
    else:
        srcn, dstn = ("arp_spa", "arp_tpa") if is_arp else ("nw_src", "nw_dst")
        if mk[K.NW_SRC]:
            put(f"{srcn}=" + F.format_ipv4_masked(v[K.NW_SRC], mk[K.NW_SRC]))
        if mk[K.NW_DST]:
            put(f"{dstn}=" + F.format_ipv4_masked(v[K.NW_DST], mk[K.NW_DST]))
    if not skip_proto and mk[K.NW_PROTO]:
        put(("arp_op=" if is_arp else "nw_proto=") + str(v[K.NW_PROTO]))
    if is_arp:
        if mk[K.ARP_SHA]:
            put("arp_sha=" + F.format_mac_masked(v[K.ARP_SHA], mk[K.ARP_SHA]))
        if mk[K.ARP_THA]:
            put("arp_tha=" + F.format_mac_masked(v[K.ARP_THA], mk[K.ARP_THA]))
    if mk[K.NW_TOS] & 0xFC:
        put(f"nw_tos={v[K.NW_TOS] & 0xFC}")
    if mk[K.NW_ECN] & 0x3:
        put(f"nw_ecn={v[K.NW_ECN] & 0x3}")
    if mk[K.NW_TTL]:
        put(f"nw_ttl={v[K.NW_TTL]}")
    fm, fv = mk[K.NW_FRAG] & 3, v[K.NW_FRAG]
    if fm == 3:
        put("nw_frag=" + (("later" if fv & 2 else "first") if fv & 1 else ("<error>" if fv & 2 else "no")))
    elif fm == 1:
        put("nw_frag=" + ("yes" if fv & 1 else "no"))
    elif fm == 2:
        put("nw_frag=" + ("later" if fv & 2 else "not_later"))
    proto = v[K.NW_PROTO]
    if (dl_type == ETH_TYPE_IP and proto == 1) or (dl_type == ETH_TYPE_IPV6 and proto == 58):
        names_l4 = ("icmp_type", "icmp_code")
    else:
        names_l4 = ("tp_src", "tp_dst")
    for name, i in zip(names_l4, (K.TP_SRC, K.TP_DST), strict=True):
        if mk[i]:
            put(_u16(name, v[i], mk[i]))
    if dl_type in (ETH_TYPE_IP, ETH_TYPE_IPV6) and proto == 6 and mk[K.TCP_FLAGS]:
        put("tcp_flags=" + F.format_flags_masked(v[K.TCP_FLAGS], mk[K.TCP_FLAGS] & F.TCP_FLAGS_ALL,
                                                   F.TCP_FLAG_NAMES, F.TCP_FLAGS_ALL))
    return ",".join(out)
