"""Who is asking: the current ``Principal`` from a bearer key, the admin token or a
browser session, and the Redis store of API keys, sessions and failed logins.

Routes name ``PrincipalDep`` and check it with afflux.shared.core.access; forms
check ``CsrfDep``. ``create_app`` puts an ``AccessStore`` on ``app.state.access``
(once Redis is connected) and an ``AccessConfig`` on ``app.state.access_config``.
docs/portal.md ("Access") describes the contract.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Depends, Request

from afflux.shared.core import access
from afflux.shared.core.access import ADMIN, KeyRole, Principal, Throttle
from afflux.shared.core.ids import new_id
from afflux.shared.io.http.client_address import ProxyTrust
from afflux.shared.io.http.problems import Problem

if TYPE_CHECKING:
    from redis.asyncio import Redis

SESSION_COOKIE = "afx_session"
LOGIN_CSRF_COOKIE = "afx_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
# One hash tag: every access key lands in one Redis Cluster slot, so a transaction
# may touch a key record and its hash index together.
_PREFIX = "afx:{access}:"


@dataclass(frozen=True)
class AccessConfig:
    """How sessions behave: from the service's settings at start-up."""

    admin_token: str | None
    session_ttl_s: int = 8 * 3600
    secure_cookie: bool = False  # True when the public URL is https
    public_origins: frozenset[str] = frozenset()  # besides the request's own origin
    throttle: Throttle = field(default_factory=Throttle)
    # Who the client is, for the throttle: the TCP peer unless it is a trusted proxy.
    proxies: ProxyTrust = field(default_factory=ProxyTrust)


@dataclass(frozen=True)
class KeyRecord:
    """An API key as stored: never the key, only its hash."""

    key_id: str
    role: KeyRole
    subject: str
    key_hash: str
    created_at: int
    rotated_at: int | None = None
    revoked_at: int | None = None

    def public(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "role": self.role,
            "subject": self.subject,
            "created_at": self.created_at,
            "rotated_at": self.rotated_at,
            "revoked_at": self.revoked_at,
        }


@dataclass(frozen=True)
class Session:
    principal: Principal
    csrf: str
    credential_hash: str  # the key's (or admin token's) hash when the session began


def _record_from(fields: dict[bytes, bytes]) -> KeyRecord:
    def opt(name: bytes) -> int | None:
        raw = fields.get(name)
        return int(raw) if raw else None

    role: KeyRole = "creator" if fields[b"role"] == b"creator" else "merchant"
    return KeyRecord(
        key_id=fields[b"key_id"].decode(),
        role=role,
        subject=fields[b"subject"].decode(),
        key_hash=fields[b"key_hash"].decode(),
        created_at=int(fields[b"created_at"]),
        rotated_at=opt(b"rotated_at"),
        revoked_at=opt(b"revoked_at"),
    )


_Fields = dict[str | bytes, bytes | float | int | str]


def _record_fields(record: KeyRecord) -> _Fields:
    return {
        "key_id": record.key_id,
        "role": record.role,
        "subject": record.subject,
        "key_hash": record.key_hash,
        "created_at": str(record.created_at),
        "rotated_at": "" if record.rotated_at is None else str(record.rotated_at),
        "revoked_at": "" if record.revoked_at is None else str(record.revoked_at),
    }


# A key record changes only in these scripts, each given the key hash it was read with:
# a record that changed meanwhile (another rotation) is read again; a revoked one is
# never rotated, and a rotation never writes revoked_at. KEYS share the {access} slot.
_DONE, _REFUSED = 1, 0  # and -1: changed meanwhile, read it again
_CHANGE_ATTEMPTS = 16
_CHECK_RECORD = """
local held = redis.call('HMGET', KEYS[1], 'key_hash', 'revoked_at')
if not held[1] or (held[2] and held[2] ~= '') then return 0 end
if held[1] ~= ARGV[1] then return -1 end
"""
# KEYS: the record, the index of its hash as read, the index of the new hash;
# ARGV: the hash as read, the new hash, now, the key id.
_ROTATE = (
    _CHECK_RECORD
    + """
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'key_hash', ARGV[2], 'rotated_at', ARGV[3])
redis.call('SET', KEYS[3], ARGV[4])
return 1
"""
)
# KEYS: the record, the index of its hash as read; ARGV: the hash as read, now.
_REVOKE = (
    _CHECK_RECORD
    + """
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'revoked_at', ARGV[2])
return 1
"""
)


