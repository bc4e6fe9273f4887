"""The engine: runs a compiled Plan. No Django, registry or settings imports here
(except the thin serving layer in ``orchestration.web`` and ``orchestration.apps``)."""
