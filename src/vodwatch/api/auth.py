"""Who is calling: a customer backend signing with Tk headers, or a player holding a playback
token. Unknown authkeys, bad signatures and forged tokens all get one answer (40003); a signed
request seen before gets 40004; failed attempts are rate-limited (42900)."""

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

from vodwatch.errors import (
    InvalidCredentials,
    InvalidParameter,
    MissingAuth,
    ReplayedRequest,
    StaleTimestamp,
    TooManyRequests,
    VodwatchError,
)
from vodwatch.origins import is_origin_allowed
from vodwatch.playback_token import PlaybackClaims, is_unexpired, verify_playback_token
from vodwatch.rate_limits import RateLimiter
from vodwatch.settings import ServiceSettings
from vodwatch.signing import (
    TIMESTAMP_WINDOW_SECONDS,
    Signature,
    is_signature_valid,
    is_timestamp_fresh,
    sign_request,
)
from vodwatch.store.database import Database
from vodwatch.store.signed_requests import ReplayGuard
from vodwatch.store.tenants import Tenant, find_tenant, list_enabled_origins

log = logging.getLogger(__name__)
TENANT_CACHE_SECONDS = 10.0
VERIFIED_TOKENS_LIMIT = 50_000
UNKNOWN_AUTHKEYS_LIMIT = 10_000
AUTH_HEADERS = ("tk-authkey", "timestamp", "tk-token", "version")


@dataclass(frozen=True, slots=True)
class Incoming:
    """What auth and the handlers need of one HTTP request, read once on the event loop."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    client: str = ""  # the client's address (the proxy's, unless its headers are trusted)
    scheme: str = "http"  # as the client sent it (idem)


class TenantNotCached(Exception):
    """A lookup that may not wait for the database (on the event loop) missed the cache:
    load ``authkey`` off the loop (``TenantDirectory.find``) and try again."""

    def __init__(self, authkey: str) -> None:
        super().__init__(authkey)
        self.authkey = authkey


class TenantDirectory:
    """Tenants by authkey, cached for a few seconds so most requests skip the tenants table.

    A change made with the CLI (new tenant, allowed origins, a new secret, disabling) is seen
    within ``TENANT_CACHE_SECONDS``; so is a tenant created after its authkey was asked for
    (unknown authkeys are remembered as unknown for as long, a bounded number of them). A
    disabled tenant is found as no tenant.

    A tenant in use never drops out of the cache: once its entry is half as old as that, the
    next lookup has it read again in the background and goes on with the entry it has. Left
    to expire, every request in flight at that moment would miss at once and read the same
    row, each in a thread of its own (measured: up to 40 threads and connections per worker
    every 10 s under load). And however many lookups miss together, one of them reads a given
    authkey while the others wait for its answer.
    """

    def __init__(
        self,
        db: Database,
        ttl_seconds: float = TENANT_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._ttl = ttl_seconds
        self._refresh_after = ttl_seconds / 2
        self._clock = clock
        self._cache: dict[str, tuple[float, Tenant | None]] = {}  # authkey -> (read at, tenant)
        self._origins: tuple[float, frozenset[str]] | None = None
        self._lock = threading.Lock()
        self._reads: dict[str, threading.Event] = {}  # authkey -> set when its read ends
        self._refreshing: set[str] = set()
        self.verified_tokens: dict[str, tuple[PlaybackClaims, tuple[str, ...]]] = {}

    def remember_token(self, token: str, claims: PlaybackClaims, secrets: tuple[str, ...]) -> None:
        """Remember a token verified while its tenant's valid secrets were ``secrets``."""
        if len(self.verified_tokens) >= VERIFIED_TOKENS_LIMIT:
            self.verified_tokens.clear()
        self.verified_tokens[token] = (claims, secrets)

    def clear(self) -> None:
        """Forget what is cached: the next lookups read the tenants table."""
        with self._lock:
            self._cache.clear()
            self._origins = None
            self.verified_tokens.clear()

    def is_origin_known(self, origin: str) -> bool:
        """Whether any tenant allows ``origin``: all a CORS preflight can ask, as it carries no
        token. The beacon itself is then checked against its own tenant's origins."""
        now = time.monotonic()
        cached = self._origins
        if cached is None or now - cached[0] >= self._ttl:
            with self._db.read() as conn:
                known = list_enabled_origins(conn)
            cached = self._origins = (now, known)
        return is_origin_allowed(origin, cached[1])

    def find(self, authkey: str, *, cached_only: bool = False) -> Tenant | None:
        """The tenant of ``authkey``, or None; with ``cached_only`` (on the event loop),
        ``TenantNotCached`` instead of reading the database."""
        cached = self._cache.get(authkey)
        age = self._clock() - cached[0] if cached is not None else self._ttl
        if cached is not None and age < self._ttl:
            if age >= self._refresh_after:
                self._refresh_soon(authkey)
            tenant = cached[1]
        elif cached_only:
            raise TenantNotCached(authkey)
        else:
            tenant = self._read(authkey)
        return None if tenant is None or tenant.is_disabled else tenant

    def _read(self, authkey: str) -> Tenant | None:
        """Read ``authkey``'s tenant into the cache; when a read of it is under way already,
        wait for that one's answer instead. Blocks on the database."""
        with self._lock:
            under_way = self._reads.get(authkey)
            if under_way is None:
                self._reads[authkey] = done = threading.Event()
        if under_way is not None:
            under_way.wait()
            cached = self._cache.get(authkey)
            if cached is not None and self._clock() - cached[0] < self._ttl:
                return cached[1]
            return self._read(authkey)  # that read failed: try it here
        read_at = self._clock()  # the entry is as old as the read, not as its answer
        try:
            with self._db.read() as conn:
                tenant = find_tenant(conn, self._db.secret_box, authkey)
            with self._lock:
                if tenant is None:
                    unknown = sum(1 for _, found in self._cache.values() if found is None)
                    if unknown >= UNKNOWN_AUTHKEYS_LIMIT:
                        self._cache = {k: v for k, v in self._cache.items() if v[1] is not None}
                self._cache[authkey] = (read_at, tenant)
        finally:
            with self._lock:
                del self._reads[authkey]
            done.set()
        return tenant

    def _refresh_soon(self, authkey: str) -> None:
        """Read ``authkey`` again in a thread of its own, unless that is under way."""
        with self._lock:
            if authkey in self._refreshing:
                return
            self._refreshing.add(authkey)
        threading.Thread(
            target=self._refresh, args=(authkey,), name="vodwatch-tenant-refresh", daemon=True
        ).start()

    def _refresh(self, authkey: str) -> None:
        try:
            self._read(authkey)
        except Exception as error:  # noqa: BLE001 - the entry then expires; a request reads it
            log.warning("tenant cache: reading a tenant again failed: %s", type(error).__name__)
        finally:
            with self._lock:
                self._refreshing.discard(authkey)


