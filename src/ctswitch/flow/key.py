"""FlowKey: the fields of one packet as the OpenFlow pipeline sees them.

Theory of operation
-------------------
A flow key is a plain ``list`` of ints indexed by the constants below (one slot
per OpenFlow field; IPv6 addresses are 128-bit ints, MACs 48-bit, ct_label
128-bit).  ``extract`` fills it from a parsed ``Packet``; translation (xlate)
copies and modifies it as actions run (``set_field``, NAT, ct() results), and the
differences against the original are written back into the frame on output,
the way OVS commits "set" datapath actions.

A ``Match`` is a pair of tuples (values, mask) of length N_FIELDS with
``values[i] & ~mask[i] == 0``.  Masks are per-bit, so CIDR, dotted and
arbitrary bitwise masks are the same thing here.

Rule: the order of these constants is the contract shared by the classifier,
the syntax tables (flow/fields.py) and xlate.  Add fields at the end.
"""

from __future__ import annotations

from ..packet.headers import ETH_TYPE_ARP, ETH_TYPE_IP, ETH_TYPE_IPV6, Packet

(
    IN_PORT, DL_SRC, DL_DST, DL_TYPE, VLAN_TCI,
    NW_SRC, NW_DST, IPV6_SRC, IPV6_DST, IPV6_LABEL,
    NW_PROTO, NW_TOS, NW_ECN, NW_TTL, NW_FRAG,
    TP_SRC, TP_DST, TCP_FLAGS, ARP_SHA, ARP_THA,
    CT_STATE, CT_ZONE, CT_MARK, CT_LABEL,
    CT_NW_SRC, CT_NW_DST, CT_IPV6_SRC, CT_IPV6_DST, CT_NW_PROTO, CT_TP_SRC, CT_TP_DST,
    METADATA, PKT_MARK,
    REG0, REG1, REG2, REG3, REG4, REG5, REG6, REG7,
    REG8, REG9, REG10, REG11, REG12, REG13, REG14, REG15,
    N_FIELDS,
) = range(50)

# Bit widths, for masks ("exact" = all ones of this width).
WIDTH = [0] * N_FIELDS
for _i, _w in (
    (IN_PORT, 32), (DL_SRC, 48), (DL_DST, 48), (DL_TYPE, 16), (VLAN_TCI, 16),
    (NW_SRC, 32), (NW_DST, 32), (IPV6_SRC, 128), (IPV6_DST, 128), (IPV6_LABEL, 20),
    (NW_PROTO, 8), (NW_TOS, 8), (NW_ECN, 8), (NW_TTL, 8), (NW_FRAG, 8),
    (TP_SRC, 16), (TP_DST, 16), (TCP_FLAGS, 16), (ARP_SHA, 48), (ARP_THA, 48),
    (CT_STATE, 32), (CT_ZONE, 16), (CT_MARK, 32), (CT_LABEL, 128),
    (CT_NW_SRC, 32), (CT_NW_DST, 32), (CT_IPV6_SRC, 128), (CT_IPV6_DST, 128),
    (CT_NW_PROTO, 8), (CT_TP_SRC, 16), (CT_TP_DST, 16),
    (METADATA, 64), (PKT_MARK, 32),
):
    WIDTH[_i] = _w
for _r in range(16):
    WIDTH[REG0 + _r] = 32
EXACT = tuple((1 << w) - 1 for w in WIDTH)
ZERO = (0,) * N_FIELDS

# VLAN_TCI carries the 802.1Q CFI/present bit (0x1000) when a tag is present, as OVS does.
VLAN_CFI = 0x1000

# ct_state bits (OpenFlow and the kernel's OVS_CS_F_* agree).
CS_NEW = 0x01
CS_EST = 0x02
CS_REL = 0x04
CS_RPL = 0x08
CS_INV = 0x10
CS_TRK = 0x20
CS_SNAT = 0x40
CS_DNAT = 0x80
CS_NAMES = (("new", CS_NEW), ("est", CS_EST), ("rel", CS_REL), ("rpl", CS_RPL),
            ("inv", CS_INV), ("trk", CS_TRK), ("snat", CS_SNAT), ("dnat", CS_DNAT))


