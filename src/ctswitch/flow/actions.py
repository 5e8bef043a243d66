"""OpenFlow actions as small frozen records.

Theory of operation
-------------------
``flow/ofctl_syntax.py`` turns ovs-ofctl action text into a list of these records
and back; ``ofproto/xlate.py`` interprets them.  An empty action list means drop
(printed ``drop``).  Records are frozen and hashable so rules can be compared
and round-tripped (parse -> print -> parse gives an equal list).

Port numbers use OpenFlow 1.0's 16-bit reserved values (as ovs-ofctl prints
them by name): IN_PORT, TABLE, NORMAL, FLOOD, ALL, CONTROLLER, LOCAL, NONE.
"""

from __future__ import annotations

from dataclasses import dataclass, field

OFPP_MAX = 0xFF00
OFPP_IN_PORT = 0xFFF8
OFPP_TABLE = 0xFFF9
OFPP_NORMAL = 0xFFFA
OFPP_FLOOD = 0xFFFB
OFPP_ALL = 0xFFFC
OFPP_CONTROLLER = 0xFFFD
OFPP_LOCAL = 0xFFFE
OFPP_NONE = 0xFFFF

RESERVED_PORTS = {
    "IN_PORT": OFPP_IN_PORT, "TABLE": OFPP_TABLE, "NORMAL": OFPP_NORMAL,
    "FLOOD": OFPP_FLOOD, "ALL": OFPP_ALL, "CONTROLLER": OFPP_CONTROLLER,
    "LOCAL": OFPP_LOCAL, "NONE": OFPP_NONE, "ANY": OFPP_NONE,
}
RESERVED_NAMES = {v: k for k, v in RESERVED_PORTS.items() if k != "ANY"}


@dataclass(frozen=True, slots=True)
class Subfield:
    """A bit range of a field: ``NXM_NX_REG0[0..15]`` is Subfield("reg0", 0, 16)."""

    field: str  # canonical field name (flow/fields.py), e.g. "reg0", "ct_mark"
    ofs: int  # first bit, counted from the least significant bit
    n_bits: int  # number of bits


@dataclass(frozen=True, slots=True)
class Output:
    """output:PORT (also bare port names/numbers and the reserved ports)."""

    port: int  # OpenFlow port number or an OFPP_* reserved value
    max_len: int = 0  # for CONTROLLER only (bytes to send; 65535 prints as CONTROLLER:65535)


@dataclass(frozen=True, slots=True)
class Resubmit:
    """resubmit(port,table[,ct]) / resubmit:port: re-search a table with in_port replaced."""

    port: int | None  # None means the packet's own in_port
    table: int | None  # None means the current table
    with_ct_orig: bool = False


@dataclass(frozen=True, slots=True)
class GotoTable:
    """goto_table:N (OpenFlow 1.1+ instruction, accepted by ovs-ofctl)."""

    table: int


@dataclass(frozen=True, slots=True)
class SetField:
    """set_field:V[/M]->FIELD and its legacy spellings (mod_dl_src:, mod_nw_dst:, ...).

    ``spelling`` remembers how the user wrote it so dump-flows prints it back the
    way OVS does: "set_field", or the legacy action name such as "mod_dl_src".
    """

    field: str  # canonical field name
    value: int
    mask: int | None = None  # None: the whole field
    spelling: str = "set_field"


@dataclass(frozen=True, slots=True)
class Load:
    """load:VALUE->DST[a..b]."""

    value: int
    dst: Subfield


@dataclass(frozen=True, slots=True)
class Move:
    """move:SRC[a..b]->DST[c..d]."""

    src: Subfield
    dst: Subfield


@dataclass(frozen=True, slots=True)
class DecTtl:
    """dec_ttl: decrement the IP TTL; a packet whose TTL would reach 0 is dropped."""


@dataclass(frozen=True, slots=True)
class CtClear:
    """ct_clear: zero ct_state, ct_zone, ct_mark, ct_label (and the ct_nw/tp fields)."""


@dataclass(frozen=True, slots=True)
class Nat:
    """nat / nat(src=...)/nat(dst=...) inside ct().

    ``kind`` is None for bare ``nat`` (apply the stored mapping, un-NAT replies).
    Addresses are ints; ``ip_ver`` tells IPv4 from IPv6.  Ports 0 mean "not given".
    """

    kind: str | None = None  # None, "src" or "dst"
    ip_ver: int = 4
    addr_min: int = 0
    addr_max: int = 0
    port_min: int = 0
    port_max: int = 0
    persistent: bool = False
    hash: bool = False
    random: bool = False


@dataclass(frozen=True, slots=True)
class Ct:
    """ct(commit,force,table=N,zone=N|zone=SUBFIELD,nat(...),exec(...),alg=ftp|tftp)."""

    commit: bool = False
    force: bool = False
    table: int | None = None  # recirculation table; None: no recirculation
    zone: int = 0  # immediate zone
    zone_src: Subfield | None = None  # zone taken from a subfield (then ``zone`` is unused)
    nat: Nat | None = None
    exec: tuple = field(default=())  # SetField/Load actions writing ct_mark / ct_label
    alg: int = 0  # 0 none, 21 ftp, 69 tftp (the port numbers OVS uses)
    # Where ``nat`` stood among the nested actions (OVS keeps one list: ``exec(a),nat``
    # prints as ``exec(a,nat)``): 0 = first, printed before ``exec(...)``.  Printing only.
    nat_index: int = 0


@dataclass(frozen=True, slots=True)
class Controller:
    """controller / controller(reason=...,max_len=N): counted and dropped (no controller here)."""

    max_len: int = 65535
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Note:
    """note:HEX... : does nothing; kept for round trips."""

    data: bytes = b""


@dataclass(frozen=True, slots=True)
class Group:
    """group:N.  ctswitch has no group table, so the switch refuses it as OVS does for a
    group that does not exist (OFPBAC_BAD_OUT_GROUP); never reaches the pipeline."""

    group_id: int = 0
