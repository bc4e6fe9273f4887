"""Downstream services: one client per service (auth, bulkhead, breaker) over a
fast urllib3 transport behind httpx's API."""

from orchestration.downstream.client import DownstreamClient
from orchestration.downstream.pool import DownstreamPool, TransportFactory
from orchestration.downstream.request import RequestSpec
from orchestration.downstream.transport import Urllib3Transport

__all__ = ["DownstreamClient", "DownstreamPool", "RequestSpec", "TransportFactory", "Urllib3Transport"]
