"""Results of a run in results/<UTC time>-<scenario>/, written as the run goes.

- `summary`: summary.json (atomic, after every stage) and encoded histograms per stage;
- `hlog`: 1 s interval histograms in the standard HdrHistogram log format, Tag=stage-N;
- `junit`: junit.xml, one test case per stage x threshold;
- `plots`: PNG plots (percentile spectrum, lag over time, resources).
"""
