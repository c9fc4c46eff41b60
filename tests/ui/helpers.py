"""Read what is on the (virtual) screen: plain text and the styled segments behind it."""

from __future__ import annotations


def screen_strips(app):
    return app.screen._compositor.render_strips()


def screen_text(app) -> str:
    """The screen as the user would read it, one line per row."""
    return "\n".join("".join(seg.text for seg in strip) for strip in screen_strips(app))


def segments(app):
    for strip in screen_strips(app):
        yield from strip
