"""On-call pages: plain views, one selector and one template each, staff only.

Viewing needs staff; acting on a breaker also needs ``console.operate_breakers``
(superusers have it), so a wider on-call group can watch without touching.
"""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from console import selectors, services
from console.choices import BreakerAction

logger = logging.getLogger(__name__)

OPERATE_PERMISSION = "console.operate_breakers"
BOARD_REFRESH_S = 5


@require_GET
@staff_member_required
def board(request: HttpRequest) -> HttpResponse:
    context = {"board": selectors.breaker_board_get(), "refresh_s": BOARD_REFRESH_S}
    return render(request, "console/board.html", context)


@require_GET
@staff_member_required
def service(request: HttpRequest, name: str) -> HttpResponse:
    page = selectors.service_page_get(name=name)
    if page is None:
        raise Http404(f"No service named {name!r} in the served configuration")
    context = {
        "page": page,
        "can_operate": request.user.has_perm(OPERATE_PERMISSION),
        "actions": BreakerAction.choices,
        "refresh_s": BOARD_REFRESH_S * 2,
    }
    return render(request, "console/service.html", context)


@require_POST
@staff_member_required
def service_action(request: HttpRequest, name: str) -> HttpResponse:
    if not request.user.has_perm(OPERATE_PERMISSION):
        return HttpResponseForbidden("You can view breakers but not act on them (console.operate_breakers).")
    action = request.POST.get("action", "")
    if action not in BreakerAction.values:
        messages.error(request, "Unknown action.")
        return redirect("console:service", name=name)
    try:
        entry = services.breaker_action_perform(
            user=request.user, service=name, action=action, reason=request.POST.get("reason", "")
        )
    except services.ReasonRequired as missing:
        messages.error(request, str(missing))
    except services.UnknownService:
        raise Http404(f"No service named {name!r} in the served configuration") from None
    except DatabaseError:
        logger.exception("console: the audit entry for %s on %s could not be written", action, name)
        messages.error(request, "The audit log could not be written, so the breaker was not changed. Try again.")
    else:
        messages.success(request, f"{entry.get_action_display()} done for {name}: now {entry.state_after}.")
    return redirect("console:service", name=name)
