"""The CLI's door into the TUI. Textual is imported only here, inside the function, so
`gpudash --help` and `gpudash status` never pay for it."""

from __future__ import annotations


def run_tui(fleet, config=None, **options) -> int:
    """Run the TUI on `fleet` (a FleetLike) until the user quits; return the exit code."""
    from gpudash.ui.app import GpudashApp

    app = GpudashApp(fleet, config=config, **options)
    code = app.run()
    if app.return_code not in (None, 0):
        return int(app.return_code)
    return int(code or 0)
