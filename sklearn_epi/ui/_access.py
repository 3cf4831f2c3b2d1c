"""The token check: every request, Dash's own included, must carry the interface's token."""

from __future__ import annotations

import hmac

from flask import Response, g, request

#: The cookie that remembers a token given once in the URL.
COOKIE = "sklearn_epi_ui_token"


def require_token(server, token: str) -> None:
    """Answer 403 to every request (pages, ``/_dash-*``, assets) that lacks ``token``.

    The token is accepted as the query parameter ``token`` (then remembered
    in a cookie), the cookie, or the header ``Authorization: token <token>``.
    """

    def same(given) -> bool:
        return given is not None and hmac.compare_digest(str(given).encode(), token.encode())

    @server.before_request
    def check():
        if same(request.args.get("token")):
            g.remember_token = True
            return None
        authorization = request.headers.get("Authorization", "")
        if same(request.cookies.get(COOKIE)) or (
            authorization.startswith("token ") and same(authorization[len("token ") :])
        ):
            return None
        return Response(
            "403 Forbidden: this sklearn-epi interface needs its token: open the URL with "
            "?token=... that `sklearn-epi ui` printed\n",
            status=403,
            mimetype="text/plain",
        )

    @server.after_request
    def remember(response):
        if g.get("remember_token"):
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict")
        return response
