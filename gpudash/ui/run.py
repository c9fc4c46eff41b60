"""The CLI's door into the TUI. Textual is imported only here, inside the function, so
`gpudash --help` and `gpudash status` never pay for it."""

from __future__ import annotations


def run_tui(fleet, config=None, *, history: bool = False, **options) -> int:
    """Run the TUI on `fleet` (a FleetLike) until the user quits; return the exit code.

    With ``history``, the store restores sparklines and log offsets before the first frame and
    alerts are routed by the notifier (desktop notifications go out through Textual's own
    driver, so they never split one of its escape sequences; the bell is the app's)."""
    from gpudash.loop import run
    from gpudash.ui.app import GpudashApp

    app = GpudashApp(fleet, config=config, **options)
    store = notifier = None
    if history and hasattr(fleet, "watchers"):
        from gpudash.commands.history import attach_history

        def through_driver(seq: str) -> None:
            if seq == "\a":  # the app rings the bell itself on a new critical
                return
            driver = getattr(app, "_driver", None)
            if driver is not None:
                driver.write(seq)

        store, notifier = attach_history(fleet, config, writer=through_driver)
    try:
        # app.run() is asyncio.run(app.run_async()); this is the same on gpudash's loop (uvloop
        # where installed: gpudash/loop.py)
        code = run(app.run_async())
    finally:
        if store is not None or notifier is not None:
            from gpudash.commands.history import close_history

            run(close_history(store, notifier))
    if app.return_code not in (None, 0):
        return int(app.return_code)
    return int(code or 0)
