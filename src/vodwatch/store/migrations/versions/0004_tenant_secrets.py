"""STUB until the secrets branch lands (replaced by it).

Revision ID: 0004
Revises: 0003
"""

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    pass