# Live sessions per credential (a key, or the admin token). Logging in never counts as
# a failure, so a key could open sessions without end (about 440 bytes of Redis each for
# 8 h, in the Redis that holds the ledger, up to its maxmemory); the oldest beyond this
# many is ended. Enough for a person's devices and browsers.
MAX_SESSIONS_PER_CREDENTIAL = 20
# KEYS: the new session, its credential's sessions (scored by start, in microseconds:
# logins a millisecond apart tied, and the tie ended a newer session than the oldest);
# ARGV: the time to live (s), the bound, the session's field/value pairs.
_BEGIN_SESSION = """
local ttl = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - ttl * 1000000)
redis.call('ZADD', KEYS[2], now, KEYS[1])
redis.call('EXPIRE', KEYS[2], ttl)
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[2])
if over > 0 then
  local oldest = redis.call('ZPOPMIN', KEYS[2], over)
  for i = 1, #oldest, 2 do redis.call('DEL', oldest[i]) end
end
return 1
"""


def _token_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class AccessStore:
    """API keys (by id, and an index from hash to id), sessions and failed logins."""

    def __init__(self, redis: Redis[bytes]) -> None:
        self.redis = redis
        self._rotate = redis.register_script(_ROTATE)
        self._revoke = redis.register_script(_REVOKE)
        self._begin_session = redis.register_script(_BEGIN_SESSION)

    # -- keys --------------------------------------------------------------------------

    def _key(self, key_id: str) -> str:
        return f"{_PREFIX}key:{key_id}"

    def _by_hash(self, key_hash: str) -> str:
        return f"{_PREFIX}hash:{key_hash}"

    async def issue(self, role: KeyRole, subject: str, now: int) -> tuple[KeyRecord, str]:
        """A new key for ``subject``: its record and the key, which is never stored."""
        text = access.key_text(role, secrets.token_urlsafe(access.KEY_RANDOM_BYTES))
        record = KeyRecord(new_id("key"), role, subject, access.key_hash(text), now)
        async with self.redis.pipeline(transaction=True) as tx:
            tx.hset(self._key(record.key_id), mapping=_record_fields(record))
            tx.set(self._by_hash(record.key_hash), record.key_id)
            tx.zadd(f"{_PREFIX}keys", {record.key_id: now})
            await tx.execute()
        return record, text

    async def get(self, key_id: str) -> KeyRecord | None:
        fields = await self.redis.hgetall(self._key(key_id))
        return _record_from(fields) if fields else None

    async def listed(self, role: str | None = None, subject: str | None = None) -> list[KeyRecord]:
        ids = await self.redis.zrange(f"{_PREFIX}keys", 0, -1)
        records = [await self.get(raw.decode()) for raw in ids]
        return [
            r
            for r in records
            if r is not None
            and (role is None or r.role == role)
            and (subject is None or r.subject == subject)
        ]

    async def rotate(self, key_id: str, now: int) -> tuple[KeyRecord, str] | None:
        """A new key under the same id; the old one stops working at once. None for an
        unknown or revoked key: a revoked key stays revoked, also when the revocation
        races this rotation (the record changes only in one atomic script)."""
        for _ in range(_CHANGE_ATTEMPTS):
            record = await self.get(key_id)
            if record is None or record.revoked_at is not None:
                return None
            text = access.key_text(record.role, secrets.token_urlsafe(access.KEY_RANDOM_BYTES))
            rotated = replace(record, key_hash=access.key_hash(text), rotated_at=now)
            keys = [self._key(key_id), self._by_hash(record.key_hash)]
            keys.append(self._by_hash(rotated.key_hash))
            args = [record.key_hash, rotated.key_hash, str(now), key_id]
            outcome = int(await self._rotate(keys=keys, args=args))
            if outcome == _DONE:
                return rotated, text
            if outcome == _REFUSED:
                return None
        raise RuntimeError(f"key {key_id} kept changing while being rotated")

    async def revoke(self, key_id: str, now: int) -> KeyRecord | None:
        """The key stops working at once, and so do the sessions it began; the record
        stays (listed as revoked). A rotation racing it either came first (and its new
        key is revoked with the record) or finds the key revoked."""
        for _ in range(_CHANGE_ATTEMPTS):
            record = await self.get(key_id)
            if record is None:
                return None
            if record.revoked_at is not None:
                return record
            keys = [self._key(key_id), self._by_hash(record.key_hash)]
            outcome = int(await self._revoke(keys=keys, args=[record.key_hash, str(now)]))
            if outcome == _DONE:
                return replace(record, revoked_at=now)
            if outcome == _REFUSED:  # revoked meanwhile: the first revocation stands
                return await self.get(key_id)
        raise RuntimeError(f"key {key_id} kept changing while being revoked")

    async def principal_of_key(self, text: str) -> Principal | None:
        role = access.role_of_key(text)
        if role is None:
            return None
        raw = await self.redis.get(self._by_hash(access.key_hash(text)))
        record = await self.get(raw.decode()) if raw else None
        if record is None or record.revoked_at is not None or record.role != role:
            return None
        return Principal(record.role, record.subject, record.key_id)

    # -- sessions ----------------------------------------------------------------------

    def _session(self, session_id: str) -> str:
        # Stored under the id's hash: a Redis dump does not hand out live sessions.
        return f"{_PREFIX}session:{_token_hash(session_id)}"

    async def begin_session(
        self, principal: Principal, credential: str, ttl_s: int
    ) -> tuple[str, str]:
        """A new session for ``principal``, who logged in with ``credential`` (the admin
        token or a key): its id (the cookie) and its CSRF token."""
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        # A key session keeps the hash of the key's stored hash, so a rotated key's
        # sessions end with it; an admin session the admin token's hash.
        held = credential if principal.is_admin else access.key_hash(credential)
        credential_hash = _token_hash(held)
        fields: _Fields = {
            "role": principal.role,
            "subject": principal.subject or "",
            "key_id": principal.key_id or "",
            "csrf": csrf,
            "credential_hash": credential_hash,
        }
        pairs = [part for name, value in fields.items() for part in (name, value)]
        await self._begin_session(
            keys=[self._session(session_id), self._sessions_of(credential_hash)],
            args=[ttl_s, MAX_SESSIONS_PER_CREDENTIAL, *pairs],
        )
        return session_id, csrf

    def _sessions_of(self, credential_hash: str) -> str:
        return f"{_PREFIX}sessions-of:{credential_hash}"

    async def session(self, session_id: str, admin_token: str | None) -> Session | None:
        """The live session, or None once it expired, ended, or its key was rotated or
        revoked (or the admin token changed)."""
        fields = await self.redis.hgetall(self._session(session_id))
        if not fields:
            return None
        role = fields[b"role"].decode()
        credential_hash = fields[b"credential_hash"].decode()
        if role == "admin":
            if admin_token is None or not access.same_secret(
                credential_hash, _token_hash(admin_token)
            ):
                return None
            principal = ADMIN
        else:
            record = await self.get(fields[b"key_id"].decode())
            if record is None or record.revoked_at is not None:
                return None
            if not access.same_secret(credential_hash, _token_hash(record.key_hash)):
                return None
            principal = Principal(record.role, record.subject, record.key_id)
        return Session(principal, fields[b"csrf"].decode(), credential_hash)

    async def end_session(self, session_id: str) -> None:
        key = self._session(session_id)
        credential_hash = await self.redis.hget(key, "credential_hash")
        async with self.redis.pipeline(transaction=True) as tx:
            tx.delete(key)
            if credential_hash is not None:
                tx.zrem(self._sessions_of(credential_hash.decode()), key)
            await tx.execute()

    # -- failed logins -----------------------------------------------------------------

    def _failures(self, address: str) -> str:
        return f"{_PREFIX}login-failures:{address}"

    async def failures(self, address: str) -> tuple[int, int]:
        """Failed logins from ``address`` in the current window, and seconds it has left."""
        async with self.redis.pipeline(transaction=True) as tx:
            tx.get(self._failures(address))
            tx.ttl(self._failures(address))
            raw, ttl = await tx.execute()
        return (int(raw) if raw else 0), max(int(ttl), 1)

    async def claim_attempt(self, address: str, window_s: int) -> tuple[int, int]:
        """Count a login attempt from ``address`` as failed until ``forgive_attempt``: the
        failed (or still undecided) attempts before it in the window, and seconds the
        window has left. Counted before the key is checked, so attempts at once each see
        the others: reading first and counting after let 40 at once check 27 keys
        against a limit of 5."""
        key = self._failures(address)
        async with self.redis.pipeline(transaction=True) as tx:
            tx.set(key, 0, ex=window_s, nx=True)
            tx.incr(key)
            tx.ttl(key)
            _, count, ttl = await tx.execute()
        return int(count) - 1, max(int(ttl), 1)

    async def forgive_attempt(self, address: str) -> None:
        """Take back a claimed attempt (the key was right, or the attempt was refused
        unchecked); never below zero, never on a window already over."""
        await self.redis.eval(_FORGIVE, 1, self._failures(address))  # type: ignore[no-untyped-call]


