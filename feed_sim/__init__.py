"""feed_sim: a replay-based IQFeed (IQConnect) protocol simulator."""

__version__ = "0.1.0"
