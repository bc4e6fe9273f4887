"""The CDN layer of the response cache (contract section 8, ``cache.cdn: true``).

Two halves:

* headers on a ``cdn`` endpoint's cached answers: ``Cache-Control: public, max-age=N,
  s-maxage=N`` (N = the entry's remaining TTL) and the entry's tags in ``Surrogate-Key``
  (Fastly and most CDNs; space-separated) and ``Cache-Tag`` (Cloudflare, Akamai;
  comma-separated), so the CDN can purge by tag;
* ``CdnPurger``: one POST ``{"tags": [...]}`` to ``GATEWAY_CDN_PURGE_URL`` with
  ``Authorization: Bearer <GATEWAY_CDN_PURGE_TOKEN>``. Any answer but 2xx, and any
  transport error, raises ``CdnPurgeFailed``; the Celery task retries it.

Tags are rendered from templates and may hold any character. A header value may not
(a newline there would be an injected header, Django refuses it with a 500), and a
space or comma would split one tag in two. So each tag goes out percent-encoded
(``cdn_tag``), the same way in the header and in the purge, so they always match.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote

import httpx

logger = logging.getLogger(__name__)

# Fastly allows 16 KiB of Surrogate-Key, Cloudflare 16 KiB of Cache-Tag; stay well under.
MAX_TAG_HEADER_CHARS = 8000
_SAFE = "!$&'()*+-.:;=@_~/[]^{}|<>"  # printable, never a space, comma, '"' or '%'


def cdn_tag(tag: str) -> str:
    """The tag as a CDN sees it: printable ASCII without separators."""
    return quote(tag, safe=_SAFE)


def cdn_tags(tags: Iterable[str]) -> list[str]:
    """Encoded, de-duplicated and cut to fit one header (a cut is logged)."""
    kept: list[str] = []
    used = 0
    for tag in dict.fromkeys(cdn_tag(t) for t in tags if t):
        if used + len(tag) + 1 > MAX_TAG_HEADER_CHARS:
            logger.warning("cdn: tag header full; %d tags left out", len(set(tags)) - len(kept))
            break
        kept.append(tag)
        used += len(tag) + 1
    return kept


def cdn_headers(tags: Iterable[str], max_age_s: int) -> dict[str, str]:
    encoded = cdn_tags(tags)
    headers = {"Cache-Control": f"public, max-age={max_age_s}, s-maxage={max_age_s}"}
    if encoded:
        headers["Surrogate-Key"] = " ".join(encoded)
        headers["Cache-Tag"] = ",".join(encoded)
    return headers


class CdnPurgeFailed(Exception):
    """The CDN did not confirm the purge; the task retries it."""


@dataclass(frozen=True, slots=True)
class CdnPurger:
    url: str
    token: str = ""
    timeout_s: float = 10.0

    def purge(self, tags: Iterable[str]) -> int:
        """POST the tags; the number sent. Raises ``CdnPurgeFailed`` unless the CDN answers 2xx."""
        encoded = [cdn_tag(tag) for tag in dict.fromkeys(tags) if tag]
        if not encoded:
            return 0
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            response = httpx.post(self.url, json={"tags": encoded}, headers=headers, timeout=self.timeout_s)
        except httpx.HTTPError as error:
            raise CdnPurgeFailed(f"CDN purge request failed: {type(error).__name__}: {error}") from error
        if not response.is_success:
            raise CdnPurgeFailed(f"CDN purge answered {response.status_code}")
        return len(encoded)
