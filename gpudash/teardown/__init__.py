"""The teardown gate: six checks before paying to stop a box, and the stop itself only after the
user typed the host name (product.md, "Teardown checklist").

- :mod:`types` — ``Check``, ``Checklist``, ``StopPlan``, ``TeardownSettings`` (what the CLI and
  the TUI render);
- :mod:`checks` — the six checks as pure functions over probe results;
- :mod:`runner` — ``run_checks(transport, settings)``: the probes in bounded batches;
- :mod:`presets` — the platforms' meter-stop rows (command, where, what survives, warnings);
- :mod:`stop` — ``execute_stop`` and the teardown journal (``record_teardown`` hook);
- :mod:`settings` — settings from the config and the command line.
"""

from gpudash.teardown.types import (
    CHECK_STATES,
    GREEN,
    RED,
    UNKNOWN,
    Check,
    Checklist,
    StopPlan,
    TeardownSettings,
)

__all__ = ["CHECK_STATES", "GREEN", "RED", "UNKNOWN", "Check", "Checklist", "StopPlan",
           "TeardownSettings"]
