"""The enumerations of the configuration, shared by models, validation and admin.

The values are the exact spellings of ``gateway.yaml`` (contract section 1).
"""

from django.db import models


class ClientAuthType(models.TextChoices):
    JWT = "jwt", "JWT bearer token"
    API_KEY = "api_key", "API key"
    NONE = "none", "None"
    OAUTH2_INTROSPECTION = "oauth2_introspection", "OAuth2 token introspection (RFC 7662)"
    SESSION = "session", "Django session cookie (first-party web apps)"


class DownstreamAuthType(models.TextChoices):
    NONE = "none", "None"
    BEARER_FORWARD = "bearer_forward", "Forward the client's bearer token"
    BEARER = "bearer", "Bearer token from env"
    API_KEY = "api_key", "API key header from env"
    MTLS = "mtls", "Mutual TLS"


class Backoff(models.TextChoices):
    EXPONENTIAL = "exponential", "Exponential"
    FIXED = "fixed", "Fixed"
    NONE = "none", "None"


class RetryOn(models.TextChoices):
    SERVER_ERROR = "5xx", "5xx"
    TIMEOUT = "timeout", "Timeout"
    CONNECT_ERROR = "connect_error", "Connection error"
    TOO_MANY_REQUESTS = "429", "429"


class RateLimitScope(models.TextChoices):
    USER = "user", "Per user"
    IP = "ip", "Per client IP"
    ENDPOINT = "endpoint", "Per endpoint and user"
    GLOBAL = "global", "Global"


class CacheScope(models.TextChoices):
    USER = "user", "Per user (private)"
    SHARED = "shared", "Shared (public)"


class EndpointMethod(models.TextChoices):
    GET = "GET"
    POST = "POST"
    PUT = "PUT"
    PATCH = "PATCH"
    DELETE = "DELETE"


class CallMethod(models.TextChoices):
    GET = "GET"
    HEAD = "HEAD"
    POST = "POST"
    PUT = "PUT"
    PATCH = "PATCH"
    DELETE = "DELETE"
    OPTIONS = "OPTIONS"


class Transport(models.TextChoices):
    REST = "rest", "REST"


JWT_ALGORITHMS = ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256")


class SchemaViolationAction(models.TextChoices):
    LOG = "log", "log (count and log line)"
    FAIL = "fail", "fail (502 CONTRACT_VIOLATION)"
