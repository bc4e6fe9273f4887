"""Helpers shared by several test folders: fake services, Redis connections, the demo simulator."""
