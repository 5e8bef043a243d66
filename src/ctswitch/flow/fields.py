"""The OpenFlow field table: names, aliases, key slots, widths, value syntax.

Theory of operation
-------------------
Every field ovs-ofctl accepts in a match, a ``set_field``/``load``/``move``
action or a ``ct(zone=...)`` subfield is one ``Field`` row in ``FIELDS``.
A row says where the field lives in the flow key (``index`` into
``flow.key``; ``shift``/``bits`` for fields that own only some bits of a key
slot, such as ``ip_dscp`` inside NW_TOS or ``dl_vlan`` inside VLAN_TCI), how
wide OVS declares it (``n_bits``/``n_bytes``, used for subfield bounds and
error messages), whether it takes a mask, its prerequisite, its NXM/OXM name
and its value syntax (``kind``).

Value syntax is a table too: ``PARSERS[kind](field, text, ports)`` returns
``(value, mask)`` in *field* units (not yet shifted into the key slot) or
raises ``FieldError`` with OVS's wording (``1.2.3: invalid IP address``);
``format_value(field, value, mask, ports, names)`` prints a value the way
``mf_format`` does (used by ``set_field`` printing).  Match printing, which
has its own per-field rules, lives in ``match_syntax``.

Lookup: ``by_name(name)`` knows canonical names and aliases (``dl_src``,
``tp_dst``, ...); ``by_nxm(name)`` knows NXM/OXM names (``NXM_NX_REG0``,
``NXM_NX_CT_LABEL``...) and canonical names, as subfield syntax allows.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Protocol

from . import key as K
from .actions import RESERVED_NAMES, RESERVED_PORTS


class FlowSyntaxError(ValueError):
    """Bad ovs-ofctl flow/field/action text; ``str()`` is OVS's own message (the CLI
    prints ``ovs-ofctl: <msg>``).  Re-exported by ``ofctl_syntax``."""


FieldError = FlowSyntaxError  # a field value did not parse


class PortNames(Protocol):
    """Port name <-> OpenFlow port number lookup (a bridge's port map)."""

    def number(self, name: str) -> int | None: ...

    def name(self, number: int) -> str | None: ...


class DictPorts:
    """A ``PortNames`` backed by a dict ``{name: number}`` (tests, the oracle cases)."""

    def __init__(self, ports: dict[str, int] | None = None) -> None:
        self._by_name = dict(ports or {})
        self._by_number = {v: k for k, v in self._by_name.items()}

    def number(self, name: str) -> int | None:
        return self._by_name.get(name)

    def name(self, number: int) -> str | None:
        return self._by_number.get(number)


NO_PORTS = DictPorts()

# Prerequisite codes (checked by match_syntax.prereqs_ok).
P_NONE, P_ETH, P_IP, P_IPV4, P_IPV6, P_ARP = "", "eth", "ip", "ipv4", "ipv6", "arp"
P_TCP, P_UDP, P_SCTP, P_L4, P_ICMP, P_ICMPV6, P_CT = "tcp", "udp", "sctp", "l4", "icmp", "icmpv6", "ct"


@dataclass(frozen=True, slots=True)
class Field:
    """One OpenFlow field (see the module docstring)."""

    name: str  # canonical OVS name (mf->name), used in messages and set_field printing
    aliases: tuple[str, ...]
    index: int  # flow-key slot (flow.key constants)
    n_bits: int  # width OVS declares (subfield bounds)
    n_bytes: int  # OVS storage size (error messages)
    maskable: bool
    kind: str  # value syntax: decimal, hex, mac, ipv4, ipv6, port, frag, tcp_flags, ct_state
    prereq: str = P_NONE
    nxm: str = ""  # NXM/OXM name printed in subfields; "" prints ``name``
    shift: int = 0  # field bit 0 is key bit ``shift`` of the slot
    writable: bool = True

    @property
    def slot_mask(self) -> int:
        """The key-slot bits this field owns."""
        return ((1 << self.n_bits) - 1) << self.shift


def _f(name, aliases, index, n_bits, n_bytes, maskable, kind, prereq=P_NONE, nxm="", shift=0, writable=True):
    return Field(name, tuple(aliases), index, n_bits, n_bytes, maskable, kind, prereq, nxm, shift, writable)


FIELDS: tuple[Field, ...] = (
    _f("in_port", (), K.IN_PORT, 16, 2, False, "port", nxm="NXM_OF_IN_PORT"),
    _f("metadata", (), K.METADATA, 64, 8, True, "hex", nxm="OXM_OF_METADATA"),
    _f("pkt_mark", (), K.PKT_MARK, 32, 4, True, "hex", nxm="NXM_NX_PKT_MARK"),
    _f("ct_state", (), K.CT_STATE, 32, 4, True, "ct_state", nxm="NXM_NX_CT_STATE", writable=False),
    _f("ct_zone", (), K.CT_ZONE, 16, 2, False, "hex", nxm="NXM_NX_CT_ZONE", writable=False),
    _f("ct_mark", (), K.CT_MARK, 32, 4, True, "hex", nxm="NXM_NX_CT_MARK"),
    _f("ct_label", (), K.CT_LABEL, 128, 16, True, "hex", nxm="NXM_NX_CT_LABEL"),
    _f("ct_nw_proto", (), K.CT_NW_PROTO, 8, 1, False, "decimal", P_CT, "NXM_NX_CT_NW_PROTO", writable=False),
    _f("ct_nw_src", (), K.CT_NW_SRC, 32, 4, True, "ipv4", P_CT, "NXM_NX_CT_NW_SRC", writable=False),
    _f("ct_nw_dst", (), K.CT_NW_DST, 32, 4, True, "ipv4", P_CT, "NXM_NX_CT_NW_DST", writable=False),
    _f("ct_ipv6_src", (), K.CT_IPV6_SRC, 128, 16, True, "ipv6", P_CT, "NXM_NX_CT_IPV6_SRC", writable=False),
    _f("ct_ipv6_dst", (), K.CT_IPV6_DST, 128, 16, True, "ipv6", P_CT, "NXM_NX_CT_IPV6_DST", writable=False),
    _f("ct_tp_src", (), K.CT_TP_SRC, 16, 2, True, "decimal", P_CT, "NXM_NX_CT_TP_SRC", writable=False),
    _f("ct_tp_dst", (), K.CT_TP_DST, 16, 2, True, "decimal", P_CT, "NXM_NX_CT_TP_DST", writable=False),
    *(_f(f"reg{i}", (), K.REG0 + i, 32, 4, True, "hex", nxm=f"NXM_NX_REG{i}") for i in range(16)),
    _f("eth_src", ("dl_src",), K.DL_SRC, 48, 6, True, "mac", P_ETH, "NXM_OF_ETH_SRC"),
    _f("eth_dst", ("dl_dst",), K.DL_DST, 48, 6, True, "mac", P_ETH, "NXM_OF_ETH_DST"),
    _f("eth_type", ("dl_type",), K.DL_TYPE, 16, 2, False, "hex", P_ETH, "NXM_OF_ETH_TYPE", writable=False),
    _f("vlan_tci", (), K.VLAN_TCI, 16, 2, True, "hex", P_ETH, "NXM_OF_VLAN_TCI"),
    _f("dl_vlan", (), K.VLAN_TCI, 12, 2, False, "dl_vlan", P_ETH),
    _f("dl_vlan_pcp", (), K.VLAN_TCI, 3, 1, False, "dl_vlan_pcp", P_ETH, shift=13),
    _f("ip_src", ("nw_src",), K.NW_SRC, 32, 4, True, "ipv4", P_IPV4, "NXM_OF_IP_SRC"),
    _f("ip_dst", ("nw_dst",), K.NW_DST, 32, 4, True, "ipv4", P_IPV4, "NXM_OF_IP_DST"),
    _f("ipv6_src", (), K.IPV6_SRC, 128, 16, True, "ipv6", P_IPV6, "NXM_NX_IPV6_SRC"),
    _f("ipv6_dst", (), K.IPV6_DST, 128, 16, True, "ipv6", P_IPV6, "NXM_NX_IPV6_DST"),
    _f("ipv6_label", (), K.IPV6_LABEL, 20, 4, True, "hex", P_IPV6, "NXM_NX_IPV6_LABEL"),
    _f("nw_proto", ("ip_proto",), K.NW_PROTO, 8, 1, False, "decimal", P_IP, "NXM_OF_IP_PROTO", writable=False),
    # "nw_tos" is the whole TOS byte with the DSCP bits; "ip_dscp" is DSCP shifted down.
    _f("nw_tos", (), K.NW_TOS, 8, 1, False, "decimal", P_IP, "NXM_OF_IP_TOS"),
    _f("ip_dscp", (), K.NW_TOS, 6, 1, False, "decimal", P_IP, "OXM_OF_IP_DSCP", shift=2),
    _f("nw_ecn", ("ip_ecn",), K.NW_ECN, 2, 1, False, "decimal", P_IP, "NXM_NX_IP_ECN"),
    _f("nw_ttl", (), K.NW_TTL, 8, 1, False, "decimal", P_IP, "NXM_NX_IP_TTL"),
    _f("ip_frag", ("nw_frag",), K.NW_FRAG, 8, 1, True, "frag", P_IP, "NXM_NX_IP_FRAG", writable=False),
    _f("arp_op", (), K.NW_PROTO, 16, 2, False, "decimal", P_ARP, "NXM_OF_ARP_OP"),
    _f("arp_spa", (), K.NW_SRC, 32, 4, True, "ipv4", P_ARP, "NXM_OF_ARP_SPA"),
    _f("arp_tpa", (), K.NW_DST, 32, 4, True, "ipv4", P_ARP, "NXM_OF_ARP_TPA"),
    _f("arp_sha", (), K.ARP_SHA, 48, 6, True, "mac", P_ARP, "NXM_NX_ARP_SHA"),
    _f("arp_tha", (), K.ARP_THA, 48, 6, True, "mac", P_ARP, "NXM_NX_ARP_THA"),
    _f("tcp_src", ("tp_src",), K.TP_SRC, 16, 2, True, "decimal", P_TCP, "NXM_OF_TCP_SRC"),
    _f("tcp_dst", ("tp_dst",), K.TP_DST, 16, 2, True, "decimal", P_TCP, "NXM_OF_TCP_DST"),
    _f("tcp_flags", (), K.TCP_FLAGS, 12, 2, True, "tcp_flags", P_TCP, "NXM_NX_TCP_FLAGS", writable=False),
    _f("udp_src", (), K.TP_SRC, 16, 2, True, "decimal", P_UDP, "NXM_OF_UDP_SRC"),
    _f("udp_dst", (), K.TP_DST, 16, 2, True, "decimal", P_UDP, "NXM_OF_UDP_DST"),
    _f("sctp_src", (), K.TP_SRC, 16, 2, True, "decimal", P_SCTP, "OXM_OF_SCTP_SRC"),
    _f("sctp_dst", (), K.TP_DST, 16, 2, True, "decimal", P_SCTP, "OXM_OF_SCTP_DST"),
    _f("icmp_type", (), K.TP_SRC, 8, 1, False, "decimal", P_ICMP, "NXM_OF_ICMP_TYPE"),
    _f("icmp_code", (), K.TP_DST, 8, 1, False, "decimal", P_ICMP, "NXM_OF_ICMP_CODE"),
    _f("icmpv6_type", (), K.TP_SRC, 8, 1, False, "decimal", P_ICMPV6, "NXM_NX_ICMPV6_TYPE"),
    _f("icmpv6_code", (), K.TP_DST, 8, 1, False, "decimal", P_ICMPV6, "NXM_NX_ICMPV6_CODE"),
)

_BY_NAME: dict[str, Field] = {}
_BY_NXM: dict[str, Field] = {}
for _fld in FIELDS:
    _BY_NAME[_fld.name] = _fld
    for _a in _fld.aliases:
        _BY_NAME[_a] = _fld
    if _fld.nxm:
        _BY_NXM[_fld.nxm] = _fld


# Fields of OVS 3.1's meta-flow that ctswitch does not model: refused with a message that
# says so rather than "unknown keyword".  (recirc_id and dp_hash are parsed by ofctl_syntax:
# the switch refuses them from a controller, OFPBRC_EPERM, and so does ctswitch.)
UNSUPPORTED_FIELDS = frozenset((
    "packet_type", "conj_id", "tun_id", "tunnel_id", "tun_src", "tun_dst", "tun_ipv6_src", "tun_ipv6_dst",
    "tun_flags", "tun_ttl", "tun_tos", "tun_gbp_id", "tun_gbp_flags", "tun_erspan_idx", "tun_erspan_ver",
    "tun_erspan_dir", "tun_erspan_hwid", "tun_gtpu_flags", "tun_gtpu_msgtype", "in_port_oxm",
    "actset_output", "skb_priority", "vlan_vid", "vlan_pcp", "mpls_label", "mpls_tc", "mpls_bos",
    "mpls_ttl", "nd_target", "nd_sll", "nd_tll", "nd_reserved", "nd_options_type", "nsh_flags",
    "nsh_mdtype", "nsh_np", "nsh_spi", "nsp", "nsh_si", "nsi", "nsh_ttl",
    *(f"tun_metadata{i}" for i in range(64)), *(f"xreg{i}" for i in range(8)),
    *(f"xxreg{i}" for i in range(4)), *(f"nsh_c{i}" for i in range(1, 5)), *(f"nshc{i}" for i in range(1, 5)),
))


def by_name(name: str) -> Field | None:
    """The field called ``name`` (canonical or alias), or None."""
    return _BY_NAME.get(name)


def by_nxm(name: str) -> Field | None:
    """The field for an NXM/OXM name (``NXM_NX_REG0``, ``..._W`` too) or a field name."""
    f = _BY_NXM.get(name)
    if f is None and name.endswith("_W"):
        f = _BY_NXM.get(name[:-2])
    return f if f is not None else _BY_NAME.get(name)


def subfield_name(f: Field) -> str:
    """How OVS prints this field in a subfield (``mf_format_subfield``)."""
    return f.nxm or f.name


# ---------------------------------------------------------------------------
# Number syntax (OVS parse_int_string / str_to_uint)

def parse_int(text: str, n_bytes: int) -> int:
    """OVS ``parse_int_string``: ``0x`` hex of any length, else C strtoull base 0.

    Raises ValueError("syntax") or ValueError("range").
    """
    if text[:2] in ("0x", "0X"):
        digits = re.match(r"[0-9a-fA-F]*", text[2:]).group(0)  # type: ignore[union-attr]
        if len(digits) != len(text) - 2:
            raise ValueError("syntax")
        v = int(digits, 16) if digits else 0
    else:
        v = c_strtoull(text)
    if v >> (8 * n_bytes):
        raise ValueError("range")
    return v


def c_strtoull(text: str) -> int:
    """C ``strtoull(s, &end, 0)`` requiring the whole string: decimal, 0x hex, 0 octal.

    As in C, a leading ``-`` negates modulo 2**64 (``-1`` is 0xffffffffffffffff).
    """
    m = re.fullmatch(r"\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)", text)
    if not m:
        raise ValueError("syntax")
    s = m.group(2)
    if s[:2] in ("0x", "0X"):
        v = int(s, 16)
    elif s.startswith("0"):
        v = int(s, 8)
    else:
        v = int(s)
    if v >> 64:
        raise ValueError("range")  # ERANGE
    return (-v) & (2**64 - 1) if m.group(1) == "-" else v


def c_int(text: str) -> int | None:
    """C ``str_to_int(s, 0, ...)``: an int in range, or None."""
    m = re.fullmatch(r"\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)", text)
    if not m:
        return None
    s = m.group(2)
    v = int(s, 16) if s[:2] in ("0x", "0X") else int(s, 8) if s.startswith("0") else int(s)
    v = -v if m.group(1) == "-" else v
    return v if -(1 << 31) <= v < (1 << 31) else None


def c_uint10(text: str) -> int | None:
    """C ``str_to_uint(s, 10, ...)``: decimal unsigned (leading + allowed), or None."""
    m = re.fullmatch(r"\s*\+?([0-9]+)", text)
    if not m:
        return None
    v = int(m.group(1))
    return v if v < (1 << 32) else None


def hex_c(v: int) -> str:
    """C's ``%#x``: ``0x1f``, but ``0`` for zero."""
    return f"{v:#x}" if v else "0"


def hex_ds(v: int) -> str:
    """OVS ``ds_put_hex``: ``0x..`` without leading zero bytes, ``0`` for zero."""
    return f"{v:#x}" if v else "0"


# ---------------------------------------------------------------------------
# Addresses

_MAC_RE = re.compile(r"([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2}):"
                     r"([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})")
_IP_RE = re.compile(r"([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})")


def parse_mac(text: str) -> int | None:
    m = _MAC_RE.fullmatch(text)
    if not m:
        return None
    v = 0
    for g in m.groups():
        v = (v << 8) | int(g, 16)
    return v


def format_mac(v: int) -> str:
    return ":".join(f"{(v >> s) & 0xFF:02x}" for s in range(40, -8, -8))


_SCAN_U_RE = re.compile(r"\s*[+-]?[0-9]+")


def scan_uint(text: str, pos: int, bits: int) -> tuple[int, int] | None:
    """``ovs_scan``'s ``%hhu``/``%hu`` (``SCNu8``/``SCNu16``) at ``pos``: optional white space
    and sign, decimal digits of any length, the value truncated to ``bits`` as C stores it.
    Returns ``(value, end)`` or None."""
    m = _SCAN_U_RE.match(text, pos)
    if not m:
        return None
    v = int(m.group(0))
    if abs(v) >= 1 << 63:
        return None  # strtoimax: ERANGE
    return v & ((1 << bits) - 1), m.end()


def scan_ipv4(text: str, pos: int = 0) -> tuple[int, int] | None:
    """Scans ``IP_SCAN_FMT`` (four ``%hhu`` joined by dots, as ``ovs_scan`` does: ``1000``
    is stored as 232, ``-1`` as 255) at ``pos``: ``(address, end)`` or None."""
    v = 0
    for i in range(4):
        if i:
            if text[pos:pos + 1] != ".":
                return None
            pos += 1
        r = scan_uint(text, pos, 8)
        if r is None:
            return None
        v = (v << 8) | r[0]
        pos = r[1]
    return v, pos


def parse_ipv4(text: str) -> int | None:
    """glibc ``inet_pton(AF_INET)``: four decimal octets 0..255 without leading zeros."""
    m = _IP_RE.fullmatch(text)
    if not m or any(len(g) > 1 and g[0] == "0" for g in m.groups()):
        return None
    parts = [int(g) for g in m.groups()]
    if any(p > 255 for p in parts):
        return None
    return (parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]


def format_ipv4(v: int) -> str:
    return f"{v >> 24 & 255}.{v >> 16 & 255}.{v >> 8 & 255}.{v & 255}"


def parse_ipv6(text: str) -> int | None:
    if not text or not re.fullmatch(r"[0-9a-fA-F:.]+", text):
        return None
    try:
        return int(ipaddress.IPv6Address(text))
    except ValueError:
        return None


def format_ipv6(v: int) -> str:
    """glibc ``inet_ntop(AF_INET6)``: RFC 5952 compression, dotted tail for mapped/compatible."""
    words = [(v >> (112 - 16 * i)) & 0xFFFF for i in range(8)]
    if words[:5] == [0] * 5 and words[5] == 0xFFFF:
        return "::ffff:" + format_ipv4(v & 0xFFFFFFFF)
    if words[:6] == [0] * 6 and (words[6] or words[7] > 1):
        return "::" + format_ipv4(v & 0xFFFFFFFF)
    best, best_len, i = -1, 1, 0
    while i < 8:
        if words[i] == 0:
            j = i
            while j < 8 and words[j] == 0:
                j += 1
            if j - i > best_len:
                best, best_len = i, j - i
            i = j
        else:
            i += 1
    hexw = [f"{w:x}" for w in words]
    if best < 0:
        return ":".join(hexw)
    return ":".join(hexw[:best]) + "::" + ":".join(hexw[best + best_len:])


def cidr_len(mask: int, width: int) -> int | None:
    """Prefix length when ``mask`` is a CIDR mask of ``width`` bits, else None."""
    inv = ~mask & ((1 << width) - 1)
    if inv & (inv + 1):
        return None
    return width - inv.bit_length()


def format_ipv4_masked(v: int, mask: int) -> str:
    """``ip_format_masked``: ``10.0.0.0/24`` for CIDR masks, dotted mask otherwise."""
    s = format_ipv4(v)
    if mask != 0xFFFFFFFF:
        n = cidr_len(mask, 32)
        s += f"/{n}" if n is not None else "/" + format_ipv4(mask)
    return s


def format_ipv6_masked(v: int, mask: int) -> str:
    s = format_ipv6(v)
    if mask != (1 << 128) - 1:
        n = cidr_len(mask, 128)
        s += f"/{n}" if n is not None else "/" + format_ipv6(mask)
    return s


def format_mac_masked(v: int, mask: int) -> str:
    s = format_mac(v)
    if mask != (1 << 48) - 1:
        s += "/" + format_mac(mask)
    return s


# ---------------------------------------------------------------------------
# Ports

def parse_port(text: str, ports: PortNames) -> int | None:
    """``ofputil_port_from_string``: a number, a reserved name (any case), a port name
    (optionally JSON-quoted).  Returns the OpenFlow 1.0 port number or None."""
    if text.startswith("-"):
        return None
    n = c_uint10(text)
    if n is not None:
        if n < 0x10000:
            return n
        if n >= 0xFFFFFF00:
            return n - 0xFFFF0000
        return None
    upper = text.upper()
    if upper in RESERVED_PORTS:
        return RESERVED_PORTS[upper]
    name = text
    if text.startswith('"'):
        if len(text) < 2 or not text.endswith('"'):
            return None
        name = text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    num = ports.number(name)
    return num if num is not None and num != 0xFFFF else None


def _needs_quotes(name: str) -> bool:
    return not (name[:1].isascii() and name[:1].isalpha() and all(c.isascii() and c.isalnum() for c in name))


def format_port(port: int, ports: PortNames | None, names: bool = True) -> str:
    """``ofputil_format_port``: reserved names upper-case, then the port's name (quoted
    unless alphanumeric starting with a letter) when ``names``, else the number."""
    reserved = RESERVED_NAMES.get(port)
    if reserved is not None:
        return "ANY" if reserved == "NONE" else reserved
    if names and ports is not None:
        name = ports.name(port)
        if name is not None:
            if _needs_quotes(name):
                return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
            return name
    return str(port)


# ---------------------------------------------------------------------------
# Flags (ct_state, tcp_flags): OVS parse_flags

CT_STATE_NAMES = {bit: name for name, bit in K.CS_NAMES}
CT_STATE_SUPPORTED = 0xFF
TCP_FLAG_NAMES = {0x1: "fin", 0x2: "syn", 0x4: "rst", 0x8: "psh", 0x10: "ack", 0x20: "urg",
                  0x40: "ece", 0x80: "cwr", 0x100: "ns", 0x200: "[200]", 0x400: "[400]", 0x800: "[800]"}
TCP_FLAGS_ALL = 0xFFF


def parse_flags(s: str, names: dict[int, str], field_name: str, allowed: int) -> tuple[int, int]:
    """``+a-b`` (masked), ``a|b`` or numbers (exact), ``0xV/0xM``.  Returns (flags, mask);
    an exact form gives mask 0xFFFFFFFF."""
    unknown = FieldError(f"{s}: unknown {field_name} flag(s)")
    m = re.fullmatch(r"\s*([+-]?(?:0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*))"
                     r"/\s*([+-]?(?:0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*))", s)
    if m:
        v, mk = c_int(m.group(1)), c_int(m.group(2))
        if v is None or mk is None:
            raise unknown
        v &= 0xFFFFFFFF
        mk &= 0xFFFFFFFF
        if v & ~allowed or mk & ~allowed:
            raise unknown
        return v, mk
    by_name = sorted(names.items())
    if s[:1] in ("+", "-"):
        flags = mask = 0
        rest = s
        while rest:
            if rest[0] not in "+-":
                raise FieldError(f"{rest}: {field_name} must be preceded by '+' (for SET) or '-' (NOT SET)")
            is_set = rest[0] == "+"
            rest = rest[1:]
            for bit, name in by_name:
                if rest.startswith(name) and rest[len(name):len(name) + 1] in ("", "+", "-"):
                    if mask & bit:
                        raise FieldError(f"{rest}: Each {field_name} flag can be specified only once")
                    if not bit & allowed:
                        raise FieldError(f"{rest}: unknown {field_name} flag(s)")
                    if is_set:
                        flags |= bit
                    mask |= bit
                    rest = rest[len(name):]
                    break
            else:
                raise FieldError(f"{rest}: unknown {field_name} flag(s)")
        return flags, mask
    result = 0
    pos = 0
    while pos < len(s):
        m = re.match(r"[+-]?(?:0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)", s[pos:])
        if m:
            v = c_int(m.group(0)) or 0
            if v & ~allowed:
                raise unknown
            result |= v
            pos += m.end()
            if s[pos:pos + 1] == "|":
                pos += 1
            continue
        for bit, name in by_name:
            if s.startswith(name, pos) and s[pos + len(name):pos + len(name) + 1] in ("", "|"):
                if not bit & allowed:
                    raise unknown
                result |= bit
                pos += len(name) + (s[pos + len(name):pos + len(name) + 1] == "|")
                break
        else:
            raise unknown
    return result, 0xFFFFFFFF


def format_flags(flags: int, names: dict[int, str]) -> str:
    """``format_flags(..., '|')``: ``new|trk``, ``0`` when empty, unknown bits as hex."""
    if not flags:
        return "0"
    out, bad = [], 0
    bit = 1
    while flags >= bit:
        if flags & bit:
            if bit in names:
                out.append(names[bit])
            else:
                bad |= bit
        bit <<= 1
    if bad:
        out.append(f"{bad:#x}")
    return "|".join(out)


def format_flags_masked(flags: int, mask: int, names: dict[int, str], full: int) -> str:
    """``format_flags_masked``: ``a|b`` under a full mask, else ``+a-b`` in bit order."""
    if mask == full:
        return format_flags(flags, names)
    if not mask:
        return "0/0"
    out = []
    bit = 1
    while mask >= bit:
        if mask & bit:
            out.append(("+" if flags & bit else "-") + names.get(bit, "[Unknown]"))
        bit <<= 1
    return "".join(out)


# ---------------------------------------------------------------------------
# Value parsers: (field, text, ports) -> (value, mask) in field units

FRAG_TYPES = (("no", 3, 0), ("first", 3, 1), ("later", 3, 3), ("no", 1, 0), ("yes", 1, 1),
              ("not_later", 2, 0), ("later", 2, 2))


def _p_integer(f: Field, s: str, ports: PortNames) -> tuple[int, int]:
    full = (1 << (8 * f.n_bytes)) - 1
    vtext, slash, mtext = s.partition("/")
    try:
        what = "value"
        v = parse_int(vtext, f.n_bytes)
        what = "mask"
        mk = parse_int(mtext, f.n_bytes) if slash else full
    except ValueError as e:
        if str(e) == "range":
            raise FieldError(f"{s}: {what} too large for {f.n_bytes}-byte field {f.name}") from None
        raise FieldError(f"{s}: bad syntax for {f.name} {what}") from None
    return v, mk


def _p_mac(f: Field, s: str, ports: PortNames) -> tuple[int, int]:
    vtext, slash, mtext = s.partition("/")
    v = parse_mac(vtext)
    mk = parse_mac(mtext) if slash else (1 << 48) - 1
    if v is None or mk is None:
        raise FieldError(f"{s}: invalid Ethernet address")
    return v, mk


def _p_ipv4(f: Field, s: str, ports: PortNames) -> tuple[int, int]:
    r = scan_ipv4(s)
    if r is None:
        raise FieldError(f"{s}: invalid IP address")
    v, end = r
    if end == len(s):
        return v, 0xFFFFFFFF
    if s[end] == "/":
        mr = scan_ipv4(s, end + 1)
        if mr is not None and mr[1] == len(s):
            return v, mr[0]
        m = re.fullmatch(r"\s*([+-]?[0-9]+)", s[end + 1:])
        if m:
            n = int(m.group(1))
            if not 0 <= n <= 32:
                raise FieldError(f"{s}: IPv4 network prefix bits not between 0 and 32, inclusive")
            return v, (0xFFFFFFFF << (32 - n)) & 0xFFFFFFFF
    raise FieldError(f"{s}: invalid IP address")


def _p_ipv6(f: Field, s: str, ports: PortNames) -> tuple[int, int]:
    vtext, slash, mtext = s.partition("/")
    v = parse_ipv6(vtext)
    if v is None:
        raise FieldError(f"{s}: invalid IPv6 address")
    if not slash:
        return v, (1 << 128) - 1
    if re.fullmatch(r"[+-]?[0-9]+", mtext):
        n = int(mtext)
        if not 0 <= n <= 128:
            raise FieldError(f"{s}: IPv6 network prefix bits not between 0 and 128, inclusive")
        return v, ((1 << 128) - 1) ^ ((1 << (128 - n)) - 1)
    mk = parse_ipv6(mtext)
    if mk is None:
        raise FieldError(f"{s}: Invalid IPv6 mask")
    return v, mk


def _p_port(f: Field, s: str, ports: PortNames) -> tuple[int, int]:
    p = parse_port(s, ports)
    if p is None:
        raise FieldError(f"{s}: invalid or unknown port for {f.name}")
    return p, 0xFFFF


def _p_frag(f: Field, s: str, ports: PortNames) -> tuple[int, int]:
    for name, mask, value in FRAG_TYPES:
        if s.lower() == name:
            return value, mask | 0xFC
    raise FieldError(f'{s}: unknown fragment type (valid types are "no", "yes", "first", "later", "not_later"')


def _p_tcp_flags(f: Field, s: str, ports: PortNames) -> tuple[int, int]:
    return parse_flags(s, TCP_FLAG_NAMES, "TCP", 0xFFFF)


def _p_ct_state(f: Field, s: str, ports: PortNames) -> tuple[int, int]:
    return parse_flags(s, CT_STATE_NAMES, "ct_state", CT_STATE_SUPPORTED)


PARSERS = {
    "decimal": _p_integer, "hex": _p_integer, "dl_vlan": _p_integer, "dl_vlan_pcp": _p_integer,
    "mac": _p_mac, "ipv4": _p_ipv4, "ipv6": _p_ipv6, "port": _p_port, "frag": _p_frag,
    "tcp_flags": _p_tcp_flags, "ct_state": _p_ct_state,
}


def parse_value(f: Field, s: str, ports: PortNames = NO_PORTS) -> tuple[int, int]:
    """``mf_parse``: ``*`` is a wildcard; a mask on a non-maskable field is an error."""
    if s == "*":
        return 0, 0
    v, mk = PARSERS[f.kind](f, s, ports)
    full = (1 << (8 * f.n_bytes)) - 1
    if f.kind in ("frag",):
        pass
    elif not f.maskable and mk & full not in (0, full):
        raise FieldError(f"{s}: invalid mask for field {f.name}")
    return v, mk


def format_value(f: Field, value: int, mask: int | None, ports: PortNames | None = None,
                 names: bool = True) -> str:
    """``mf_format``: the value (and mask when not exact) in the field's syntax."""
    full = (1 << (8 * f.n_bytes)) - 1
    if mask is not None:
        if mask == 0:
            return "ANY"
        if mask & full == full:
            mask = None
    k = f.kind
    if k == "port" and mask is None:
        return format_port(value, ports, names)
    if k in ("hex",):
        s = hex_ds(value)
        return s if mask is None else f"{s}/{hex_ds(mask)}"
    if k in ("decimal", "dl_vlan", "dl_vlan_pcp", "port"):
        return str(value) if mask is None else f"{value}/{hex_ds(mask)}"
    if k == "mac":
        return format_mac_masked(value, (1 << 48) - 1 if mask is None else mask)
    if k == "ipv4":
        return format_ipv4_masked(value, 0xFFFFFFFF if mask is None else mask)
    if k == "ipv6":
        return format_ipv6_masked(value, (1 << 128) - 1 if mask is None else mask)
    if k == "ct_state":
        return format_flags_masked(value, 0xFFFFFFFF if mask is None else mask, CT_STATE_NAMES, 0xFFFF)
    if k == "tcp_flags":
        return format_flags_masked(value, (0xFFFF if mask is None else mask) & TCP_FLAGS_ALL,
                                   TCP_FLAG_NAMES, TCP_FLAGS_ALL)
    if k == "frag":
        m = (0xFF if mask is None else mask) & 3
        for name, fm, fv in FRAG_TYPES:
            if fm == m and fv == value & m:
                return name
        return "<error>"
    return str(value)
