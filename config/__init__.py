"""Configuration: one typed settings object built from an injectable environ and an optional TOML file."""

from config.settings import ConfigError, Secret, Settings, load_settings

__all__ = ["ConfigError", "Secret", "Settings", "load_settings"]
