"""Configuration: TOML + ``${ENV}`` interpolation, validated once, secrets never printed."""

from sentinel_signl4.config.loader import ConfigError, load_config, parse_config
from sentinel_signl4.config.schema import (
    CLOUDS,
    VALID_CLOSE_PAIRS,
    AzureConfig,
    CloudEndpoints,
    Config,
    ConnectorConfig,
    ConsoleConfig,
    ConsoleUser,
    CredentialConfig,
    FilterConfig,
    PauseConfig,
    ServerConfig,
    Signl4Config,
    StoreConfig,
    SyncConfig,
    TlsConfig,
)

__all__ = [
    "CLOUDS",
    "VALID_CLOSE_PAIRS",
    "AzureConfig",
    "CloudEndpoints",
    "Config",
    "ConfigError",
    "ConnectorConfig",
    "ConsoleConfig",
    "ConsoleUser",
    "CredentialConfig",
    "FilterConfig",
    "PauseConfig",
    "ServerConfig",
    "Signl4Config",
    "StoreConfig",
    "SyncConfig",
    "TlsConfig",
    "load_config",
    "parse_config",
]