def has_server_auth(incoming: Incoming) -> bool:
    return "tk-authkey" in incoming.headers


def authenticate_server(
    incoming: Incoming, directory: TenantDirectory, now: float, *, cached_only: bool = False
) -> Tenant:
    """Check the Tk headers and the request signature (SPEC §5)."""
    headers = incoming.headers
    version = headers.get("version")
    if version is not None and version != "v2":
        raise InvalidParameter(f"header version must be v2 (or absent), got {version!r}")
    for name in ("Tk-authkey", "Timestamp", "Tk-token"):
        if not headers.get(name.lower()):
            raise MissingAuth(f"header {name} is required")
    authkey, timestamp, token = headers["tk-authkey"], headers["timestamp"], headers["tk-token"]
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise MissingAuth(f"header Timestamp must be unix seconds, got {timestamp!r}")
    if not is_timestamp_fresh(int(timestamp), now):
        raise StaleTimestamp(
            f"header Timestamp {timestamp} is more than {TIMESTAMP_WINDOW_SECONDS} s away from "
            f"the server clock ({int(now)})"
        )
    tenant = directory.find(authkey, cached_only=cached_only)
    if tenant is None or not _is_signed_by(tenant, incoming, timestamp, token, now):
        raise InvalidCredentials("invalid credentials: unknown Tk-authkey or bad Tk-token")
    return tenant


def authenticate_player(
    token: str, directory: TenantDirectory, now: float, *, cached_only: bool = False
) -> tuple[Tenant, PlaybackClaims]:
    """Verify a playback token; the tenant is the token's issuer.

    Any of the tenant's valid secrets (``Tenant.valid_secrets``) may have signed it. A player
    sends the same token with every heartbeat: a token verified before is looked up (and its
    expiry checked again) instead of verified again, while its tenant is enabled and its
    valid secrets are the ones it was verified with.
    """
    now_ms = int(now * 1000)
    cached = directory.verified_tokens.get(token)
    if cached is not None:
        claims, secrets = cached
        tenant = directory.find(claims.authkey, cached_only=cached_only)
        if (
            tenant is not None
            and tenant.valid_secrets(now_ms) == secrets
            and is_unexpired(claims, now)
        ):
            return tenant, claims
    found: dict[str, Tenant] = {}

    def secrets_for(authkey: str) -> tuple[str, ...] | None:
        tenant = directory.find(authkey, cached_only=cached_only)
        if tenant is None:
            return None
        found[authkey] = tenant
        return tenant.valid_secrets(now_ms)

    claims = verify_playback_token(token, secrets_for, now)
    tenant = found[claims.authkey]
    directory.remember_token(token, claims, tenant.valid_secrets(now_ms))
    return tenant, claims


