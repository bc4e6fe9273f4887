"""The admin REST API (contract section 5), on Django REST framework: thin views over
``registry.services`` and the one validator, under ``/api/admin/v1/``."""
