"""Sign-up, login, logout, password change and bearer tokens."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connections, transaction
from django.utils import timezone
from redis.exceptions import RedisError

from accounts.models import (
    RESERVED_USERNAMES,
    USERNAME_ALL_DIGITS_MESSAGE,
    USERNAME_ALL_DIGITS_RE,
    USERNAME_DOTS_MESSAGE,
    USERNAME_DOTS_RE,
    USERNAME_RE,
    AuthToken,
    User,
    UserCounters,
)
from instagram.dispatch import after_commit
from instagram.errors import ApiError
from instagram.ratelimit import (
    rate_limit_enforce,
    rate_limit_release,
    rate_limit_reserve,
)
from instagram.redis import get_redis
from instagram.sharding import alias_for_id

LOGIN_WINDOW = 15 * 60


@dataclass(frozen=True)
class IssuedToken:
    user: User
    token: str


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def normalize_username(raw: str) -> str:
    return raw.strip().lower()


def username_validate(username: str) -> str:
    """The normalised username, or a 400 naming what is wrong with it."""
    name = normalize_username(username)
    if not USERNAME_RE.match(name):
        raise ApiError(
            400, "invalid_username", "Usernames are 1-30 characters of a-z, 0-9, '.' and '_'."
        )
    if USERNAME_ALL_DIGITS_RE.match(name):
        raise ApiError(400, "invalid_username", USERNAME_ALL_DIGITS_MESSAGE)
    if USERNAME_DOTS_RE.search(name):
        raise ApiError(400, "invalid_username", USERNAME_DOTS_MESSAGE)
    if name in RESERVED_USERNAMES:
        raise ApiError(400, "username_reserved", "That username is reserved.")
    return name


def _password_validate(password: str, user: User) -> None:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ApiError(400, "invalid_password", " ".join(exc.messages)) from None


def token_issue(*, user: User, device: str = "") -> IssuedToken:
    raw = secrets.token_urlsafe(32)
    AuthToken.objects.create(
        user=user,
        key_hash=hash_token(raw),
        device=device[:100],
        expires_at=timezone.now() + dt.timedelta(days=settings.AUTH_TOKEN_TTL_DAYS),
    )
    return IssuedToken(user=user, token=raw)


def user_counters_ensure(*, user_id: int) -> None:
    """The counters row of a user on their shard (idempotent)."""
    UserCounters.objects.using(alias_for_id(user_id)).bulk_create(
        [UserCounters(user_id=user_id)], ignore_conflicts=True
    )


def user_register(
    *,
    username: str,
    password: str,
    email: str = "",
    full_name: str = "",
    client_ip: str = "",
) -> IssuedToken:
    name = username_validate(username)
    if client_ip:
        rate_limit_enforce(
            name=f"register:ip:{client_ip}",
            limit=settings.REGISTRATIONS_PER_IP_PER_HOUR,
            window=3600,
            message="Too many sign-ups from this address; try again later.",
        )
    user = User(username=name, email=email, full_name=full_name)
    _password_validate(password, user)
    user.set_password(password)
    if User.objects.filter(username=name).exists():
        raise ApiError(409, "username_taken", "That username is taken.")
    try:
        with transaction.atomic():
            user.save()
            issued = token_issue(user=user, device="sign-up")
    except IntegrityError:
        raise ApiError(409, "username_taken", "That username is taken.") from None
    # The counters row lives on the user's shard; a crash here is repaired lazily on first use.
    user_counters_ensure(user_id=user.id)
    return issued


def login_failures_key(username: str) -> str:
    """The limit on wrong passwords for one account, whether given to log in or to change it."""
    return f"login:user:{username}"


def user_login(*, username: str, password: str, client_ip: str, device: str = "") -> IssuedToken:
    """Bearer token for valid credentials; 401 otherwise, 429 past the per-account/IP limits.

    Unknown usernames cost a password hash too (Django's ModelBackend), so the answer takes the
    same time whether or not the account exists.
    """
    name = normalize_username(username)[:150]
    attempt = login_limits_enforce(name=name, client_ip=client_ip)
    user = authenticate(username=name, password=password)
    if user is None:  # the attempt stays counted: a failure
        raise ApiError(401, "invalid_credentials", "Wrong username or password.")
    rate_limit_release(attempt)
    return _login_token_issue(user=user, device=device)


def login_limits_enforce(*, name: str, client_ip: str) -> str | None:
    """Before a login checks a password (the API's or the admin's): every attempt counts
    against its address, and against its account's budget of failures, past which it is refused
    (429). The account's count is taken before the check, so guesses sent together cannot all
    pass it; the caller gives it back (`rate_limit_release`) if the password was right."""
    rate_limit_enforce(
        name=f"login:ip:{client_ip}",
        limit=settings.LOGIN_ATTEMPTS_PER_IP,
        window=LOGIN_WINDOW,
        message="Too many login attempts from this address; try again later.",
    )
    return rate_limit_reserve(
        name=login_failures_key(name),
        limit=settings.LOGIN_FAILURES_PER_ACCOUNT,
        window=LOGIN_WINDOW,
        message="Too many failed logins for this account; try again later.",
    )


def _login_token_issue(*, user: User, device: str) -> IssuedToken:
    """The login's token, unless the password it checked or the account's status changed since.

    Under a share lock on the user row, taken with the insert in one transaction: a password
    change or a deactivation (an UPDATE of the row) either waits for this token and then deletes
    or refuses it, or commits first and this login, reading what it committed, is refused. A
    login's token never outlives the password it checked."""
    with transaction.atomic(using="default"):
        with connections["default"].cursor() as cursor:
            cursor.execute(
                f"SELECT password, is_active FROM {User._meta.db_table} WHERE id = %s FOR SHARE",
                [user.pk],
            )
            if cursor.fetchone() != (user.password, True):
                raise ApiError(401, "invalid_credentials", "Wrong username or password.")
        return token_issue(user=user, device=device)


def token_cache_key(key_hash: str) -> str:
    return f"auth:{{{key_hash}}}"


REVOKED = b"revoked"


def _mark_revoked(key_hashes: list[str]) -> None:
    pipe = get_redis().pipeline(transaction=False)
    for key_hash in key_hashes:
        pipe.set(token_cache_key(key_hash), REVOKED, ex=2 * settings.AUTH_CACHE_SECONDS)
    pipe.execute()


def tokens_mark_revoked(
    *, key_hashes: list[str], more: Callable[[], list[str]] | None = None
) -> None:
    """Mark these tokens' cache entries revoked (see `accounts.authentication`) now, and again
    once the change commits (with the tokens `more()` finds then), for longer than an entry
    lives: no request that read the database before the change can cache a token as valid
    again. A revocation that cannot be marked is refused (503) rather than half done."""
    if key_hashes:
        try:
            _mark_revoked(key_hashes)
        except RedisError:
            raise ApiError(503, "unavailable", "Please try again shortly.", retry_after=5)

    def again() -> None:
        hashes = key_hashes + (more() if more is not None else [])
        if hashes:
            _mark_revoked(hashes)

    after_commit(again, using="default")


def _user_token_hashes(user_ids: list[int]) -> list[str]:
    return list(AuthToken.objects.filter(user_id__in=user_ids).values_list("key_hash", flat=True))


def user_tokens_mark_revoked(*, user_ids: list[int]) -> None:
    """Every token of these users (before they are deleted, or as they are deactivated)."""
    tokens_mark_revoked(
        key_hashes=_user_token_hashes(user_ids), more=lambda: _user_token_hashes(user_ids)
    )


def user_tokens_forget(*, user_ids: list[int]) -> None:
    """Drop these users' token cache entries, marks included (a reactivation), once the change
    commits: their next request reads the database."""

    def forget() -> None:
        keys = [token_cache_key(h) for h in _user_token_hashes(user_ids)]
        if keys:
            get_redis().delete(*keys)

    after_commit(forget, using="default")


def token_revoke(*, token: AuthToken) -> None:
    tokens_mark_revoked(key_hashes=[token.key_hash])  # first: refused whole if it cannot be
    AuthToken.objects.filter(pk=token.pk).delete()


def current_password_check_reserve(*, username: str) -> str | None:
    """Count a check of an account's current password (a password change's, through the API or
    the admin) against its budget of failed logins before it is made; 429 past it. Give it back
    (`rate_limit_release`) if the password was right."""
    return rate_limit_reserve(
        name=login_failures_key(username),
        limit=settings.LOGIN_FAILURES_PER_ACCOUNT,
        window=LOGIN_WINDOW,
        message="Too many wrong passwords for this account; try again later.",
    )


def password_change(*, user: User, old_password: str, new_password: str) -> IssuedToken:
    """Changes the password, revokes every token of the user and issues a fresh one.

    A wrong current password counts as a failed login of the account, and past that limit the
    change is refused (429) before any check: a stolen token or session is no password oracle.
    """
    attempt = current_password_check_reserve(username=user.username)
    if not user.check_password(old_password):  # counted: a failure
        raise ApiError(400, "invalid_password", "The current password is wrong.")
    rate_limit_release(attempt)
    _password_validate(new_password, user)
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        user_tokens_delete(user_ids=[user.id])
        return token_issue(user=user, device="password-change")


def user_tokens_delete(*, user_ids: list[int]) -> None:
    """Delete every token of these users and mark them revoked, now and once the change
    commits: call it in the transaction that changes their password or deactivates them."""
    with transaction.atomic(using="default"):
        with connections["default"].cursor() as cursor:
            cursor.execute(
                "DELETE FROM accounts_authtoken WHERE user_id = ANY(%s) RETURNING key_hash",
                [user_ids],
            )
            tokens_mark_revoked(key_hashes=[row[0] for row in cursor.fetchall()])


# A cached token's entry with its user's new last activity, unless it was marked revoked.
_TOUCH_LUA = """
local entry = redis.call('GET', KEYS[1])
if entry and entry ~= 'revoked' then
  redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
end
"""


def user_touch_active(*, user: User, now: dt.datetime, token: AuthToken | None = None) -> None:
    User.objects.filter(pk=user.pk).update(last_active_at=now)
    user.last_active_at = now
    if token is not None:
        entry = token_cache_entry(token=token, user=user)
        try:
            get_redis().eval(_TOUCH_LUA, 1, token_cache_key(token.key_hash), entry)
        except RedisError:  # the entry keeps the old time: at worst one more touch
            pass


def _micros(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def token_cache_entry(*, token: AuthToken, user: User) -> bytes:
    """What the token cache keeps: user ID, token ID, expiry and last activity (microseconds)."""
    return b"%d %d %d %d" % (
        user.id,
        token.id,
        _micros(token.expires_at),
        _micros(user.last_active_at),
    )
