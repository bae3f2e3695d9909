"""Tenant accounts: registration, activation, login throttling, recovery, profile changes, closing, deactivation.

Each public function is one use case: it takes explicit arguments (`now` included), raises `AccountError` with a
message fit for the tenant, and commits once at the end, mail included (the mail is queued in the same
transaction, see `app.mail`). Flask-AppBuilder's own flows are not used: its activation links never expire, its
self-registration skips the password policy and its "reset my password" does not ask for the current one.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from dateutil.relativedelta import relativedelta
from flask import current_app
from flask_appbuilder.security.sqla.models import User
from flask_babel import format_datetime
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from app import roles
from app.extensions import db
from app.mail import external_url, queue_mail
from app.models import (
    AccountToken, Household, Lease, ProfessionalSituation, TenantAccount, TokenPurpose, UserSession,
    UserSessionState,
)
from app.services import audit, throttle
from app.services.passwords import password_problems

ACTIVATION_TTL = timedelta(hours=24)
RESET_TTL = timedelta(hours=1)
EMAIL_CHANGE_TTL = timedelta(hours=24)
LOGIN_LIMIT, LOGIN_WINDOW, LOGIN_LOCK = 5, timedelta(minutes=15), timedelta(minutes=15)
REGISTER_LIMIT, REGISTER_WINDOW, REGISTER_LOCK = 5, timedelta(hours=1), timedelta(hours=1)
DEACTIVATION_DELAY = relativedelta(months=6)
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

GENERIC_REGISTRATION_ERROR = _l("Ces informations ne correspondent à aucun contrat. Vérifiez le numéro client "
                                "indiqué sur votre avis d'échéance et le nom du signataire du bail.")


class AccountError(ValueError):
    """A use case refused; `field` names the form field the message belongs next to (None: the whole form)."""

    def __init__(self, message, field: str | None = None):
        super().__init__(str(message))
        self.message = str(message)
        self.field = field


class TokenError(AccountError):
    """A link that is unknown, altered, already used (`reason`='invalid') or expired ('expired')."""

    def __init__(self, reason: str):
        messages = {"expired": _l("Ce lien a expiré."), "invalid": _l("Ce lien n'est pas valide ou a déjà servi.")}
        super().__init__(messages[reason])
        self.reason = reason


class LoginLocked(AccountError):
    def __init__(self, until: datetime):
        super().__init__(_l("Trop de tentatives de connexion. Réessayez après %(time)s.",
                            time=format_datetime(until, "HH:mm")))
        self.until = until


# --- helpers -----------------------------------------------------------------------------------------------------

def normalize_email(email: str | None) -> str:
    return (email or "").strip().lower()


def normalize_name(name: str | None) -> str:
    """Compare names without case, accents, spaces, hyphens or apostrophes."""
    decomposed = unicodedata.normalize("NFKD", (name or "").casefold())
    return "".join(c for c in decomposed if c.isalpha() and not unicodedata.combining(c))


def find_household(reference: str | None) -> Household | None:
    """A household by client number (8 digits) or by contract reference (`L/123456` or `123456`)."""
    value = re.sub(r"\s", "", (reference or "")).upper()
    if re.fullmatch(r"\d{8}", value):
        return db.session.scalar(sa.select(Household).where(Household.client_number == value))
    match = re.fullmatch(r"(?:L/?)?(\d{6})", value)
    if match:
        lease = db.session.scalar(sa.select(Lease).where(Lease.number == match.group(1)))
        return lease.household if lease else None
    return None


def _hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _password_hash(password: str) -> str:
    return generate_password_hash(password, method=current_app.config.get("FAB_PASSWORD_HASH_METHOD", "scrypt"))


def _issue_token(user: User, purpose: TokenPurpose, now: datetime, ttl: timedelta, new_email: str | None = None) -> str:
    """A fresh link for `purpose`; earlier unused links of the same purpose stop working."""
    db.session.execute(sa.update(AccountToken).where(
        AccountToken.user_id == user.id, AccountToken.purpose == purpose, AccountToken.used_at.is_(None)
    ).values(used_at=now))
    raw = secrets.token_urlsafe(32)
    db.session.add(AccountToken(user_id=user.id, purpose=purpose, token_hash=_hash_token(raw), expires_at=now + ttl,
                                new_email=new_email, created_at=now))
    return raw


def _find_token(raw: str, purpose: TokenPurpose, now: datetime) -> AccountToken:
    token = db.session.scalar(sa.select(AccountToken).where(
        AccountToken.token_hash == _hash_token(raw or ""), AccountToken.purpose == purpose).with_for_update())
    if token is None or token.used_at is not None:
        raise TokenError("invalid")
    if token.expires_at <= now:
        raise TokenError("expired")
    return token


def check_token(raw: str, purpose: TokenPurpose, now: datetime) -> None:
    """Raise TokenError unless the link can still be used (for showing a form before using it)."""
    _find_token(raw, purpose, now)


def _user_by_email(email: str) -> User | None:
    email = normalize_email(email)
    return db.session.scalar(sa.select(User).where(sa.func.lower(User.email) == email)) if email else None


def _account_of(user: User) -> TenantAccount | None:
    return db.session.scalar(sa.select(TenantAccount).where(TenantAccount.user_id == user.id))


def _locale_of(user: User) -> str:
    account = _account_of(user)
    return account.locale if account else "fr"


def _check_password_policy(password: str, confirm: str | None, user_words: tuple[str, ...]) -> None:
    if confirm is not None and password != confirm:
        raise AccountError(_l("Les deux mots de passe ne sont pas identiques."), "confirm")
    problems = password_problems(password, user_words)
    if problems:
        raise AccountError(" ".join(problems), "password")


# --- sessions ----------------------------------------------------------------------------------------------------

def session_version(user_id: int) -> int:
    state = db.session.get(UserSessionState, user_id)
    return state.version if state else 1


def bump_session_version(user_id: int, now: datetime, password_changed: bool = False) -> int:
    """End every open session of the user (they carry the old version). Returns the new version."""
    state = db.session.get(UserSessionState, user_id)
    if state is None:
        state = UserSessionState(user_id=user_id, version=1)
        db.session.add(state)
    state.version += 1
    if password_changed:
        state.password_changed_at = now
    db.session.flush()
    return state.version


# One row per signed-in browser (`UserSession`); the cookie carries the random id, the table only its SHA-256.
SESSION_TOUCH_INTERVAL = timedelta(minutes=1)  # `last_seen_at` is written at most this often, not on every request
SESSION_KEEP_ENDED = timedelta(days=1)  # ended rows stay this long (who was signed in when), then the purge job


def _session_limits() -> tuple[timedelta, timedelta]:
    """(idle, absolute) lifetimes of a sign-in, from the configuration."""
    config = current_app.config
    return config["PERMANENT_SESSION_LIFETIME"], config.get("SESSION_MAX_LIFETIME", timedelta(hours=12))


def open_session(user_id: int, now: datetime) -> str:
    """Record a new sign-in and return its random id, for the session cookie (committed here)."""
    raw = secrets.token_urlsafe(32)
    db.session.add(UserSession(token_hash=_hash_token(raw), user_id=user_id, created_at=now, last_seen_at=now))
    db.session.commit()
    return raw


def session_is_live(raw: str | None, user_id: int, now: datetime) -> bool:
    """Whether the sign-in `raw` of `user_id` may go on: not revoked, not idle for longer than
    PERMANENT_SESSION_LIFETIME, not older than SESSION_MAX_LIFETIME. Refreshes `last_seen_at` at most once a
    minute (committed then), so a request costs one indexed read."""
    if not raw:
        return False
    record = db.session.scalar(sa.select(UserSession).where(UserSession.token_hash == _hash_token(raw)))
    if record is None or record.user_id != user_id or record.revoked_at is not None:
        return False
    idle, absolute = _session_limits()
    if now - record.created_at >= absolute or now - record.last_seen_at >= idle:
        return False
    if now - record.last_seen_at >= SESSION_TOUCH_INTERVAL:
        record.last_seen_at = now
        db.session.commit()
    return True


def revoke_session(raw: str | None, now: datetime) -> None:
    """End the sign-in `raw` on the server (logout): its cookie, replayed from anywhere, is anonymous."""
    if not raw:
        return
    db.session.execute(sa.update(UserSession).where(
        UserSession.token_hash == _hash_token(raw), UserSession.revoked_at.is_(None)).values(revoked_at=now))
    db.session.commit()


def purge_sessions(now: datetime) -> int:
    """Scheduled job: delete sign-in rows that ended (revoked, idle or past their absolute lifetime) more than
    SESSION_KEEP_ENDED ago. Returns how many."""
    idle, absolute = _session_limits()
    result = db.session.execute(sa.delete(UserSession).where(sa.or_(
        UserSession.revoked_at < now - SESSION_KEEP_ENDED,
        UserSession.last_seen_at < now - idle - SESSION_KEEP_ENDED,
        UserSession.created_at < now - absolute - SESSION_KEEP_ENDED,
    )))
    db.session.commit()
    return result.rowcount or 0


# --- registration and activation ---------------------------------------------------------------------------------

@dataclass
class Registration:
    reference: str
    surname: str
    email: str
    password: str
    confirm: str
    locale: str = "fr"


def register(form: Registration, now: datetime) -> str:
    """Create the household's portal account, inactive until the emailed link is followed. Returns the address the
    page says it wrote to.

    A household that already has an account, or an address that is already another account's identifier, gets
    the same answer as a new registration (the page reveals neither): the helpful message goes by mail, to the
    household's address on file or to that address, instead. Registrations of one household at the same moment (a
    double submit) create one account; the others get the same answer too."""
    key = "register:" + re.sub(r"\W", "", form.reference or "").upper()
    locked = throttle.locked_until(key, now)
    if locked:
        raise AccountError(_l("Trop de tentatives pour ce numéro. Réessayez après %(time)s.",
                              time=format_datetime(locked, "HH:mm")))
    household = find_household(form.reference)
    if household is None or normalize_name(household.signatory_last_name) != normalize_name(form.surname):
        _record_registration_failure(key, now)
        raise AccountError(GENERIC_REGISTRATION_ERROR)
    existing = household.account
    taken = existing is not None and (existing.activated_at is not None or existing.user.active)
    email = normalize_email(form.email)
    if not EMAIL_RE.match(email):
        raise AccountError(_l("Saisissez une adresse e-mail valide, par exemple nom@exemple.fr."), "email")
    _check_password_policy(form.password, form.confirm, (email.split("@")[0], household.signatory_last_name))
    password_hash = _password_hash(form.password)  # in every case, so that the time taken tells nothing either
    owner = _user_by_email(email)
    if owner is not None and existing is not None and owner.id == existing.user_id and not taken:
        owner = None  # the household's own registration, never activated: the new one replaces it
    if taken or owner is not None:
        if taken:
            _tell_holder_already_registered(existing)
        if owner is not None and not (taken and owner.id == existing.user_id):
            _tell_owner_address_in_use(owner)
        throttle.clear(key)
        db.session.commit()
        return email
    try:
        if existing is not None:  # a registration never activated: the new one replaces it
            _replace_pending(existing, now)
        user = User(first_name=household.signatory_first_name, last_name=household.signatory_last_name,
                    username=email, email=email, active=False, password=password_hash,
                    roles=[current_app.appbuilder.sm.find_role(roles.TENANT)])
        db.session.add(user)
        db.session.flush()
        db.session.add(TenantAccount(user_id=user.id, household_id=household.id, locale=form.locale,
                                     created_at=now))
        _send_activation(user, form.locale, now)
        throttle.clear(key)
        db.session.commit()
    except (IntegrityError, _Superseded):
        # Another registration of this household (or address) committed first: it stands, this one leaves nothing.
        db.session.rollback()
    return email


class _Superseded(Exception):
    """Another registration of the household replaced its pending one first."""


def _replace_pending(account: TenantAccount, now: datetime) -> None:
    """Remove a registration never activated and close its user, unless another registration of the household did
    it first. Checked on the row's id and user: SQLite hands a deleted row's id to the next insert, so a plain
    delete by id could remove the registration that replaced this one (and leave its user without an account)."""
    user = account.user
    removed = db.session.execute(sa.delete(TenantAccount).where(
        TenantAccount.id == account.id, TenantAccount.user_id == account.user_id)).rowcount
    if removed != 1:
        raise _Superseded
    db.session.expunge(account)
    _erase_user(user, now)


def _record_registration_failure(key: str, now: datetime) -> None:
    throttle.record_failure(key, now, REGISTER_LIMIT, REGISTER_WINDOW, REGISTER_LOCK)
    db.session.commit()


def _tell_holder_already_registered(account: TenantAccount) -> None:
    """What registration used to say on the page, sent to the household's address on file instead."""
    user = account.user
    queue_mail(user.email, "already_registered", account.locale, name=account.household.signatory_first_name,
               identifier=user.email, link=external_url("PortalAuthDBView.login"),
               reset_link=external_url("AccountView.forgot_password"))


