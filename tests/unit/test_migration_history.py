"""The migrations form one line: parallel work must be chained before it lands."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from db.migrate import alembic_config


def test_one_head_and_no_branch_points() -> None:
    scripts = ScriptDirectory.from_config(alembic_config("postgresql://unused/x"))
    assert len(scripts.get_heads()) == 1
    revisions = list(scripts.walk_revisions())
    assert len(revisions) == len({r.revision for r in revisions})
    assert all(not r.is_branch_point for r in revisions)
    assert [r.down_revision for r in revisions if r.down_revision is None] == [None]