def extract(pkt: Packet, in_port: int) -> list[int]:
    """Builds the flow key of a parsed packet arriving on OpenFlow port ``in_port``.

    ct_* fields, registers and metadata start at 0 (untracked).  For ARP,
    NW_SRC/NW_DST hold the SPA/TPA and NW_PROTO the opcode (low 8 bits), as in OVS.

    The key is one list display in the order of the field constants above (it runs once per
    slow-path packet: one allocation, where filling a ``[0] * N_FIELDS`` list stores field by
    field; tests/unit/flow/test_key_extract.py holds it to the field-by-field original).
    """
    vlans = pkt.vlans
    tci = vlans[0] | VLAN_CFI if vlans else 0
    dl_type = pkt.dl_type
    if dl_type == ETH_TYPE_IP and pkt.ip_ver == 4:  # almost every packet: the display below, for IPv4
        tos = pkt.nw_tos
        return [
            in_port, pkt.dl_src, pkt.dl_dst, dl_type, tci,  # IN_PORT .. VLAN_TCI
            pkt.nw_src, pkt.nw_dst, 0, 0, 0,  # NW_SRC .. IPV6_LABEL
            pkt.nw_proto, tos & 0xFC, tos & 0x03, pkt.nw_ttl, pkt.nw_frag,  # NW_PROTO .. NW_FRAG
            pkt.tp_src, pkt.tp_dst, pkt.tcp_flags, 0, 0,  # TP_SRC .. ARP_THA
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  # CT_STATE .. CT_TP_DST
            0, 0,  # METADATA, PKT_MARK
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  # REG0 .. REG15
        ]
    nw_src = nw_dst = ip6_src = ip6_dst = label = proto = tos = ecn = ttl = frag = 0
    tp_src = tp_dst = flags = sha = tha = 0
    if dl_type == ETH_TYPE_IP or dl_type == ETH_TYPE_IPV6:
        ver = pkt.ip_ver
        if ver == 4:
            nw_src = pkt.nw_src
            nw_dst = pkt.nw_dst
        elif ver == 6:
            ip6_src = pkt.nw_src
            ip6_dst = pkt.nw_dst
            label = pkt.ipv6_label
        proto = pkt.nw_proto
        tos = pkt.nw_tos & 0xFC
        ecn = pkt.nw_tos & 0x03
        ttl = pkt.nw_ttl
        frag = pkt.nw_frag
        tp_src = pkt.tp_src
        tp_dst = pkt.tp_dst
        flags = pkt.tcp_flags
    elif dl_type == ETH_TYPE_ARP:
        nw_src = pkt.nw_src
        nw_dst = pkt.nw_dst
        proto = pkt.arp_op & 0xFF
        sha = pkt.arp_sha
        tha = pkt.arp_tha
    return [
        in_port, pkt.dl_src, pkt.dl_dst, dl_type, tci,  # IN_PORT .. VLAN_TCI
        nw_src, nw_dst, ip6_src, ip6_dst, label,  # NW_SRC .. IPV6_LABEL
        proto, tos, ecn, ttl, frag,  # NW_PROTO .. NW_FRAG
        tp_src, tp_dst, flags, sha, tha,  # TP_SRC .. ARP_THA
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  # CT_STATE .. CT_TP_DST
        0, 0,  # METADATA, PKT_MARK
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  # REG0 .. REG15
    ]


class Match:
    """A masked match over the flow key: ``values`` and ``mask`` tuples of N_FIELDS ints.

    Invariant: ``values[i] & ~mask[i] == 0`` for every i.
    """

    __slots__ = ("values", "mask", "_hash")

    def __init__(self, values: tuple[int, ...] = ZERO, mask: tuple[int, ...] = ZERO) -> None:
        self.values = tuple(v & m for v, m in zip(values, mask, strict=True))
        self.mask = tuple(mask)
        self._hash = hash((self.values, self.mask))

    def matches(self, key: list[int]) -> bool:
        """True when ``key`` agrees with this match on every masked bit (the slow, obvious way)."""
        for v, m, k in zip(self.values, self.mask, key):
            if m and (k & m) != v:
                return False
        return True

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Match) and self.values == other.values and self.mask == other.mask

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        items = [f"{i}:{v:#x}/{m:#x}" for i, (v, m) in enumerate(zip(self.values, self.mask)) if m]
        return f"Match({', '.join(items)})"
