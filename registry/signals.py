"""What the registry tells the rest of the process, sent explicitly by ``registry.services``
(never from model signals).

``config_changed`` is sent once a change to the configuration (API keys included) has
committed, with ``version``: the serving layer subscribes to look at the version at
once instead of at its next poll. Other workers learn of it by polling the database.
"""

from __future__ import annotations

from django.dispatch import Signal

config_changed = Signal()
