"""OFBridge: one OpenFlow bridge: its ports, 255 flow tables, and MAC learning.

Theory of operation
-------------------
A bridge is created with its LOCAL internal port (named like the bridge,
OpenFlow port 0xfffe) and, in ``standalone`` fail mode, the catch-all
``priority=0 actions=NORMAL`` flow that OVS installs when no controller is
attached (re-added after every flush).  Ports get OpenFlow numbers from 1, or
``ofport_request``.

Flow modifications follow OpenFlow/OVS semantics:
* add: an existing rule with the identical match and priority in that table is
  replaced (its counters kept unless ``reset_counts``), else the rule is new;
* del/mod non-strict: every rule whose match is at least as specific as the
  given one (and, with ``out_port``, that outputs there); strict: identical
  match and priority;
* ``expire(now)`` removes rules whose idle/hard timeouts have passed.

``generation`` increases on every change that can alter a forwarding decision
(flows, ports, learned MACs), so the datapath knows when cached decisions are
stale.  MAC learning is per bridge, keyed by (vlan, mac), aged on the switch clock.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator

from ..flow.actions import OFPP_LOCAL, OFPP_NORMAL, RESERVED_NAMES, RESERVED_PORTS, Output
from ..flow.key import ZERO, Match
from .classifier import Classifier
from .rule import Rule, credit_rules

N_TABLES = 255


class BridgeError(ValueError):
    """A bridge operation the caller got wrong (unknown port, duplicate name...)."""


_NEW_DICT: dict = {}  # (the default of Port's options: a new dict each, as field(default_factory=dict))


class Port:
    """One bridge port.

    Attributes:
        name: interface name (``p0``, ``pf0hpf``; LOCAL has the bridge's name).
        ofport: OpenFlow port number (LOCAL is 0xfffe).
        type: "" (system/virtual), "internal", "dummy", ...
        options: interface options (``options:K=V``).
        rx_packets, rx_bytes, tx_packets, tx_bytes, rx_dropped, tx_dropped: counters.

    (Written out as the ``@dataclass(slots=True)`` it was: the same constructor, ``repr`` and
    ``==``; compiled, bridge.pxd makes it an extension type, which Cython's dataclass support
    cannot declare with slots.)
    """

    __slots__ = ("name", "ofport", "type", "options", "rx_packets", "rx_bytes", "tx_packets", "tx_bytes",
                 "rx_dropped", "tx_dropped")

    def __init__(self, name: str, ofport: int, type: str = "", options: dict[str, str] = _NEW_DICT,
                 rx_packets: int = 0, rx_bytes: int = 0, tx_packets: int = 0, tx_bytes: int = 0,
                 rx_dropped: int = 0, tx_dropped: int = 0) -> None:
        self.name = name
        self.ofport = ofport
        self.type = type
        self.options = {} if options is _NEW_DICT else options
        self.rx_packets = rx_packets
        self.rx_bytes = rx_bytes
        self.tx_packets = tx_packets
        self.tx_bytes = tx_bytes
        self.rx_dropped = rx_dropped
        self.tx_dropped = tx_dropped

    def _fields(self) -> tuple:
        return (self.name, self.ofport, self.type, self.options, self.rx_packets, self.rx_bytes, self.tx_packets,
                self.tx_bytes, self.rx_dropped, self.tx_dropped)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._fields() == other._fields()
        return NotImplemented

    __hash__ = None  # mutable, compared by value (as the dataclass)

    def __repr__(self) -> str:
        return (f"Port(name={self.name!r}, ofport={self.ofport!r}, type={self.type!r}, options={self.options!r}, "
                f"rx_packets={self.rx_packets!r}, rx_bytes={self.rx_bytes!r}, tx_packets={self.tx_packets!r}, "
                f"tx_bytes={self.tx_bytes!r}, rx_dropped={self.rx_dropped!r}, tx_dropped={self.tx_dropped!r})")


def subsumes(general: Match, specific: Match) -> bool:
    """True when every packet matching ``specific`` also matches ``general`` bit-wise on
    ``general``'s mask (the OpenFlow non-strict selection rule)."""
    for gv, gm, sv, sm in zip(general.values, general.mask, specific.values, specific.mask):
        if gm and ((sm & gm) != gm or (sv & gm) != gv):
            return False
    return True


def credit_hits(bridge: OFBridge | None, rules, packets: int, nbytes: int, used: int, learned: bool, src: int,
                in_port: int, out_port: int) -> None:
    """Credits ``packets`` hits (``nbytes`` bytes, the last at ``used``) of a cached decision
    (the batch table's entries, ``fastpath.BatchFastPath``) to its ``rules``, then, on ``bridge``
    (None: deleted meanwhile, only the rules count), refreshes the MAC ``src`` NORMAL learned on
    ``in_port`` when ``learned``, and counts them received on ``in_port`` and sent on ``out_port``."""
    credit_rules(rules, packets, nbytes, used)
    if bridge is None:
        return
    if learned:
        bridge.learn(0, src, in_port, used)
    by_no = bridge.by_no
    p = by_no.get(in_port)
    if p is not None:
        p.rx_packets += packets
        p.rx_bytes += nbytes
    p = by_no.get(out_port)
    if p is not None:
        p.tx_packets += packets
        p.tx_bytes += nbytes


class _PortNames:
    """Adapter: ``number(name)`` / ``name(number)`` over a bridge's ports."""

    __slots__ = ("br",)

    def __init__(self, br: OFBridge) -> None:
        self.br = br

    def number(self, name: str) -> int | None:
        return self.br.number(name)

    def name(self, number: int) -> str | None:
        return self.br.name_of(number)


class OFBridge:
    """One bridge (see module docstring)."""

    def __init__(self, name: str, fail_mode: str = "standalone", now: int = 0) -> None:
        self.name = name
        self.fail_mode = fail_mode  # "standalone" or "secure"
        self.ports: dict[str, Port] = {}
        self.by_no: dict[int, Port] = {}
        self.tables: list[Classifier | None] = [None] * N_TABLES
        self.mac: dict[tuple[int, int], tuple[int, int]] = {}  # (vlan, mac) -> (ofport, learned_ms)
        # Called before a MAC expires on lookup: the datapath's batched hits, credited late, may
        # have refreshed it (``fastpath.BatchFastPath``); None: nothing pending anywhere.
        self.mac_sync: Callable[[], None] | None = None
        self.generation = 0
        self.n_rules = 0
        self._seq = 0
        self.other: dict[str, str] = {}  # other_config / external_ids of the Bridge row
        self._add_port(Port(name, OFPP_LOCAL, "internal"))
        if fail_mode == "standalone":
            self._add_default_flow(now)

    # ------------------------------------------------------------------ identity
    @property
    def hwaddr(self) -> int:
        """The bridge's (LOCAL port's) MAC as a 48-bit integer.

        ``other_config:hwaddr`` when it is a valid unicast MAC (OVS ``bridge_pick_local_hw_addr``);
        otherwise a locally administered MAC derived from the bridge name (OVS takes a random one
        or a port's; a stable value keeps ``ovs-ofctl show`` the same across invocations).
        """
        text = self.other.get("other_config:hwaddr", "")
        parts = text.split(":")
        if len(parts) == 6 and all(len(x) == 2 for x in parts):
            try:
                mac = int("".join(parts), 16)
            except ValueError:
                mac = -1
            if mac > 0 and not (mac >> 40) & 1:
                return mac
        return 0x0200_0000_0000 | (zlib.crc32(self.name.encode()) & 0xFFFF_FFFF)

    @property
    def datapath_id(self) -> int:
        """``other_config:datapath-id`` (exactly 16 hex digits, nonzero), else the bridge MAC
        (OVS ``bridge_pick_datapath_id`` / ``dpid_from_hwaddr``)."""
        text = self.other.get("other_config:datapath-id", "")
        if text.startswith(("0x", "0X")):
            text = text[2:]
        if len(text) == 16 and all(c in "0123456789abcdefABCDEF" for c in text) and int(text, 16):
            return int(text, 16)
        return self.hwaddr

    # ------------------------------------------------------------------ ports
    def _add_port(self, port: Port) -> Port:
        self.ports[port.name] = port
        self.by_no[port.ofport] = port
        self.generation += 1
        return port

    def add_port(self, name: str, ofport_request: int | None = None, type: str = "",
                 options: dict[str, str] | None = None) -> Port:
        """Adds a port; its number is ``ofport_request`` when free, else the lowest free from 1."""
        if name in self.ports:
            raise BridgeError(f"cannot create a port named {name} because a port named {name} already exists on bridge {self.name}")
        if ofport_request is not None and not (1 <= ofport_request < 0xFF00):
            raise BridgeError(f"{ofport_request}: invalid ofport_request")
        no = ofport_request if ofport_request is not None and ofport_request not in self.by_no else None
        if no is None:
            no = 1
            while no in self.by_no:
                no += 1
        return self._add_port(Port(name, no, type, dict(options or {})))

    def del_port(self, name: str) -> Port:
        port = self.ports.pop(name, None)
        if port is None or port.ofport == OFPP_LOCAL:
            if port is not None:
                self.ports[name] = port
            raise BridgeError(f"no port named {name}")
        del self.by_no[port.ofport]
        self.mac = {k: v for k, v in self.mac.items() if v[0] != port.ofport}
        self.generation += 1
        return port

    def number(self, name: str) -> int | None:
        """PortNames protocol: the OpenFlow number of a port name (reserved names included)."""
        p = self.ports.get(name)
        if p is not None:
            return p.ofport
        return RESERVED_PORTS.get(name.upper())

    def name_of(self, number: int) -> str | None:
        """PortNames protocol: the name of a port number."""
        p = self.by_no.get(number)
        if p is not None:
            return p.name if number != OFPP_LOCAL else "LOCAL"
        return RESERVED_NAMES.get(number)

    @property
    def names(self) -> _PortNames:
        """This bridge's ports as the ``PortNames`` protocol of flow/ofctl_syntax."""
        return _PortNames(self)

    # ------------------------------------------------------------------ flows
    def table(self, table_id: int) -> Classifier:
        t = self.tables[table_id]
        if t is None:
            t = self.tables[table_id] = Classifier()
        return t

    def _add_default_flow(self, now: int) -> None:
        self.add_rule(Rule(0, 0, Match(ZERO, ZERO), [Output(OFPP_NORMAL)], now=now))

    def add_rule(self, rule: Rule, *, reset_counts: bool = False) -> Rule:
        """Adds ``rule`` (OFPFC_ADD): replaces an identical match+priority, keeping its counters
        and its place in the insertion order unless ``reset_counts``."""
        t = self.table(rule.table_id)
        old = t.find_exact(rule.match, rule.priority)
        seq = None
        if old is not None:
            t.remove(old)
            self.n_rules -= 1
            seq = old.seq
            if not reset_counts:
                rule.n_packets, rule.n_bytes = old.n_packets, old.n_bytes
        if seq is None:
            self._seq += 1
            seq = self._seq
        t.insert(rule, seq)
        self.n_rules += 1
        self.generation += 1
        return rule

    def select(self, match: Match | None, table_id: int | None, *, strict: bool = False,
               priority: int | None = None, out_port: int | None = None,
               cookie: int = 0, cookie_mask: int = 0) -> list[Rule]:
        """The rules a del/mod/dump with these criteria applies to, in dump order."""
        if strict and match is not None and priority is not None:
            # Strict selection is one exact lookup per table, not a scan.
            found = []
            for tid in (range(N_TABLES) if table_id is None else (table_id,)):
                t = self.tables[tid]
                r = t.find_exact(match, priority) if t is not None else None
                if r is None or (cookie_mask and (r.cookie & cookie_mask) != (cookie & cookie_mask)):
                    continue
                if out_port is not None and not any(
                        isinstance(a, Output) and a.port == out_port for a in r.actions):
                    continue
                found.append(r)
            return found
        out = []
        tables = range(N_TABLES) if table_id is None else (table_id,)
        for tid in tables:
            t = self.tables[tid]
            if t is None:
                continue
            for r in t:
                if cookie_mask and (r.cookie & cookie_mask) != (cookie & cookie_mask):
                    continue
                if match is not None:
                    if strict:
                        if r.match != match or (priority is not None and r.priority != priority):
                            continue
                    elif not subsumes(match, r.match):
                        continue
                if out_port is not None and not any(
                        isinstance(a, Output) and a.port == out_port for a in r.actions):
                    continue
                out.append(r)
        return out

    def remove_rules(self, rules: list[Rule], now: int) -> None:
        flushed_all = False
        for r in rules:
            t = self.tables[r.table_id]
            if t is not None and t.remove(r):
                self.n_rules -= 1
        if rules:
            self.generation += 1
        if self.n_rules == 0:
            flushed_all = True
        if flushed_all and self.fail_mode == "standalone":
            # connmgr_flushed(): without controllers, standalone mode re-adds the NORMAL flow.
            self._add_default_flow(now)

    def iter_rules(self, table_id: int | None = None) -> Iterator[Rule]:
        yield from self.select(None, table_id)

    def expire(self, now: int) -> list[tuple[Rule, str]]:
        """Removes and returns rules whose idle or hard timeout passed."""
        gone = []
        for t in self.tables:
            if t is None or not t.count:
                continue
            for r in list(t):
                why = r.expired(now)
                if why:
                    gone.append((r, why))
        if gone:
            for r, _ in gone:
                self.tables[r.table_id].remove(r)
                self.n_rules -= 1
            self.generation += 1
        return gone

    # ------------------------------------------------------------------ MAC learning
    def learn(self, vlan: int, mac: int, ofport: int, now: int) -> None:
        """Learns ``mac`` on ``ofport``; a move or a new entry bumps ``generation``.

        Before a move or a new entry, the batched fast path's pending hits are credited
        (``mac_sync``): they came before this packet, and each refreshes the MAC it learned, so
        credited later they would undo the move."""
        if mac & (1 << 40):  # multicast/broadcast sources are never learned
            return
        macs = self.mac
        k = (vlan, mac)
        old = macs.get(k)
        if old is not None and old[0] == ofport:  # the common case: known, on the same port
            macs[k] = (ofport, now)
            return
        if self.mac_sync is not None:
            self.mac_sync()
            old = macs.get(k)
        macs[k] = (ofport, now)
        if old is None or old[0] != ofport:
            self.generation += 1

    def mac_lookup(self, vlan: int, mac: int, now: int, aging_ms: int) -> int | None:
        e = self.mac.get((vlan, mac))
        if e is None:
            return None
        if now - e[1] >= aging_ms:
            if self.mac_sync is not None:
                self.mac_sync()
                e = self.mac[(vlan, mac)]
                if now - e[1] < aging_ms:
                    return e[0]
            del self.mac[(vlan, mac)]
            self.generation += 1
            return None
        return e[0]

    def age_macs(self, now: int, aging_ms: int) -> int:
        old = [k for k, (_, t) in self.mac.items() if now - t >= aging_ms]
        for k in old:
            del self.mac[k]
        if old:
            self.generation += 1
        return len(old)