# A window that expired between the claim and this would otherwise come back as -1
# without an expiry: one more attempt for good.
_FORGIVE = """
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then return redis.call('DECR', KEYS[1]) end
return 0
"""

# -- dependencies ----------------------------------------------------------------------


def _config(request: Request) -> AccessConfig:
    config: AccessConfig = request.app.state.access_config
    return config


def _store(request: Request) -> AccessStore | None:
    store: AccessStore | None = getattr(request.app.state, "access", None)
    return store


async def refuse_credentials_in_query(request: Request) -> None:
    """``refuse_credential_params`` as the payouts app's dependency, on every route."""
    refuse_credential_params(request)


def refuse_credential_params(request: Request) -> None:
    """A key or token in a URL ends up in logs, history and Referer headers: refused
    (400 naming the parameter); every admin route of every service checks it too."""
    for name, value in request.query_params.multi_items():
        if name.lower() in access.CREDENTIAL_PARAMS or access.looks_like_credential(value):
            raise Problem(
                400,
                name,
                "credentials are never accepted in the URL: send Authorization: Bearer <key>",
            )


def _unauthorized(reason: str) -> Problem:
    return Problem(401, "Authorization", reason, _CHALLENGE)


async def _from_bearer(request: Request, authorization: str) -> Principal:
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("use Authorization: Bearer <key>")
    admin_token = _config(request).admin_token
    if admin_token is not None and access.same_secret(token, admin_token):
        return ADMIN
    store = _store(request)
    if access.role_of_key(token) is not None:
        if store is None:
            raise Problem(503, None, "starting")
        principal = await store.principal_of_key(token)
        if principal is not None:
            return principal
    raise _unauthorized("wrong, rotated or revoked key")


