"""Who may see whose content: the privacy contract shared by feeds, Explore and suggestions."""

from visibility.graph import VisibilityGraph

__all__ = ["VisibilityGraph"]
