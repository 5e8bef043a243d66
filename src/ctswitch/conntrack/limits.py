"""Per-zone connection limits (OVS ``dpctl/ct-set-limits``, kernel nf_conncount).

Theory of operation
-------------------
A zone's limit is its own entry, else the default; 0 means unlimited (as in
OVS).  The tracker keeps per-zone counts and asks ``allows(zone, count)``
before confirming a new connection; a refused commit drops the packet, as the
kernel datapath does ("openvswitch: zone: Z exceeds conntrack limit").
"""

from __future__ import annotations


class ZoneLimits:
    __slots__ = ("default", "zones")

    def __init__(self) -> None:
        self.default = 0
        self.zones: dict[int, int] = {}

    def set(self, zone: int | None, limit: int) -> None:
        """Sets the limit of ``zone`` (None: the default)."""
        if zone is None:
            self.default = limit
        else:
            self.zones[zone] = limit

    def delete(self, zone: int) -> None:
        self.zones.pop(zone, None)

    def limit(self, zone: int) -> int:
        return self.zones.get(zone, self.default)

    def allows(self, zone: int, count: int) -> bool:
        lim = self.zones.get(zone, self.default)
        return lim == 0 or count < lim

    def to_state(self) -> dict:
        return {"default": self.default, "zones": {str(z): v for z, v in self.zones.items()}}

    @classmethod
    def from_state(cls, s: dict) -> ZoneLimits:
        z = cls()
        z.default = s.get("default", 0)
        z.zones = {int(k): v for k, v in s.get("zones", {}).items()}
        return z
