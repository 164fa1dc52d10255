"""Roles and sites of the API's users (issue 15): an installer sees every site, a viewer the sites granted.

Revision ID: 0014
Revises: 0007
Create Date: 2026-12-04

Every user existing before is an installer (as every user was: a Pi has one site).
"""
import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


# Who can log in, without the hashes (the sqlite3 shell's view of 0004), now with the role and the sites.
_VIEW = ("CREATE VIEW v_users AS SELECT username, {role}token_version, "
         "datetime(created_ms / 1000, 'unixepoch', 'localtime') AS created, "
         "datetime(password_changed_ms / 1000, 'unixepoch', 'localtime') AS password_changed{sites} "
         "FROM users ORDER BY username")
_ROLE_AND_SITES = dict(role="role, ", sites=", (SELECT group_concat(site, ',') FROM user_sites s "
                                             "WHERE s.username = users.username) AS sites")


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    if _sqlite():
        op.execute("DROP VIEW IF EXISTS v_users")  # SQLite checks views when a table changes
    op.add_column("users", sa.Column("role", sa.Text, nullable=False, server_default="installer"))
    op.create_table(
        "user_sites",
        sa.Column("username", sa.Text, primary_key=True),
        sa.Column("site", sa.Text, primary_key=True),
    )
    if _sqlite():
        op.execute(_VIEW.format(**_ROLE_AND_SITES))


def downgrade() -> None:
    if _sqlite():
        op.execute("DROP VIEW IF EXISTS v_users")
    op.drop_table("user_sites")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("role")
    if _sqlite():
        op.execute(_VIEW.format(role="", sites=""))
