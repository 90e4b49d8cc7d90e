"""`movierec run`: the main job (movierec/run/job.py)."""

from movierec.run.job import add_parsers, run

__all__ = ["add_parsers", "run"]
