"""The scaffolder's `defs.yaml` names the instance's own token variable and prefix, and
every attribute of `SiroComponent`'s models carries a description (shown by `dg` tooling)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import yaml
from pydantic import BaseModel

from siro_assets import SiroComponent
from siro_assets.component.scaffolder import SiroComponentScaffolder


def _scaffold(tmp_path: Path, folder: str) -> dict:
    target = tmp_path / folder
    request = dg.ScaffoldRequest(
        type_name="siro_assets.SiroComponent",
        target_path=target,
        scaffold_format="yaml",
        project_root=tmp_path,
        params=None,
    )
    SiroComponentScaffolder().scaffold(request)
    return yaml.safe_load((target / "defs.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("folder", "prefix", "token_env"),
    [
        ("siro", "siro", "SIRO_API_TOKEN"),
        ("west", "west", "SIRO_WEST_API_TOKEN"),
        ("east-2", "east_2", "SIRO_EAST_2_API_TOKEN"),
    ],
)
def test_scaffolded_yaml_derives_names_from_the_instance(tmp_path, folder, prefix, token_env):
    doc = _scaffold(tmp_path, folder)
    attributes = doc["attributes"]
    assert doc["type"] == "siro_assets.SiroComponent"
    assert attributes["key_prefix"] == prefix
    assert attributes["api"]["token_env"] == token_env
    assert attributes["warehouse"]["path"] == f"data/{prefix}.duckdb"
    # The scaffolded file loads as a component with those names.
    component = SiroComponent.model_validate(attributes)
    assert component.api.token_env == token_env
    assert component.pipeline_settings().key_prefix == prefix


def _models(model: type[BaseModel], seen: set[type[BaseModel]]) -> None:
    seen.add(model)
    for info in model.model_fields.values():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel) and annotation not in seen:
            _models(annotation, seen)


def test_every_attribute_of_every_model_has_a_description():
    models: set[type[BaseModel]] = set()
    _models(SiroComponent, models)
    assert len(models) >= 6  # the component, api, simulator, warehouse, sensor, schedule, writebacks
    missing = [
        f"{model.__name__}.{name}"
        for model in models
        for name, info in model.model_fields.items()
        if not (info.description or "").strip()
    ]
    assert missing == []
