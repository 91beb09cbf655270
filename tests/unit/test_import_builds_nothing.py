"""Importing the package builds no definitions (issue 17, "The house itself"): every
asset, check, job, sensor, schedule and partitions definition comes from an instance's
settings, so no module holds a default instance's objects that only tests use."""

from __future__ import annotations

import importlib
import pkgutil

import dagster as dg

import siro_assets
from siro_assets.pipeline.settings import PipelineSettings

# The code location `dg` loads: it builds the shipped instance, and only it.
LOCATION = "siro_assets.definitions"
BUILT = (
    dg.AssetsDefinition, dg.AssetChecksDefinition, dg.JobDefinition, dg.SensorDefinition, dg.ScheduleDefinition,
    dg.PartitionsDefinition, dg.AssetSelection, dg.Definitions, PipelineSettings,
)


def test_no_module_holds_a_built_definition():
    built = {}
    for info in pkgutil.walk_packages(siro_assets.__path__, "siro_assets."):
        if info.name == LOCATION:
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            objects = value if isinstance(value, list) else [value]
            if any(isinstance(o, BUILT) or type(o).__name__ == "UnresolvedAssetJobDefinition" for o in objects):
                built[f"{info.name}.{name}"] = type(value).__name__
    assert not built, sorted(built)
