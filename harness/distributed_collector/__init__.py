"""The distributed collector: a Locust master (`master`) in front of N collector shards, each
hosted by a Locust worker (`worker`), sharing one Locust environment (`environment`). The
shards split the partitions (`harness.collector.shards`); the master merges their replies."""
