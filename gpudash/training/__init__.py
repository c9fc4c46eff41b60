"""Training health inputs parsed from the run's own log: metrics points, progress, completion
lines, the W&B run URL. Pure functions; no I/O, no UI."""

from gpudash.training.metrics import parse_metrics
from gpudash.training.progress import completion_line, parse_progress
from gpudash.training.wandb import find_wandb_url

__all__ = ["parse_metrics", "parse_progress", "completion_line", "find_wandb_url"]
