"""Settings shared by every layer of the platform."""

from appconfig.settings import Settings, get_settings, is_set_in_environment, path_with

__all__ = ["Settings", "get_settings", "is_set_in_environment", "path_with"]