def _tell_owner_address_in_use(owner: User) -> None:
    """Registration used to say on the page that an address was another account's identifier: said to it instead."""
    queue_mail(owner.email, "address_in_use", _locale_of(owner), name=owner.first_name, identifier=owner.email,
               link=external_url("PortalAuthDBView.login"), reset_link=external_url("AccountView.forgot_password"))


def activate(raw: str, now: datetime) -> User:
    token = _find_token(raw, TokenPurpose.ACTIVATION, now)
    token.used_at = now
    user = token.user
    user.active = True
    account = _account_of(user)
    if account is not None and account.activated_at is None:
        account.activated_at = now
    db.session.commit()
    return user


def resend_activation(email: str, now: datetime) -> None:
    """Send a new activation link if `email` belongs to an account waiting for activation; silent otherwise."""
    user = _user_by_email(email)
    account = _account_of(user) if user else None
    if account is None or account.activated_at is not None or user.active:
        return
    _send_activation(user, account.locale, now)
    db.session.commit()


def _send_activation(user: User, locale: str, now: datetime) -> None:
    raw = _issue_token(user, TokenPurpose.ACTIVATION, now, ACTIVATION_TTL)
    queue_mail(user.email, "activation", locale, name=user.first_name,
               link=external_url("AccountView.activate", token=raw), hours=int(ACTIVATION_TTL.total_seconds() // 3600))


# --- login ----------------------------------------------------------------------------------------------------

def authenticate(email: str, password: str, now: datetime) -> User:
    """Check the credentials, throttled per account (whether or not it exists, so the answer reveals nothing)."""
    key = "login:" + normalize_email(email)
    locked = throttle.locked_until(key, now)
    if locked:
        raise LoginLocked(locked)
    user = current_app.appbuilder.sm.auth_user_db(normalize_email(email), password or "")
    if user is None:
        locked = throttle.record_failure(key, now, LOGIN_LIMIT, LOGIN_WINDOW, LOGIN_LOCK)
        db.session.commit()
        if locked:
            raise LoginLocked(locked)
        raise AccountError(_l("Adresse e-mail ou mot de passe incorrect."))
    throttle.clear(key)
    db.session.commit()
    return user


# --- recovery ----------------------------------------------------------------------------------------------------

def remind_identifier(reference: str, surname: str, now: datetime) -> None:
    """Email the identifier to the address on file; silent when nothing matches."""
    household = find_household(reference)
    if household is None or normalize_name(household.signatory_last_name) != normalize_name(surname):
        return
    account = household.account
    if account is not None and account.user.active:
        queue_mail(account.user.email, "identifier", account.locale, name=household.signatory_first_name,
                   identifier=account.user.email, link=external_url("PortalAuthDBView.login"))
    elif household.email:
        queue_mail(household.email, "no_account", "fr", name=household.signatory_first_name,
                   link=external_url("AccountView.register"))
    db.session.commit()


def request_password_reset(email: str, now: datetime) -> None:
    user = _user_by_email(email)
    if user is None or not user.active:
        return
    raw = _issue_token(user, TokenPurpose.PASSWORD_RESET, now, RESET_TTL)
    queue_mail(user.email, "password_reset", _locale_of(user), name=user.first_name,
               link=external_url("AccountView.reset_password", token=raw), minutes=60)
    db.session.commit()


def reset_password(raw: str, password: str, confirm: str, now: datetime) -> User:
    token = _find_token(raw, TokenPurpose.PASSWORD_RESET, now)
    user = token.user
    _check_password_policy(password, confirm, (user.email.split("@")[0], user.last_name))
    token.used_at = now
    _set_password(user, password, now)
    throttle.clear("login:" + normalize_email(user.email))
    db.session.commit()
    return user


def _set_password(user: User, password: str, now: datetime) -> int:
    user.password = _password_hash(password)
    version = bump_session_version(user.id, now, password_changed=True)
    queue_mail(user.email, "password_changed", _locale_of(user), name=user.first_name,
               when=format_datetime(now, "d MMMM yyyy 'à' HH:mm"), link=external_url("AccountView.forgot_password"))
    return version


# --- profile -----------------------------------------------------------------------------------------------------

def change_password(user: User, current: str, password: str, confirm: str, now: datetime) -> int:
    """Returns the new session version, so the caller can keep its own session while every other one ends."""
    if not check_password_hash(user.password or "", current or ""):
        raise AccountError(_l("Le mot de passe actuel est incorrect."), "current_password")
    _check_password_policy(password, confirm, (user.email.split("@")[0], user.last_name))
    version = _set_password(user, password, now)
    db.session.commit()
    return version


def request_email_change(user: User, new_email: str, password: str, now: datetime) -> None:
    if not check_password_hash(user.password or "", password or ""):
        raise AccountError(_l("Le mot de passe est incorrect."), "password")
    email = normalize_email(new_email)
    if not EMAIL_RE.match(email):
        raise AccountError(_l("Saisissez une adresse e-mail valide, par exemple nom@exemple.fr."), "email")
    if email == normalize_email(user.email):
        raise AccountError(_l("C'est déjà votre adresse e-mail."), "email")
    if _user_by_email(email) is not None:
        raise AccountError(_l("Cette adresse e-mail est déjà utilisée par un autre espace."), "email")
    locale = _locale_of(user)
    raw = _issue_token(user, TokenPurpose.EMAIL_CHANGE, now, EMAIL_CHANGE_TTL, new_email=email)
    queue_mail(email, "email_change_confirm", locale, name=user.first_name,
               link=external_url("AccountView.confirm_email", token=raw), hours=24)
    queue_mail(user.email, "email_change_notice", locale, name=user.first_name, new_email=email)
    db.session.commit()


def confirm_email_change(raw: str, now: datetime) -> User:
    token = _find_token(raw, TokenPurpose.EMAIL_CHANGE, now)
    token.used_at = now
    user = token.user
    if _user_by_email(token.new_email) is not None:
        db.session.commit()
        raise AccountError(_l("Cette adresse e-mail est déjà utilisée par un autre espace."))
    user.email = user.username = token.new_email
    account = _account_of(user)
    if account is not None:
        account.household.email = token.new_email
    db.session.commit()
    return user


def update_contact(household: Household, phone: str | None, situation: ProfessionalSituation | None,
                   paperless: bool, now: datetime) -> None:
    phone = re.sub(r"[^\d+]", "", phone or "")
    if phone and not re.fullmatch(r"(\+33|0)\d{9}|\+\d{8,15}", phone):
        raise AccountError(_l("Saisissez un numéro de téléphone valide, par exemple 06 12 34 56 78."), "phone")
    household.phone = _format_phone(phone) if phone else None
    household.professional_situation = situation
    if paperless and not household.paperless_consent:
        household.paperless_consent_at = now
    household.paperless_consent = paperless
    db.session.commit()


def _format_phone(phone: str) -> str:
    if re.fullmatch(r"0\d{9}", phone):
        return " ".join(phone[i:i + 2] for i in range(0, 10, 2))
    return phone


def close_account(user: User, password: str, now: datetime) -> None:
    """Disable the account and erase its login data; the household and its leases stay."""
    if not check_password_hash(user.password or "", password or ""):
        raise AccountError(_l("Le mot de passe est incorrect."), "password")
    account = _account_of(user)
    _erase_user(user, now)
    if account is not None:
        db.session.delete(account)
    db.session.commit()


def _erase_user(user: User, now: datetime) -> None:
    suffix = secrets.token_hex(6)
    user.email = user.username = f"ferme-{user.id}-{suffix}@invalid.example"
    user.first_name, user.last_name = "Compte", "fermé"
    user.password = _password_hash(secrets.token_urlsafe(32))
    user.active = False
    user.roles = []
    db.session.execute(sa.delete(AccountToken).where(AccountToken.user_id == user.id))
    bump_session_version(user.id, now)


# --- staff -------------------------------------------------------------------------------------------------------

def staff_resend_activation(account: TenantAccount, now: datetime) -> bool:
    if account.activated_at is not None:
        return False
    _send_activation(account.user, account.locale, now)
    audit.record(account.household_id, audit.ACTIVATION_RESENT,
                 _l("E-mail d'activation renvoyé à %(email)s", email=account.user.email), "tenant_account", account.id)
    db.session.commit()
    return True


def staff_disable(account: TenantAccount, now: datetime) -> None:
    account.user.active = False
    bump_session_version(account.user_id, now)
    db.session.commit()


# --- move-out and housekeeping (scheduled jobs) ------------------------------------------------------------------

def deactivation_date(household: Household) -> date | None:
    """The day the portal account closes: six months after the last lease ended, if every lease has ended."""
    exits = [lease.end_date for lease in household.leases]
    if not exits or any(day is None for day in exits):
        return None
    return max(exits) + DEACTIVATION_DELAY


def deactivate_moved_out(now: datetime) -> int:
    """Deactivate, in one statement, the accounts whose household left more than six months ago."""
    cutoff = now.date() - DEACTIVATION_DELAY
    still_housed = sa.select(Lease.id).where(
        Lease.household_id == TenantAccount.household_id,
        sa.or_(Lease.end_date.is_(None), Lease.end_date > cutoff),
    ).exists()
    has_lease = sa.select(Lease.id).where(Lease.household_id == TenantAccount.household_id).exists()
    user_ids = sa.select(TenantAccount.user_id).join(User, User.id == TenantAccount.user_id).where(
        User.active.is_(True), has_lease, ~still_housed)
    ids = list(db.session.scalars(user_ids))
    if not ids:
        return 0
    db.session.execute(sa.update(User).where(User.id.in_(ids)).values(active=False))
    versioned = set(db.session.scalars(sa.select(UserSessionState.user_id).where(UserSessionState.user_id.in_(ids))))
    if versioned:
        db.session.execute(sa.update(UserSessionState).where(UserSessionState.user_id.in_(versioned))
                           .values(version=UserSessionState.version + 1))
    fresh = [{"user_id": user_id, "version": 2} for user_id in ids if user_id not in versioned]
    if fresh:
        db.session.execute(sa.insert(UserSessionState), fresh)
    db.session.commit()
    return len(ids)


def purge_expired(now: datetime) -> int:
    """Delete expired or used links older than a day, and quiet throttle counters."""
    cutoff = now - timedelta(days=1)
    result = db.session.execute(sa.delete(AccountToken).where(
        sa.or_(AccountToken.expires_at < now, AccountToken.used_at < cutoff)))
    purged = (result.rowcount or 0) + throttle.purge(now, timedelta(days=1))
    db.session.commit()
    return purged
