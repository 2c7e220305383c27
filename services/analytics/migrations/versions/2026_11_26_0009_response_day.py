"""response_day: each day's first-response times (seconds), for the overview's exact median

Revision ID: 0009_response_day
Revises: 0008_content_day
Create Date: 2026-11-26 05:40:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


# revision identifiers, used by Alembic.
revision: str = '0009_response_day'
down_revision: Union[str, Sequence[str], None] = '0008_content_day'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

DELTA = "pg_temp.response_day_delta"
# A post's value: its day, and the seconds to its first response when it was responded to within 24 hours
# (the same expression the median used over posts, so the same float8 values).
DAY = "(created_at AT TIME ZONE 'UTC')::date"
SECONDS = "extract(epoch FROM first_response_at - created_at)::float8"
RESPONDED = ("created_at IS NOT NULL AND first_response_at IS NOT NULL "
             "AND first_response_at <= created_at + interval '24 hours'")


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('response_day',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('seconds', postgresql.ARRAY(postgresql.DOUBLE_PRECISION()), nullable=False),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_response_day'))
    )
    # The transaction's changes: +1 for a value there now, -1 for a value as it was (temporary: no locks).
    op.execute(f"""
CREATE FUNCTION response_day_deltas() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF to_regclass('{DELTA}') IS NULL THEN
    CREATE TEMP TABLE response_day_delta (day date, seconds float8, n int) ON COMMIT DELETE ROWS;
  END IF;
END $$""")
    new = f"SELECT {DAY}, {SECONDS}, 1 FROM new_rows WHERE {RESPONDED}"
    old = f"SELECT {DAY}, {SECONDS}, -1 FROM old_rows WHERE {RESPONDED}"
    op.execute(f"""
CREATE FUNCTION response_day_note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM response_day_deltas();
  IF TG_OP = 'INSERT' THEN
    INSERT INTO {DELTA} {new};
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO {DELTA} {new} UNION ALL {old};
  ELSE
    INSERT INTO {DELTA} {old};
  END IF;
  RETURN NULL;
END $$""")
    op.execute("CREATE TRIGGER response_day_posts_insert AFTER INSERT ON posts REFERENCING NEW TABLE AS new_rows "
               "FOR EACH STATEMENT EXECUTE FUNCTION response_day_note()")
    op.execute("CREATE TRIGGER response_day_posts_delete AFTER DELETE ON posts REFERENCING OLD TABLE AS old_rows "
               "FOR EACH STATEMENT EXECUTE FUNCTION response_day_note()")
    op.execute("CREATE TRIGGER response_day_posts_update AFTER UPDATE ON posts "
               "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
               "FOR EACH STATEMENT EXECUTE FUNCTION response_day_note()")
    # A multiset: the day's values (in no order), plus the added ones, less the removed ones (a value counted n
    # times). Only additions (new posts, first responses): appended, O(n) copying; a removal (a first response
    # that moved, a deleted post) recounts the day's values.
    op.execute("""
CREATE FUNCTION response_day_merge(current float8[], delta_seconds float8[], delta_n int[]) RETURNS float8[]
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF 0 < ALL(delta_n) THEN
    RETURN current || ARRAY(SELECT u.s FROM unnest(delta_seconds, delta_n) u (s, n)
                            CROSS JOIN LATERAL generate_series(1, u.n));
  END IF;
  RETURN ARRAY(SELECT v.s FROM (SELECT s, sum(n) AS k FROM (SELECT c AS s, 1 AS n FROM unnest(current) c
                                                            UNION ALL SELECT * FROM unnest(delta_seconds, delta_n)) t
                                GROUP BY s) v
               CROSS JOIN LATERAL generate_series(1, v.k::int) g ORDER BY v.s);
END $$""")
    # Applied last in the transaction (ingest's bump_version): only days whose values changed, rows locked
    # in day order, each merged with the row as it is once locked (UPDATE re-reads a row a writer changed).
    op.execute(f"""
CREATE FUNCTION response_day_flush() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF to_regclass('{DELTA}') IS NULL THEN
    RETURN;
  END IF;
  IF to_regclass('pg_temp.response_day_net') IS NULL THEN
    CREATE TEMP TABLE response_day_net (day date, seconds float8[], n int[]) ON COMMIT DELETE ROWS;
  END IF;
  WITH d AS (DELETE FROM {DELTA} RETURNING *),
    v AS (SELECT day, seconds, sum(n)::int AS n FROM d GROUP BY day, seconds HAVING sum(n) <> 0)
  INSERT INTO response_day_net SELECT day, array_agg(seconds), array_agg(n) FROM v GROUP BY day;
  INSERT INTO response_day (day, seconds) SELECT day, '{{}}' FROM response_day_net ORDER BY day
  ON CONFLICT (day) DO NOTHING;
  PERFORM 1 FROM response_day r WHERE r.day IN (SELECT day FROM response_day_net) ORDER BY r.day FOR UPDATE;
  UPDATE response_day r SET seconds = response_day_merge(r.seconds, d.seconds, d.n)
  FROM response_day_net d WHERE r.day = d.day;
  DELETE FROM response_day_net;
END $$""")
    # What is there already.
    op.execute(f"""
INSERT INTO response_day (day, seconds)
SELECT {DAY}, array_agg({SECONDS} ORDER BY {SECONDS}) FROM posts WHERE {RESPONDED} GROUP BY 1""")


def downgrade() -> None:
    """Downgrade schema."""
    for trigger in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER response_day_posts_{trigger} ON posts")
    for function in ("response_day_flush()", "response_day_merge(float8[], float8[], int[])",
                     "response_day_note()", "response_day_deltas()"):
        op.execute(f"DROP FUNCTION {function}")
    op.drop_table('response_day')
