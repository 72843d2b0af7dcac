"""DRF authentication by personal access token: ``Authorization: Token <t>`` or
``Authorization: Bearer <t>``; the token's user (and so their role) is the caller."""

from __future__ import annotations

from rest_framework import authentication, exceptions


class AccessTokenAuthentication(authentication.BaseAuthentication):
    """Personal access tokens (stored hashed); anything else in the header is a 401."""

    keywords = (b"token", b"bearer")

    def authenticate(self, request):
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower() not in self.keywords:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Send the header as “Authorization: Token <token>” (or Bearer)."
            )
        from .services import token_authenticate

        try:
            key = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("The token is not ASCII text.") from None
        token = token_authenticate(key=key)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        return token.user, token

    def authenticate_header(self, request) -> str:
        return "Token"
