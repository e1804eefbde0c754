"""feed_sim servers: sessions per port, the pacing engine, the process composition root."""
