"""The C extension of the reference core; everything else is declared in pyproject.toml.

`ingest.feed._fastparse` is the Level 1 `Q` hot path (ingest/feed/parse.py says what it does
and how it is tested against the Python reference). `pip install -e .` builds it in place.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "ingest.feed._fastparse",
            ["ingest/feed/_fastparse.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
    ]
)
