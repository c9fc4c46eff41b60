"""Alert routing by severity to the terminal bell, desktop notifications (OSC 777/9), tmux,
a log file and a webhook — once per condition, summarised when many fire together.

No Textual import: the UI passes a ``screen`` callback and, ideally, a ``writer`` that goes
through its own terminal driver.
"""

from gpudash.notify.notifier import DEFAULT_ROUTES, Delivery, Notifier
from gpudash.notify.summary import Notice, severity_of, summarize

__all__ = ["DEFAULT_ROUTES", "Delivery", "Notice", "Notifier", "severity_of", "summarize"]
