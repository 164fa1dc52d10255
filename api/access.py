"""Who sees which site: a user's role and sites, and the one check every data path makes.

An `installer` sees every site; a `viewer` sees the sites granted to them
(`kammthaar user add NAME --role viewer --sites a,b`, `user grant`, `user revoke`).
The rows live in `users.role` and `user_sites` (migration 0014) on the users'
engine (api/users.py). Every data path resolves its site through `site_for`:
a site the user may not see is answered exactly as a site that does not
exist (`not_served`, 404), so the names of other sites are never disclosed;
the grant is read at each request (one indexed query), so a revoke holds at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.engine import Engine

from edge_store.db import core_reading, core_writing
from edge_store.schema import user_sites, users

from .errors import NotFound
from .users import Prepared, UserError

INSTALLER, VIEWER = "installer", "viewer"
ROLES = (INSTALLER, VIEWER)
MAX_SITE_CHARS = 128


@dataclass(frozen=True)
class Grant:
    """A user's role and, for a viewer, the sites they see (sorted)."""

    role: str
    sites: tuple[str, ...] = ()

    def sees(self, site: str) -> bool:
        return self.role == INSTALLER or site in self.sites

    def answer(self) -> dict:
        """The JSON of /user and /check_auth: `sites` is null for an installer (every site)."""
        return {"role": self.role, "sites": None if self.role == INSTALLER else list(self.sites)}


def not_served(site: str) -> NotFound:
    """The 404 of a site no source holds, and of a site the user may not see: the same body."""
    return NotFound(f"site {site!r} is not served here")


def parse_sites(text: str | None) -> tuple[str, ...]:
    """`a,b` -> ('a', 'b'): each 1 to 128 characters, no control character; UserError naming --sites."""
    if text is None:
        return ()
    sites = tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
    for site in sites:
        if len(site) > MAX_SITE_CHARS or any(ord(c) < 32 or 127 <= ord(c) < 160 for c in site):
            raise UserError(f"--sites: {site[:40]!r} is not a site name (1 to {MAX_SITE_CHARS} printable characters)")
    return sites


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"--role must be one of {', '.join(ROLES)}, not {role!r}")
    return role


# Each user's role and sites, a row per site (one row with site NULL for a user of no site).
_GRANTS = select(users.c.username, users.c.role, user_sites.c.site).select_from(
    users.outerjoin(user_sites, user_sites.c.username == users.c.username))
# Every data request reads the grant: compiled once (api/users.py `Prepared`).
_GRANT = _GRANTS.where(users.c.username == bindparam("username"))


def _grants(rows) -> dict[str, Grant]:
    """The grants of `_GRANTS`' rows, by user."""
    roles: dict[str, str] = {}
    sites: dict[str, list[str]] = {}
    for name, role, site in rows:
        roles[name] = role
        sites.setdefault(name, [])
        if site is not None:
            sites[name].append(site)
    return {name: Grant(roles[name], tuple(sorted(sites[name]))) for name in roles}


class Access:
    """Roles and sites on the users' engine."""

    def __init__(self, engine: Engine):
        self._engine = engine
        self._grant = Prepared(_GRANT, engine)

    def grant_of(self, username: str) -> Grant | None:
        """The user's grant, or None when the user does not exist."""
        rows = self._grant.rows("cannot read the users", username=username)
        return next(iter(_grants(rows).values()), None)  # the one user of the rows, if any

    def grants(self) -> dict[str, Grant]:
        """Every user's grant (`kammthaar user list`)."""
        with core_reading(self._engine, "cannot read the users") as conn:
            return _grants(conn.execute(_GRANTS).all())

    def change(self, username: str, *, role: str | None = None, add: tuple[str, ...] = (),
               remove: tuple[str, ...] = ()) -> Grant:
        """Set the role and grant (`add`) or revoke (`remove`) sites, in one transaction; the new grant."""
        with core_writing(self._engine, "cannot write the users") as conn:
            current = conn.execute(select(users.c.role).where(users.c.username == username)).first()
            if current is None:
                raise UserError(f"no user {username!r}")
            final = check_role(role) if role is not None else current[0]
            if final == INSTALLER and add:
                raise UserError("--sites is for viewers (an installer sees every site): add --role viewer")
            if role is not None:
                conn.execute(update(users).where(users.c.username == username).values(role=final))
            if final == INSTALLER:  # no dormant grant that a later `--role viewer` would bring back
                conn.execute(delete(user_sites).where(user_sites.c.username == username))
            if remove:
                conn.execute(delete(user_sites).where(user_sites.c.username == username,
                                                      user_sites.c.site.in_(remove)))
            have = {r[0] for r in conn.execute(select(user_sites.c.site).where(user_sites.c.username == username))}
            new = [s for s in add if s not in have]
            if new:
                conn.execute(user_sites.insert(), [{"username": username, "site": s} for s in new])
        grant = self.grant_of(username)
        assert grant is not None
        return grant


def site_for(api, req, site: str) -> str:
    """`site` when the request's user may see it; else the 404 of a site that does not exist.

    A machine token opens no data path (api/auth.py); an anonymous request (the
    token-free /serveur/status) sees this server's own site only.
    """
    user = getattr(req.context, "user", None)
    if user is None:
        if site == api.settings.site and getattr(req.context, "machine", None) is None:
            return site
        raise not_served(site)
    grant = api.access.grant_of(user)
    if grant is None or not grant.sees(site):
        raise not_served(site)
    return site
