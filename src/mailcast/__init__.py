"""mailcast: personalised email campaigns from the terminal and from cron, exactly once."""

__version__ = "0.1.0"
