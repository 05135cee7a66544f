"""The registry of kinds: name → model class."""

from __future__ import annotations

from compiler.spec.datasource import DataSource
from compiler.spec.deployment import Deployment
from compiler.spec.device import Device
from compiler.spec.model import Model
from compiler.spec.policy import KIND_NAMES, Policy
from compiler.spec.target import Target
from compiler.spec.testsuite import TestSuite
from compiler.spec.types import SpecModel

API_VERSION = "takt/v1"
KNOWN_API_VERSIONS = (API_VERSION,)

KINDS: dict[str, type[SpecModel]] = {
    "DataSource": DataSource,
    "Model": Model,
    "TestSuite": TestSuite,
    "Target": Target,
    "Device": Device,
    "Deployment": Deployment,
    "Policy": Policy,
}
assert tuple(KINDS) == KIND_NAMES
