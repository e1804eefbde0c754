"""Systems under test: one small driver per kind (reference core, command, container,
external) behind the `SystemUnderTest` interface of `harness.sut.base`; `make_sut()` picks it.
"""

from harness.sut.base import FeedEndpoints, KafkaEndpoints, SutError, SystemUnderTest
from harness.sut.factory import make_sut

__all__ = ["FeedEndpoints", "KafkaEndpoints", "SutError", "SystemUnderTest", "make_sut"]
