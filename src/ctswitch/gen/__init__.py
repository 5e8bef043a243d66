"""ctswitch.gen: synthetic traffic as per-port pcaps (functional scenarios and a throughput shape).

Library API:
* ``Scenario`` (dataclass of options), ``scenario.events(sc)`` -> (ts_ns, port, frame) in order,
  ``write(sc, out_dir) -> {port: packets}``;
* ``perf.generate(out_dir, packets, conns, size, snat=..., lag=...)`` -> meta dict (NumPy bulk);
* ``cli_main(argv) -> int``: the ``ctswitch gen`` verb (see ``--help``).
"""

from .cli import PRESETS, cli_main
from .perf import generate as generate_perf
from .scenario import GenError, Scenario, events, parse_range, write

__all__ = ["PRESETS", "GenError", "Scenario", "cli_main", "events", "generate_perf", "parse_range", "write"]