async def current_principal(request: Request) -> Principal:
    """The principal of ``Authorization: Bearer <admin token | key>``, else of the
    session cookie; 401 (with a problem body) without either or with a bad one."""
    await refuse_credentials_in_query(request)
    authorization = request.headers.get("authorization", "")
    if authorization:
        return await _from_bearer(request, authorization)
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        store = _store(request)
        if store is None:
            raise Problem(503, None, "starting")
        session = await store.session(session_id, _config(request).admin_token)
        if session is None:
            raise _unauthorized("the session expired or ended: log in again")
        request.state.session = session
        return session.principal
    raise _unauthorized("missing: use Authorization: Bearer <key>, or log in")


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def session_of(request: Request) -> Session | None:
    """The session behind this request's principal (None for a bearer request)."""
    session: Session | None = getattr(request.state, "session", None)
    return session


def csrf_token(request: Request) -> str:
    """The token a form of a logged-in page carries in its hidden ``csrf_token`` field
    (after ``PrincipalDep`` ran); empty for a bearer request, which needs none."""
    session = session_of(request)
    return session.csrf if session else ""


async def form_fields(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body's fields (the last of a repeated
    name); empty for any other body. Forms of afflux pages are all url-encoded."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return {}
    body = await request.body()
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        raise Problem(422, "body", "not a url-encoded form") from None
    return dict(pairs)


def own_origins(request: Request) -> set[str]:
    base = f"{request.url.scheme}://{request.url.netloc}"
    return {base, *_config(request).public_origins}


def check_origin(request: Request) -> None:
    if not access.origin_matches(
        request.headers.get("origin"), request.headers.get("referer"), own_origins(request)
    ):
        raise Problem(403, "Origin", "the form was not sent from a page of this service")


async def require_csrf(request: Request, principal: PrincipalDep) -> Principal:
    """A state-changing request made with the session cookie must come from one of our
    pages (Origin) and carry the session's CSRF token (form field ``csrf_token`` or
    header ``X-CSRF-Token``); a bearer request carries no ambient credential."""
    session = session_of(request)
    if session is None:
        return principal
    check_origin(request)
    given = request.headers.get(CSRF_HEADER, "") or (await form_fields(request)).get(CSRF_FIELD, "")
    if not given or not access.same_secret(given, session.csrf):
        raise Problem(403, CSRF_FIELD, "missing or wrong CSRF token: reload the page")
    return principal


CsrfDep = Annotated[Principal, Depends(require_csrf)]
