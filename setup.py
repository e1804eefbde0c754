"""The C extensions; everything else is declared in pyproject.toml.

`ingest.feed._fastparse` is the reference core's Level 1 `Q` hot path (ingest/feed/parse.py
says what it does and how it is tested against the Python reference);
`harness.collector._fastdecode` is the collector's hot path: its Kafka reader over librdkafka's C
API (harness/collector/_kafkaread.c, linked against the system's librdkafka) and its record
decoder (harness/collector/mapping.py).
`pip install -e .` builds them in place.
"""

from setuptools import Extension, setup

COMPILE_ARGS = ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]

setup(
    ext_modules=[
        Extension(
            "ingest.feed._fastparse",
            ["ingest/feed/_fastparse.c"],
            extra_compile_args=COMPILE_ARGS,
        ),
        Extension(
            "harness.collector._fastdecode",
            ["harness/collector/_fastdecode.c", "harness/collector/_kafkaread.c"],
            depends=["harness/collector/_fastdecode.h"],
            libraries=["rdkafka"],  # Debian's librdkafka-dev (scripts/install-system-deps.sh)
            extra_compile_args=COMPILE_ARGS,
        ),
    ]
)
