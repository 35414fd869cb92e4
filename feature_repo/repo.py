"""The Feast objects at module level, for the Feast CLI (`feast apply` collects module globals).

Built for the warehouse the settings name; code applies them with
`featurestore.registry.apply_definitions` instead, which builds them the same way.
"""

from appconfig import get_settings
from feature_repo.definitions import build

_repo = build(get_settings().features_database)
globals().update({obj.name: obj for obj in _repo.objects()})
