"""The webhook options' defaults that derive from the instance's key_prefix."""

from __future__ import annotations

from siro_assets.pipeline.settings import PipelineSettings, WebhookOptions


def test_the_secret_variable_defaults_from_the_key_prefix():
    assert PipelineSettings().webhook_secret_env == "SIRO_WEBHOOK_SECRET"
    assert PipelineSettings(key_prefix="west").webhook_secret_env == "SIRO_WEST_WEBHOOK_SECRET"
    assert PipelineSettings(key_prefix="siro_west").webhook_secret_env == "SIRO_WEST_WEBHOOK_SECRET"
    explicit = PipelineSettings(key_prefix="west", webhooks=WebhookOptions(secret_env="MY_SECRET"))
    assert explicit.webhook_secret_env == "MY_SECRET"
