"""The registry's admin: thin ModelAdmins that validate with ``gateway check``'s rules
and call ``registry.services`` for every change (the version bump included)."""

from registry.admin import api_key_admin, endpoint_admin, layer_admin, service_admin, version_admin

__all__ = ["api_key_admin", "endpoint_admin", "layer_admin", "service_admin", "version_admin"]
