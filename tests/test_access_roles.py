"""Roles and sites (api/access.py) on a real store file: a viewer made installer and then viewer again sees
only what is granted after, and an installer is given no dormant sites."""

from __future__ import annotations

import pytest

from api.access import Access, Grant
from api.users import UserError, Users
from edge_store import migrate


def test_a_demoted_installer_gets_no_earlier_sites_back(tmp_path):
    db = tmp_path / "k.db"
    migrate.upgrade(db)
    users = Users(db)
    try:
        users.add("vic", "a good password 1", role="viewer", sites=("cabin-morvan", "van-lisa"))
        access = Access(users.engine)
        assert access.change("vic", role="installer") == Grant("installer", ())
        with pytest.raises(UserError, match="--sites is for viewers"):
            access.change("vic", add=("boat-ys",))
        assert access.change("vic", role="viewer") == Grant("viewer", ())
        assert access.change("vic", add=("boat-ys",)) == Grant("viewer", ("boat-ys",))
    finally:
        users.close()
