"""vodwatch: how much of each video each viewer really watched, and for how long."""

__version__ = "0.1.0"
