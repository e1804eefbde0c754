"""Tapes: the recorded or generated event streams that feed_sim replays."""
