"""The codec endpoint: `POST /codec/decode` and `/codec/encode`, as the Temporal UI and CLI call a remote codec.

It holds the payload keys so that people need not: the UI (its codec endpoint set to `<this service>/codec`)
and `temporal --codec-endpoint` show a history decrypted to whoever presents the codec credential, and as
ciphertext to everybody else. The credential is checked in one place, `credential_allowed`. The UI sends it as a
cookie (`GET /codec/login` sets it; "include cross-origin credentials" in the UI's codec settings) or, behind
an HTTPS endpoint with the UI's own login, as its bearer access token; the CLI as `--codec-auth 'Bearer …'`.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payloads

from settings import Settings, converter

COOKIE = "codec_token"
LOGIN_FORM = """<!doctype html><title>Decode payloads</title>
<form method="post" action="/codec/login">
<p>The codec credential lets this browser's Temporal UI show incidents' payloads decrypted.</p>
<label>Codec token <input type="password" name="token" autofocus></label> <button>Sign in</button>
</form>"""


def credential_allowed(settings: Settings, credential: str) -> bool:
    """The one check of who may decode: the credential is the codec token. With no CODEC_TOKEN configured
    nobody is allowed, and payloads stay encrypted for everyone."""
    if settings.codec_token is None or not credential:
        return False
    return hmac.compare_digest(credential.encode(), settings.codec_token.get_secret_value().encode())


def caller_allowed(settings: Settings, request: Request) -> bool:
    """The request's credential (the bearer header, else the cookie /codec/login set), checked."""
    header = request.headers.get("authorization", "")
    given = header.removeprefix("Bearer ") if header.startswith("Bearer ") else request.cookies.get(COOKIE, "")
    return credential_allowed(settings, given)


def ui_origin(settings: Settings) -> str:
    """The Temporal UI's origin (scheme://host:port of TEMPORAL_UI_URL), the one origin CORS lets in."""
    parts = urlsplit(settings.temporal_ui_url)
    return f"{parts.scheme}://{parts.netloc}"


def router(settings: Settings, read_body: Callable[[Request], Awaitable[bytes]]) -> APIRouter:
    routes = APIRouter()
    codec = converter(settings).payload_codec  # None without payload keys: payloads pass as they are
    cors = {
        "Access-Control-Allow-Origin": ui_origin(settings),
        "Access-Control-Allow-Credentials": "true",
        "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type, X-Namespace, Authorization",
        "Vary": "Origin",
    }

    def refused(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=cors)

    @routes.options("/codec/{operation}")
    async def preflight(operation: str) -> Response:
        return Response(status_code=204, headers=cors)

    @routes.post("/codec/encode")
    async def encode(request: Request) -> Response:
        return await convert("encode", request)

    @routes.post("/codec/decode")
    async def decode(request: Request) -> Response:
        return await convert("decode", request)

    async def convert(operation: str, request: Request) -> Response:
        if not caller_allowed(settings, request):
            return refused(401, "the codec endpoint needs the codec credential (CODEC_TOKEN)")
        namespace = request.headers.get("x-namespace", settings.temporal_namespace)
        if namespace != settings.temporal_namespace:
            return refused(403, f"this codec serves namespace {settings.temporal_namespace!r}, not {namespace!r}")
        try:
            given = json_format.Parse(await read_body(request), Payloads())
        except (json_format.ParseError, DecodeError, UnicodeDecodeError) as err:
            return refused(400, f"body is not Temporal payloads as JSON: {str(err)[:200]}")
        payloads = list(given.payloads)
        if codec is not None:
            try:
                payloads = await (codec.encode(payloads) if operation == "encode" else codec.decode(payloads))
            except ValueError as err:  # a payload under a key this service does not hold, or altered
                return refused(422, str(err))
        body = json_format.MessageToJson(Payloads(payloads=payloads))
        return Response(body, media_type="application/json", headers=cors)

    @routes.get("/codec/login")
    async def login_form() -> HTMLResponse:
        return HTMLResponse(LOGIN_FORM)

    @routes.post("/codec/login")
    async def login(request: Request) -> Response:
        token = parse_qs((await read_body(request)).decode(errors="replace")).get("token", [""])[0]
        if not credential_allowed(settings, token):
            return HTMLResponse("wrong codec token", status_code=401)
        answer = HTMLResponse("This browser may now decode payloads: the Temporal UI shows them decrypted.")
        # Strict: sent only from the same site (the UI on localhost to this service on localhost).
        answer.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/codec")
        return answer

    return routes
