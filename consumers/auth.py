"""Websocket authentication and origin policy.

Browsers authenticate with the session cookie; other clients send
``Authorization: Token <key>``.  Browsers always send ``Origin``, so a
cookie-authenticated socket must come from one of our hosts (this is what
stops cross-site websocket hijacking).  A token client has no ambient
credential to steal, so it may omit ``Origin``; a foreign one is refused
either way.
"""

from __future__ import annotations

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.contrib.auth.models import AnonymousUser


@database_sync_to_async
def _user_for_token(key: str):
    from rest_framework.authtoken.models import Token

    try:
        return Token.objects.select_related("user").get(key=key).user
    except Token.DoesNotExist:
        return None


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class TokenAuthMiddleware:
    """Authenticates ``Authorization: Token <key>``; a bad token is anonymous."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        header = _header(scope, b"authorization")
        if header is not None:
            scheme, _, key = header.partition(" ")
            user = None
            if scheme.lower() == "token" and key.strip():
                user = await _user_for_token(key.strip()[:64])
            if user is None or not user.is_active:
                user = AnonymousUser()
            # A token, valid or not, decides who this is: no cookie fallback.
            scope = dict(scope, user=user, token_auth=True)
        return await self.app(scope, receive, send)


class _SessionUnlessToken:
    def __init__(self, app):
        self.app = app
        self.session_app = AuthMiddlewareStack(app)

    async def __call__(self, scope, receive, send):
        if scope.get("token_auth"):
            return await self.app(scope, receive, send)
        return await self.session_app(scope, receive, send)


class _OriginPolicy(OriginValidator):
    def __init__(self, application):
        super().__init__(application, allowed_origins=settings.ALLOWED_HOSTS or ["localhost"])

    async def __call__(self, scope, receive, send):
        if _header(scope, b"origin") is None and _header(scope, b"authorization") is not None:
            return await self.application(scope, receive, send)
        return await super().__call__(scope, receive, send)


def websocket_auth(app):
    """Origin check, then token auth, then session auth."""
    return _OriginPolicy(TokenAuthMiddleware(_SessionUnlessToken(app)))
