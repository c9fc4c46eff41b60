"""One widget per panel; each renders only what its `update_view` was handed."""
