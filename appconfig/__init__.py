"""Settings shared by every layer of the platform."""

from appconfig.settings import Settings, get_settings

__all__ = ["Settings", "get_settings"]
