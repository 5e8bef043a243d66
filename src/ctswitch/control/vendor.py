"""The vendor page's two OpenFlow pipelines, verbatim, in one place.

``EXAMPLE1`` (conntrack without NAT) and ``EXAMPLE2`` (SNAT of the host to 1.1.1.16) are the
flows of the BlueField CT offload page (``shared/reference/bluefield-ct-offload.txt``), as the
page writes them; ``ROCE_BYPASS`` is the line the page says to add *before* example 1's ct()
flow to run RoCEv2 from the host.  The lab, the demo, the benchmarks and the tests take their
flows from here.
"""

from __future__ import annotations

ROCE_BYPASS = "table=0,udp,tp_dst=4791,action=normal"

EXAMPLE1 = (
    "table=0,arp,action=normal",
    "table=0,ip,ct_state=-trk,action=ct(table=1)",
    "table=1,priority=1,ip,ct_state=+trk+new,action=ct(commit),normal",
    "table=1,priority=1,ip,ct_state=+trk+est,action=normal",
)

EXAMPLE2 = (
    "table=0,arp,action=normal",
    "table=0,ip,ct_state=-trk,action=ct(table=1,nat)",
    "table=1,in_port=pf0hpf,ip,ct_state=+trk+new,action=ct(commit,nat(src=1.1.1.16)), p0",
    "table=1,ip,ct_state=+trk+est,action=normal",
)


def with_roce_bypass(flows=EXAMPLE1) -> tuple[str, ...]:
    """``flows`` with the RoCEv2 bypass inserted before the first ct() flow, as the page says."""
    i = next(n for n, f in enumerate(flows) if "ct(" in f)
    return (*flows[:i], ROCE_BYPASS, *flows[i:])