def _is_signed_by(
    tenant: Tenant, incoming: Incoming, timestamp: str, token: str, now: float
) -> bool:
    # The path is signed as decoded, or percent-encoded per RFC 3986: both name the same
    # resource, and clients differ in which one they have at hand.
    paths = {incoming.path, quote(incoming.path, safe="/-._~")}
    return any(
        is_signature_valid(
            sign_request(
                secret,
                tenant.authkey,
                timestamp,
                incoming.method,
                path,
                incoming.query,
                incoming.body,
            ),
            token,
        )
        for secret in tenant.valid_secrets(int(now * 1000))
        for path in paths
    )


class Authenticator:
    """Authentication with its guards: failed attempts counted per client address and per
    authkey (past the limit: 429), signed requests accepted once, beacons counted per
    playback token. Methods that may run on the event loop take ``cached_only``."""

    def __init__(
        self, directory: TenantDirectory, replay: ReplayGuard, settings: ServiceSettings
    ) -> None:
        self.directory = directory
        self._replay = replay
        self._failures_by_address = RateLimiter(settings.failed_auth_per_address)
        self._failures_by_authkey = RateLimiter(settings.failed_auth_per_authkey)
        self._beacons_by_token = RateLimiter(settings.beacons_per_token)

    def server(self, incoming: Incoming, now: float, *, cached_only: bool = False) -> Tenant:
        """Authenticate a signed request, without recording it: a request that writes records
        its ``signature`` in its own transaction, one that reads calls ``claim_read``."""
        self._check_address(incoming.client)
        try:
            return authenticate_server(incoming, self.directory, now, cached_only=cached_only)
        except (MissingAuth, StaleTimestamp, InvalidCredentials) as error:
            raise self._failed(incoming.client, incoming.headers.get("tk-authkey"), error) from None

    @staticmethod
    def signature(tenant: Tenant, incoming: Incoming) -> Signature:
        """What records an authenticated signed request (to accept it once)."""
        return Signature.of(
            tenant.tenant_id, int(incoming.headers["timestamp"]), incoming.headers["tk-token"]
        )

    def claim_read(self, tenant: Tenant, incoming: Incoming, now: float) -> None:
        """Record an authenticated signed request that only reads; ``ReplayedRequest`` (or 429
        past the failure limits) when it was recorded before. Blocks on the database."""
        if not self._replay.claim(self.signature(tenant, incoming), int(now * 1000)):
            raise self.replayed(incoming, tenant)

    def replayed(self, incoming: Incoming, tenant: Tenant) -> VodwatchError:
        """A replay counts as a failed authentication: the error to answer with
        (``ReplayedRequest``, or 429 past the failure limits)."""
        return self._failed(incoming.client, tenant.authkey, ReplayedRequest())

    def player(
        self, token: str, client: str, now: float, *, cached_only: bool = False
    ) -> tuple[Tenant, PlaybackClaims]:
        self._check_address(client)
        try:
            return authenticate_player(token, self.directory, now, cached_only=cached_only)
        except (MissingAuth, InvalidCredentials) as error:
            raise self._failed(client, None, error) from None

    def spend_beacons(self, token: str, count: int) -> None:
        """Count ``count`` beacons against their playback token's budget."""
        wait = self._beacons_by_token.hit(token, count)
        if wait is not None:
            raise TooManyRequests(
                f"too many beacons for this playback token (at most "
                f"{self._beacons_by_token.rate}); try again in {wait} s",
                retry_after=wait,
            )

    def _check_address(self, client: str) -> None:
        wait = self._failures_by_address.blocked_for(client)
        if wait is not None:
            raise TooManyRequests(
                f"too many failed authentications from this address (at most "
                f"{self._failures_by_address.rate}); try again in {wait} s",
                retry_after=wait,
            )

    def _failed(self, client: str, authkey: str | None, error: VodwatchError) -> VodwatchError:
        """Count a failed authentication; the error to answer with (429 past a limit)."""
        wait = self._failures_by_address.hit(client)
        if wait is None and authkey:
            wait = self._failures_by_authkey.hit(authkey)
        if wait is None:
            return error
        return TooManyRequests(
            f"too many failed authentications; try again in {wait} s ({error.message})",
            retry_after=wait,
        )
