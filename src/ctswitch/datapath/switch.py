"""Switch: the whole emulated host — bridges, conntrack, the offload model, knobs, clock.

Theory of operation
-------------------
One ``Switch`` is what a BlueField Arm runs: OVS bridges (``ofproto.bridge``),
the kernel's conntrack (one ``Tracker``, shared by all bridges as the kernel's is
per network namespace), the NIC's offload model (``OffloadManager``), and the
knobs (``Params``).  It is pure: ``now`` is the switch clock in milliseconds,
moved only by traffic (replay maps pcap time onto it), by ``time warp`` and, in
live mode, by the daemon's wall clock.

``to_state()`` / ``from_state()`` give a JSON-able snapshot: the store keeps it
between CLI invocations so that separate commands see one consistent switch.
"""

from __future__ import annotations

from ..flow import serial
from ..ofproto.bridge import BridgeError, OFBridge, Port
from ..ofproto.rule import Rule
from ..params import Params


class Switch:
    """See module docstring.

    Attributes:
        bridges: name -> OFBridge, in creation order.
        params: all knobs (sysctl, devlink, modparam, other_config).
        tracker: the conntrack engine.
        offload: the offload manager (eSwitch FDB model).
        now: switch clock, ms.
        log: recent log lines (rate-limited messages of the core), newest last.
    """

    def __init__(self, params: Params | None = None) -> None:
        self.params = params or Params()
        self.bridges: dict[str, OFBridge] = {}
        self.now = 0
        self.log: list[str] = []
        self.tracker = None
        self.offload = None
        self.datapath = None
        self._build_engines()

    def _build_engines(self) -> None:
        try:
            from ..conntrack.tracker import Tracker
            self.tracker = Tracker(self.params)
        except ImportError:  # while the conntrack package is being written
            self.tracker = None
        try:
            from ..offload.manager import OffloadManager
            self.offload = OffloadManager(self.params, self.tracker)
        except ImportError:
            self.offload = None
        try:
            from .datapath import Datapath
            self.datapath = Datapath(self)
        except ImportError:
            self.datapath = None
        self._wire()

    def _wire(self) -> None:
        """Connects the engines' callbacks (after building or reloading them)."""
        if self.offload is not None:
            self.offload.tracker = self.tracker
            if self.tracker is not None:
                self.tracker.flowtable = self.offload
            if self.datapath is not None:
                self.offload.teardown_hook = self.datapath.forget_conn
        if self.tracker is not None and hasattr(self.tracker, "destroy_hook"):
            self.tracker.destroy_hook = self._conn_destroyed

    def _conn_destroyed(self, conn, now: int) -> None:
        """A conntrack entry was deleted (conntrack -D/-F, expiry): its offload goes too."""
        if self.offload is not None and getattr(conn, "offload", None) is not None:
            from ..offload.manager import WHY_DELETED
            self.offload.teardown(conn, WHY_DELETED, now, deleted=True)
        if self.datapath is not None and getattr(conn, "offload", None) is None:
            self.datapath.forget_conn(conn)

    # ------------------------------------------------------------------ config
    def add_bridge(self, name: str, fail_mode: str = "standalone") -> OFBridge:
        if name in self.bridges:
            raise BridgeError(f"cannot create a bridge named {name} because a bridge named {name} already exists")
        if self.find_port(name) is not None:
            raise BridgeError(f"cannot create a bridge named {name} because a port named {name} already exists")
        br = OFBridge(name, fail_mode, self.now)
        self.bridges[name] = br
        return br

    def del_bridge(self, name: str) -> None:
        if name not in self.bridges:
            raise BridgeError(f"no bridge named {name}")
        del self.bridges[name]

    def find_port(self, name: str) -> tuple[OFBridge, Port] | None:
        """The bridge and port of an interface name, or None."""
        for br in self.bridges.values():
            p = br.ports.get(name)
            if p is not None:
                return br, p
        return None

    # ------------------------------------------------------------------ state
    def to_state(self) -> dict:
        if self.datapath is not None:
            self.datapath.sync_counters()
        bridges = []
        for br in self.bridges.values():
            bridges.append({
                "name": br.name, "fail_mode": br.fail_mode, "other": br.other,
                "ports": [[p.name, p.ofport, p.type, p.options,
                           [p.rx_packets, p.rx_bytes, p.tx_packets, p.tx_bytes, p.rx_dropped, p.tx_dropped]]
                          for p in br.ports.values()],
                "seq": br._seq,
                "rules": [rule_to_state(r) for r in br.iter_rules()],
                "mac": [[v, m, p, t] for (v, m), (p, t) in br.mac.items()],
            })
        return {
            "now": self.now,
            "params": self.params.to_state(),
            "bridges": bridges,
            "tracker": self.tracker.to_state() if self.tracker is not None and hasattr(self.tracker, "to_state") else None,
            "offload": self.offload.to_state() if self.offload is not None and hasattr(self.offload, "to_state") else None,
            "datapath": self.datapath.to_state() if self.datapath is not None and hasattr(self.datapath, "to_state") else None,
            "log": self.log[-200:],
        }

    @classmethod
    def from_state(cls, state: dict) -> Switch:
        sw = cls(Params.from_state(state.get("params") or {}))
        sw.now = int(state.get("now", 0))
        sw.log = list(state.get("log") or [])
        for b in state.get("bridges") or []:
            br = OFBridge(b["name"], b["fail_mode"], sw.now)
            br.other = dict(b.get("other") or {})
            # Drop the default flow the constructor added: the saved rules are authoritative.
            for r in list(br.iter_rules()):
                br.tables[r.table_id].remove(r)
            br.n_rules = 0
            br.ports.clear()
            br.by_no.clear()
            for name, ofport, typ, options, c in b["ports"]:
                p = Port(name, ofport, typ, dict(options))
                p.rx_packets, p.rx_bytes, p.tx_packets, p.tx_bytes, p.rx_dropped, p.tx_dropped = map(_count, c)
                br.ports[name] = p
                br.by_no[ofport] = p
            for rd in b["rules"]:
                r = rule_from_state(rd)
                br.table(r.table_id).insert(r, r.seq)
                br.n_rules += 1
            br._seq = max(int(b.get("seq", 0)), max((r["seq"] for r in b["rules"]), default=0))
            br.mac = {(v, m): (p, t) for v, m, p, t in b.get("mac") or []}
            sw.bridges[br.name] = br
        if sw.tracker is not None and state.get("tracker") is not None:
            sw.tracker = type(sw.tracker).from_state(sw.params, state["tracker"])
            sw._wire()
        if sw.offload is not None and state.get("offload") is not None:
            sw.offload.load_state(state["offload"], sw.tracker)
        if sw.datapath is not None and state.get("datapath") is not None and hasattr(sw.datapath, "load_state"):
            sw.datapath.load_state(state["datapath"])
        return sw


