"""Every tunable knob of the emulated system, declared once, as data.

Theory of operation
-------------------
The real system spreads its knobs over four places, and ctswitch keeps the
real names so that a line from the vendor page works unchanged:

* ``sysctl``: ``net.netfilter.nf_conntrack_*`` and ``nf_flowtable_*`` (kernel);
* ``devlink``: ``ct_max_offloaded_conns`` (mlx5 driver-specific, cmode runtime);
* ``modparam``: ``mlx5_core.num_of_groups`` (``/sys/module/mlx5_core/parameters``);
* ``other_config``: the Open_vSwitch table's ``other_config`` (``hw-offload``...).

``PARAMS`` maps a qualified name (``"sysctl:net.netfilter.nf_conntrack_max"``)
to its ``Param`` declaration; ``Params`` holds the current values.  Core code
reads values with ``params.get(NAME)`` (hot paths cache them on change via
``params.version``).  Validation errors are ``ValueError`` with a one-line
message suitable for the tool that set the value.

This module is pure: no file, no clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Param:
    """One knob.

    Attributes:
        domain: "sysctl", "devlink", "modparam" or "other_config".
        name: the name in its domain, exactly as the real tool spells it.
        default: default value (int, bool or str).
        kind: "int", "bool" or "str".
        lo, hi: inclusive bounds for ints (None: unbounded).
        choices: allowed strings for kind "str" (None: any).
        readonly: True for values the system computes (nf_conntrack_count).
        doc: one line for --help and docs.
    """

    domain: str
    name: str
    default: int | bool | str
    kind: str = "int"
    lo: int | None = 0
    hi: int | None = None
    choices: tuple[str, ...] | None = None
    readonly: bool = False
    doc: str = ""

    @property
    def key(self) -> str:
        return f"{self.domain}:{self.name}"


NF = "net.netfilter."

_DECLS: list[Param] = [
    # --- conntrack (Linux nf_conntrack defaults, Documentation/networking/nf_conntrack-sysctl.rst)
    Param("sysctl", NF + "nf_conntrack_max", 262144, doc="maximum tracked connections (early-drop, then drop)"),
    Param("sysctl", NF + "nf_conntrack_count", 0, readonly=True, doc="connections currently tracked"),
    Param("sysctl", NF + "nf_conntrack_buckets", 262144, lo=1, doc="hash buckets (informational)"),
    Param("sysctl", NF + "nf_conntrack_acct", 0, hi=1, doc="show per-connection packet/byte counters in listings"),
    Param("sysctl", NF + "nf_conntrack_timestamp", 0, hi=1, doc="delta-time in listings"),
    Param("sysctl", NF + "nf_conntrack_checksum", 1, hi=1, doc="verify L4 checksums (invalid when wrong)"),
    Param("sysctl", NF + "nf_conntrack_tcp_be_liberal", 0, hi=1, doc="only out-of-window RSTs are invalid"),
    Param("sysctl", NF + "nf_conntrack_tcp_loose", 1, hi=1, doc="pick up connections seen mid-stream"),
    Param("sysctl", NF + "nf_conntrack_tcp_ignore_invalid_rst", 0, hi=1, doc="do not mark out-of-window RSTs invalid"),
    Param("sysctl", NF + "nf_conntrack_tcp_max_retrans", 3, doc="retransmissions before the retrans timeout applies"),
    Param("sysctl", NF + "nf_conntrack_tcp_timeout_syn_sent", 120, doc="seconds"),
    Param("sysctl", NF + "nf_conntrack_tcp_timeout_syn_recv", 60, doc="seconds"),
    Param("sysctl", NF + "nf_conntrack_tcp_timeout_established", 432000, doc="seconds"),
    Param("sysctl", NF + "nf_conntrack_tcp_timeout_fin_wait", 120, doc="seconds"),
    Param("sysctl", NF + "nf_conntrack_tcp_timeout_close_wait", 60, doc="seconds"),
    Param("sysctl", NF + "nf_conntrack_tcp_timeout_last_ack", 30, doc="seconds"),
    Param("sysctl", NF + "nf_conntrack_tcp_timeout_time_wait", 120, doc="seconds"),
    Param("sysctl", NF + "nf_conntrack_tcp_timeout_close", 10, doc="seconds"),
    Param("sysctl", NF + "nf_conntrack_tcp_timeout_max_retrans", 300, doc="seconds"),
    Param("sysctl", NF + "nf_conntrack_tcp_timeout_unacknowledged", 300, doc="seconds"),
    Param("sysctl", NF + "nf_conntrack_udp_timeout", 30, doc="seconds, until the connection is a stream"),
    Param("sysctl", NF + "nf_conntrack_udp_timeout_stream", 120, doc="seconds, once replied and older than 2 s"),
    Param("sysctl", NF + "nf_conntrack_icmp_timeout", 30, doc="seconds"),
    Param("sysctl", NF + "nf_conntrack_icmpv6_timeout", 30, doc="seconds"),
    Param("sysctl", NF + "nf_conntrack_generic_timeout", 600, doc="seconds, protocols without a tracker"),
    # --- IPv4 reassembly before conntrack (ip_defrag; Documentation/networking/ip-sysctl.rst)
    Param("sysctl", "net.ipv4.ipfrag_time", 30, lo=1, doc="seconds an incomplete datagram's fragments are kept"),
    Param("sysctl", "net.ipv4.ipfrag_high_thresh", 4194304, lo=1, doc="bytes of fragments held at most"),
    Param("sysctl", NF + "nf_conntrack_frag6_timeout", 60, lo=1, doc="seconds an incomplete IPv6 datagram's fragments are kept"),
    Param("sysctl", NF + "nf_conntrack_frag6_high_thresh", 4194304, lo=1, doc="bytes of IPv6 fragments held at most"),
    # --- nf_flowtable: the offload aging ("CT offload has its own aging ... 30 seconds")
    Param("sysctl", NF + "nf_flowtable_tcp_timeout", 30, lo=1, doc="seconds an offloaded TCP connection may idle"),
    Param("sysctl", NF + "nf_flowtable_udp_timeout", 30, lo=1, doc="seconds an offloaded UDP connection may idle"),
    # --- mlx5 (OFED/DOCA) driver
    Param("devlink", "ct_max_offloaded_conns", 1_000_000, lo=0, hi=0xFFFFFFFF,
          doc="offloaded connections at most (two FDB rules each); cmode runtime"),
    Param("modparam", "mlx5_core.num_of_groups", 4, lo=1, hi=1024,
          doc="big FDB flow groups; applied when the FDB is empty"),
    # ctswitch's own model knobs (documented as such; not on a real system)
    Param("modparam", "ctswitch.fdb_capacity", 4_000_000, lo=2,
          doc="eSwitch FDB entries shared by the flow groups (ctswitch model knob)"),
    Param("modparam", "ctswitch.udp_unidirectional_offload", 0, hi=1,
          doc="offload UDP before a reply, as kernels >= 6.3 can (ctswitch model knob)"),
    # --- Open vSwitch other_config
    Param("other_config", "hw-offload", False, kind="bool", doc="offload datapath flows and connections"),
    Param("other_config", "tc-policy", "none", kind="str", choices=("none", "skip_sw", "skip_hw"),
          doc="none: SW and HW rules; skip_sw: HW only; skip_hw: SW only"),
    Param("other_config", "max-idle", 10000, lo=500, doc="ms before an idle datapath flow is removed"),
    Param("other_config", "flow-limit", 200000, lo=0, doc="datapath flows at most"),
    Param("other_config", "mac-aging-time", 300, lo=1, doc="seconds a learned MAC stays (NORMAL)"),
]

PARAMS: dict[str, Param] = {p.key: p for p in _DECLS}


def lookup(domain: str, name: str) -> Param | None:
    """The declaration of ``name`` in ``domain``, or None."""
    return PARAMS.get(f"{domain}:{name}")


def parse_value(p: Param, text: str) -> int | bool | str:
    """Parses and validates ``text`` for ``p``.

    Raises:
        ValueError: with a one-line reason ("invalid value", "out of range").
    """
    if p.kind == "bool":
        t = text.strip().lower()
        if t in ("true", "1", "yes", "on"):
            return True
        if t in ("false", "0", "no", "off"):
            return False
        raise ValueError(f"{text!r} is not a valid boolean")
    if p.kind == "str":
        if p.choices is not None and text not in p.choices:
            raise ValueError(f"{text!r} is not one of {', '.join(p.choices)}")
        return text
    try:
        v = int(text.strip(), 0)
    except ValueError:
        raise ValueError(f"{text!r} is not an integer") from None
    if (p.lo is not None and v < p.lo) or (p.hi is not None and v > p.hi):
        hi = "" if p.hi is None else str(p.hi)
        raise ValueError(f"{v} is out of range [{p.lo}..{hi}]")
    return v


class Params:
    """Current values of every knob; unset knobs read as their default.

    ``version`` increases on every change so hot paths can cache derived values.
    ``listeners`` are called as ``fn(key, value)`` after a change.
    """

    __slots__ = ("values", "version", "listeners")

    def __init__(self, values: dict[str, int | bool | str] | None = None) -> None:
        self.values: dict[str, int | bool | str] = dict(values or {})
        self.version = 0
        self.listeners: list[Callable[[str, object], None]] = []

    def get(self, key: str):
        """The value of ``key`` ("domain:name")."""
        v = self.values.get(key)
        return PARAMS[key].default if v is None else v

    def set(self, key: str, value) -> None:
        """Sets ``key`` to an already validated value and notifies listeners."""
        self.values[key] = value
        self.version += 1
        for fn in self.listeners:
            fn(key, value)

    def unset(self, key: str) -> None:
        """Returns ``key`` to its default (``ovs-vsctl remove ... other_config KEY``)."""
        if key in self.values:
            del self.values[key]
            self.version += 1
            for fn in self.listeners:
                fn(key, PARAMS[key].default)

    def to_state(self) -> dict:
        return dict(self.values)

    @classmethod
    def from_state(cls, state: dict) -> Params:
        return cls({k: v for k, v in state.items() if k in PARAMS})
