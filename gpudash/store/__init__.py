"""History that survives restarts: one SQLite file in the user's state dir (see store.py).

Stdlib only (sqlite3); nothing here imports Textual. ``Store.open()`` is the entry point;
``gpudash.store.wiring`` connects it to a Fleet.
"""

from gpudash.store.journal import JournalEntry
from gpudash.store.paths import default_alert_log_path, default_db_path, fs_type_for, is_network_fs
from gpudash.store.store import Store, StoreError

__all__ = ["JournalEntry", "Store", "StoreError", "default_alert_log_path", "default_db_path",
           "fs_type_for", "is_network_fs"]