def _count(v) -> int:
    """A saved packet or byte counter: an int in 0..2**64-1 (what the compiled core's C counters
    hold, bridge.pxd and rule.pxd), else ValueError: the saved state is corrupt."""
    if type(v) is not int or not 0 <= v < 1 << 64:
        raise ValueError(f"bad counter {v!r}")
    return v


def rule_to_state(r: Rule) -> dict:
    return {
        "table": r.table_id, "priority": r.priority, "match": serial.encode_match(r.match),
        "actions": serial.encode(r.actions), "cookie": r.cookie, "idle": r.idle_timeout,
        "hard": r.hard_timeout, "importance": r.importance, "flags": r.flags,
        "created": r.created_ms, "modified": r.modified_ms, "used": r.last_used_ms,
        "n_packets": r.n_packets, "n_bytes": r.n_bytes, "seq": r.seq,
    }


def rule_from_state(d: dict) -> Rule:
    r = Rule(d["table"], d["priority"], serial.decode_match(d["match"]), serial.decode(d["actions"]),
             cookie=d["cookie"], idle_timeout=d["idle"], hard_timeout=d["hard"],
             importance=d["importance"], flags=int(d["flags"]), now=d["created"])
    r.modified_ms = d["modified"]
    r.last_used_ms = d["used"]
    r.n_packets = _count(d["n_packets"])
    r.n_bytes = _count(d["n_bytes"])
    r.seq = d["seq"]
    return r
