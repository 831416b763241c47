"""Settings: the space's API keys (create, revoke; a new key shown once), signing secret and
subscriptions (subscribe, test, re-enable, delete)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import Form, Request, Response

from ordermill.errors import InvalidInput, Problem
from ordermill.permissions import BUILTIN_ROLES, Perm
from ordermill.service import Service
from ordermill.storage.subscriptions import EVENT_TYPES
from ordermill.times import iso
from ordermill.ui.routing import ui_router
from ordermill.ui.session import Session, SessionDep
from ordermill.ui.templating import Toast, is_htmx, redirect, render

router = ui_router()
ROTATION_OVERLAP = timedelta(hours=24)


def masked(secret: str) -> str:
    """Enough of a secret to tell two apart, never enough to use it."""
    return secret[:10] + "…" + secret[-4:]


async def _keys_context(service: Service, session: Session) -> dict[str, Any]:
    keys = await service.store.spaces.list_api_keys(session.space_key)
    custom = await service.people.users.custom_roles(session.space_key)
    return {"keys": keys, "key_roles": [*BUILTIN_ROLES, *custom]}


async def _secret_context(service: Service, session: Session) -> dict[str, Any]:
    secrets = await service.store.spaces.signing_secrets(session.space_key)
    return {"signing_secrets": [masked(s) for s in secrets]}


@router.get("/settings")
async def settings_page(request: Request, session: SessionDep) -> Response:
    service: Service = request.app.state.service
    space = await service.store.spaces.get_space(session.space_key)
    return render(
        request,
        "settings.html",
        active="settings",
        space=space,
        **await _keys_context(service, session),
        **await _secret_context(service, session),
        subscriptions=(
            await service.store.subscriptions.of_space(session.space_key)
            if session.can(Perm.SUBSCRIPTION_MANAGE)
            else ()
        ),
        event_types=EVENT_TYPES,
    )


@router.post("/settings/subscriptions")
async def subscribe(
    request: Request,
    session: SessionDep,
    uri: Annotated[str, Form(max_length=2048)],
    events: Annotated[list[str] | None, Form(max_length=16)] = None,
) -> Response:
    service: Service = request.app.state.service
    made = await service.subscribe(session.space_key, uri.strip(), events or [], None)
    return redirect(request, "/settings", Toast(f"Subscribed {made.uri}."))


@router.post("/settings/subscriptions/{subscription_id}/enable")
async def enable_subscription(
    request: Request,
    session: SessionDep,
    subscription_id: str,
    redeliver: Annotated[str, Form(max_length=5)] = "false",
) -> Response:
    service: Service = request.app.state.service
    again = redeliver == "true"
    await service.store.subscriptions.enable(
        session.space_key, subscription_id, redeliver=again, now=service.clock.now()
    )
    said = "on again; everything since its failures began is delivered again" if again else "on"
    return redirect(request, "/settings", Toast(f"Subscription {said}."))


@router.post("/settings/subscriptions/{subscription_id}/test")
async def test_subscription(
    request: Request, session: SessionDep, subscription_id: str
) -> Response:
    service: Service = request.app.state.service
    sent = await service.test_subscription(session.space_key, subscription_id)
    if sent["delivered"]:
        toast = Toast(f"Test event delivered: the endpoint answered {sent['statusCode']}.")
    else:
        toast = Toast(f"Test event not delivered: {sent['error'] or sent['statusCode']}", "error")
    return redirect(request, "/settings", toast)


@router.post("/settings/subscriptions/{subscription_id}/delete")
async def delete_subscription(
    request: Request, session: SessionDep, subscription_id: str
) -> Response:
    service: Service = request.app.state.service
    await service.store.subscriptions.delete(session.space_key, subscription_id)
    return redirect(request, "/settings", Toast("Subscription deleted.", "info"))


@router.post("/settings/api-keys")
async def create_key(
    request: Request,
    session: SessionDep,
    name: Annotated[str, Form(max_length=200)] = "",
    role: Annotated[str, Form(max_length=64)] = "owner",
) -> Response:
    name = name.strip()
    if not name:
        raise InvalidInput([Problem("/name", "give the key a name, such as the shop it is for")])
    service: Service = request.app.state.service
    secret, key = await service.people.create_key(
        session.space_key, name, [role], session.audit_actor(request)
    )
    toast = Toast(f"API key {key.name} created. Copy it now: it is shown only once.")
    if not is_htmx(request):
        return redirect(request, "/settings", toast)
    return render(
        request,
        "partials/api_keys.html",
        new_key=secret,
        new_key_name=key.name,
        toasts=[toast],
        **await _keys_context(service, session),
    )


@router.post("/settings/api-keys/{key_id}/revoke")
async def revoke_key(request: Request, session: SessionDep, key_id: int) -> Response:
    service: Service = request.app.state.service
    key = await service.people.revoke_key(session.space_key, key_id, session.audit_actor(request))
    toast = Toast(f"API key {key.name} ({key.prefix}…) revoked; it no longer works.")
    if not is_htmx(request):
        return redirect(request, "/settings", toast)
    return render(
        request,
        "partials/api_keys.html",
        toasts=[toast],
        **await _keys_context(service, session),
    )


@router.post("/settings/signing-secret/rotate")
async def rotate_secret(request: Request, session: SessionDep) -> Response:
    service: Service = request.app.state.service
    secret, until = await service.store.spaces.rotate_signing_secret(
        session.space_key, ROTATION_OVERLAP
    )
    await service.people.record(
        session.space_key,
        session.audit_actor(request),
        "settings.signing-secret-rotated",
        None,
        {"previousExpiresAt": iso(until)},
    )
    toast = Toast("New signing secret made. Copy it now: it is shown only once.")
    if not is_htmx(request):
        return redirect(request, "/settings", toast)
    return render(
        request,
        "partials/signing_secret.html",
        new_secret=secret,
        old_until=until,
        toasts=[toast],
        **await _secret_context(service, session),
    )
