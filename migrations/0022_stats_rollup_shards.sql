-- 0022: the daily rollups of 0020 in 16 shards per key, as 0021's stats_students are (issue 13).
--
-- A rollup row is locked from the statement that moves its count until the commit. With one row per
-- day and key, every payment of a track on the same day waited on the same stats_revenue_daily row,
-- every enrollment of a track on stats_enrollments_daily and every step of a tool on
-- stats_provisioning_daily: 50 students paying at once queued their webhooks and their workflow
-- steps one behind the other (pg_stat_activity: on average about three backends waiting on
-- "transactionid" in UPDATE payments during such a burst). The key now carries a shard (0-15, from
-- the fact's id: the same for a fact's old and new rows, so an update's delta stays in one shard),
-- and two writers meet on a row only when their facts share a shard. The readers already sum over
-- the key (functions/admin/repository.py), so they read the same numbers. Each rollup is refilled
-- from the facts, shard by shard.

-- stats_revenue_daily
ALTER TABLE stats_revenue_daily ADD COLUMN shard smallint NOT NULL DEFAULT 0 CHECK (shard BETWEEN 0 AND 15);
ALTER TABLE stats_revenue_daily ALTER COLUMN shard DROP DEFAULT;
ALTER TABLE stats_revenue_daily DROP CONSTRAINT stats_revenue_daily_pkey, ADD PRIMARY KEY (day, track, currency, shard);

CREATE OR REPLACE FUNCTION stats_revenue_apply() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM stats_revenue_daily;
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO stats_revenue_daily AS s (day, track, currency, shard, payments, gross_cents, refunded_cents)
        SELECT day, track, currency, shard, sum(payments), sum(gross_cents), sum(refunded_cents)
        FROM (
            SELECT (succeeded_at AT TIME ZONE 'UTC')::date AS day, (hashtext(id::text) & 15)::smallint AS shard, track, currency::text AS currency,
            1 AS payments, 1 * amount_cents AS gross_cents, 1 * refunded_amount_cents AS refunded_cents
            FROM stats_new_rows
            WHERE succeeded_at IS NOT NULL AND status IN ('SUCCEEDED', 'PARTIALLY_REFUNDED', 'REFUNDED', 'DISPUTED')
        ) d
        GROUP BY day, track, currency, shard HAVING sum(payments) <> 0 OR sum(gross_cents) <> 0 OR sum(refunded_cents) <> 0
        ORDER BY day, track, currency, shard
        ON CONFLICT (day, track, currency, shard) DO UPDATE SET
            payments = s.payments + EXCLUDED.payments,
            gross_cents = s.gross_cents + EXCLUDED.gross_cents,
            refunded_cents = s.refunded_cents + EXCLUDED.refunded_cents;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO stats_revenue_daily AS s (day, track, currency, shard, payments, gross_cents, refunded_cents)
        SELECT day, track, currency, shard, sum(payments), sum(gross_cents), sum(refunded_cents)
        FROM (
            SELECT (succeeded_at AT TIME ZONE 'UTC')::date AS day, (hashtext(id::text) & 15)::smallint AS shard, track, currency::text AS currency,
            1 AS payments, 1 * amount_cents AS gross_cents, 1 * refunded_amount_cents AS refunded_cents
            FROM stats_new_rows
            WHERE succeeded_at IS NOT NULL AND status IN ('SUCCEEDED', 'PARTIALLY_REFUNDED', 'REFUNDED', 'DISPUTED')
            UNION ALL
            SELECT (succeeded_at AT TIME ZONE 'UTC')::date AS day, (hashtext(id::text) & 15)::smallint AS shard, track, currency::text AS currency,
            -1 AS payments, -1 * amount_cents AS gross_cents, -1 * refunded_amount_cents AS refunded_cents
            FROM stats_old_rows
            WHERE succeeded_at IS NOT NULL AND status IN ('SUCCEEDED', 'PARTIALLY_REFUNDED', 'REFUNDED', 'DISPUTED')
        ) d
        GROUP BY day, track, currency, shard HAVING sum(payments) <> 0 OR sum(gross_cents) <> 0 OR sum(refunded_cents) <> 0
        ORDER BY day, track, currency, shard
        ON CONFLICT (day, track, currency, shard) DO UPDATE SET
            payments = s.payments + EXCLUDED.payments,
            gross_cents = s.gross_cents + EXCLUDED.gross_cents,
            refunded_cents = s.refunded_cents + EXCLUDED.refunded_cents;
    ELSE
        INSERT INTO stats_revenue_daily AS s (day, track, currency, shard, payments, gross_cents, refunded_cents)
        SELECT day, track, currency, shard, sum(payments), sum(gross_cents), sum(refunded_cents)
        FROM (
            SELECT (succeeded_at AT TIME ZONE 'UTC')::date AS day, (hashtext(id::text) & 15)::smallint AS shard, track, currency::text AS currency,
            -1 AS payments, -1 * amount_cents AS gross_cents, -1 * refunded_amount_cents AS refunded_cents
            FROM stats_old_rows
            WHERE succeeded_at IS NOT NULL AND status IN ('SUCCEEDED', 'PARTIALLY_REFUNDED', 'REFUNDED', 'DISPUTED')
        ) d
        GROUP BY day, track, currency, shard HAVING sum(payments) <> 0 OR sum(gross_cents) <> 0 OR sum(refunded_cents) <> 0
        ORDER BY day, track, currency, shard
        ON CONFLICT (day, track, currency, shard) DO UPDATE SET
            payments = s.payments + EXCLUDED.payments,
            gross_cents = s.gross_cents + EXCLUDED.gross_cents,
            refunded_cents = s.refunded_cents + EXCLUDED.refunded_cents;
    END IF;
    RETURN NULL;
END;
$$;

-- The rows so far, spread over their shards.
DELETE FROM stats_revenue_daily;
INSERT INTO stats_revenue_daily (day, track, currency, shard, payments, gross_cents, refunded_cents)
SELECT day, track, currency, shard, sum(payments), sum(gross_cents), sum(refunded_cents)
FROM (
    SELECT (succeeded_at AT TIME ZONE 'UTC')::date AS day, (hashtext(id::text) & 15)::smallint AS shard, track, currency::text AS currency,
    1 AS payments, 1 * amount_cents AS gross_cents, 1 * refunded_amount_cents AS refunded_cents
    FROM payments
    WHERE succeeded_at IS NOT NULL AND status IN ('SUCCEEDED', 'PARTIALLY_REFUNDED', 'REFUNDED', 'DISPUTED')
) d
GROUP BY day, track, currency, shard;


-- stats_enrollments_daily
ALTER TABLE stats_enrollments_daily ADD COLUMN shard smallint NOT NULL DEFAULT 0 CHECK (shard BETWEEN 0 AND 15);
ALTER TABLE stats_enrollments_daily ALTER COLUMN shard DROP DEFAULT;
ALTER TABLE stats_enrollments_daily DROP CONSTRAINT stats_enrollments_daily_pkey, ADD PRIMARY KEY (day, track_id, shard);

CREATE OR REPLACE FUNCTION stats_enrollments_apply() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM stats_enrollments_daily;
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO stats_enrollments_daily AS s (day, track_id, shard, enrollments)
        SELECT day, track_id, shard, sum(enrollments)
        FROM (
            SELECT (enrolled_at AT TIME ZONE 'UTC')::date AS day, (hashtext(id::text) & 15)::smallint AS shard, track_id, 1 AS enrollments
            FROM stats_new_rows
            WHERE enrolled_at IS NOT NULL AND track_id IS NOT NULL AND role = 'student'
        ) d
        GROUP BY day, track_id, shard HAVING sum(enrollments) <> 0
        ORDER BY day, track_id, shard
        ON CONFLICT (day, track_id, shard) DO UPDATE SET
            enrollments = s.enrollments + EXCLUDED.enrollments;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO stats_enrollments_daily AS s (day, track_id, shard, enrollments)
        SELECT day, track_id, shard, sum(enrollments)
        FROM (
            SELECT (enrolled_at AT TIME ZONE 'UTC')::date AS day, (hashtext(id::text) & 15)::smallint AS shard, track_id, 1 AS enrollments
            FROM stats_new_rows
            WHERE enrolled_at IS NOT NULL AND track_id IS NOT NULL AND role = 'student'
            UNION ALL
            SELECT (enrolled_at AT TIME ZONE 'UTC')::date AS day, (hashtext(id::text) & 15)::smallint AS shard, track_id, -1 AS enrollments
            FROM stats_old_rows
            WHERE enrolled_at IS NOT NULL AND track_id IS NOT NULL AND role = 'student'
        ) d
        GROUP BY day, track_id, shard HAVING sum(enrollments) <> 0
        ORDER BY day, track_id, shard
        ON CONFLICT (day, track_id, shard) DO UPDATE SET
            enrollments = s.enrollments + EXCLUDED.enrollments;
    ELSE
        INSERT INTO stats_enrollments_daily AS s (day, track_id, shard, enrollments)
        SELECT day, track_id, shard, sum(enrollments)
        FROM (
            SELECT (enrolled_at AT TIME ZONE 'UTC')::date AS day, (hashtext(id::text) & 15)::smallint AS shard, track_id, -1 AS enrollments
            FROM stats_old_rows
            WHERE enrolled_at IS NOT NULL AND track_id IS NOT NULL AND role = 'student'
        ) d
        GROUP BY day, track_id, shard HAVING sum(enrollments) <> 0
        ORDER BY day, track_id, shard
        ON CONFLICT (day, track_id, shard) DO UPDATE SET
            enrollments = s.enrollments + EXCLUDED.enrollments;
    END IF;
    RETURN NULL;
END;
$$;

-- The rows so far, spread over their shards.
DELETE FROM stats_enrollments_daily;
INSERT INTO stats_enrollments_daily (day, track_id, shard, enrollments)
SELECT day, track_id, shard, sum(enrollments)
FROM (
    SELECT (enrolled_at AT TIME ZONE 'UTC')::date AS day, (hashtext(id::text) & 15)::smallint AS shard, track_id, 1 AS enrollments
    FROM users
    WHERE enrolled_at IS NOT NULL AND track_id IS NOT NULL AND role = 'student'
) d
GROUP BY day, track_id, shard;


-- stats_provisioning_daily
ALTER TABLE stats_provisioning_daily ADD COLUMN shard smallint NOT NULL DEFAULT 0 CHECK (shard BETWEEN 0 AND 15);
ALTER TABLE stats_provisioning_daily ALTER COLUMN shard DROP DEFAULT;
ALTER TABLE stats_provisioning_daily DROP CONSTRAINT stats_provisioning_daily_pkey, ADD PRIMARY KEY (day, tool, status, shard);

CREATE OR REPLACE FUNCTION stats_provisioning_apply() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM stats_provisioning_daily;
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO stats_provisioning_daily AS s (day, tool, status, shard, count)
        SELECT day, tool, status, shard, sum(count)
        FROM (
            SELECT (updated_at AT TIME ZONE 'UTC')::date AS day, (hashtext(user_id::text) & 15)::smallint AS shard, tool, status, 1 AS count
            FROM stats_new_rows
        ) d
        GROUP BY day, tool, status, shard HAVING sum(count) <> 0
        ORDER BY day, tool, status, shard
        ON CONFLICT (day, tool, status, shard) DO UPDATE SET
            count = s.count + EXCLUDED.count;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO stats_provisioning_daily AS s (day, tool, status, shard, count)
        SELECT day, tool, status, shard, sum(count)
        FROM (
            SELECT (updated_at AT TIME ZONE 'UTC')::date AS day, (hashtext(user_id::text) & 15)::smallint AS shard, tool, status, 1 AS count
            FROM stats_new_rows
            UNION ALL
            SELECT (updated_at AT TIME ZONE 'UTC')::date AS day, (hashtext(user_id::text) & 15)::smallint AS shard, tool, status, -1 AS count
            FROM stats_old_rows
        ) d
        GROUP BY day, tool, status, shard HAVING sum(count) <> 0
        ORDER BY day, tool, status, shard
        ON CONFLICT (day, tool, status, shard) DO UPDATE SET
            count = s.count + EXCLUDED.count;
    ELSE
        INSERT INTO stats_provisioning_daily AS s (day, tool, status, shard, count)
        SELECT day, tool, status, shard, sum(count)
        FROM (
            SELECT (updated_at AT TIME ZONE 'UTC')::date AS day, (hashtext(user_id::text) & 15)::smallint AS shard, tool, status, -1 AS count
            FROM stats_old_rows
        ) d
        GROUP BY day, tool, status, shard HAVING sum(count) <> 0
        ORDER BY day, tool, status, shard
        ON CONFLICT (day, tool, status, shard) DO UPDATE SET
            count = s.count + EXCLUDED.count;
    END IF;
    RETURN NULL;
END;
$$;

-- The rows so far, spread over their shards.
DELETE FROM stats_provisioning_daily;
INSERT INTO stats_provisioning_daily (day, tool, status, shard, count)
SELECT day, tool, status, shard, sum(count)
FROM (
    SELECT (updated_at AT TIME ZONE 'UTC')::date AS day, (hashtext(user_id::text) & 15)::smallint AS shard, tool, status, 1 AS count
    FROM tool_provisioning
) d
GROUP BY day, tool, status, shard;


-- stats_refunds_daily
ALTER TABLE stats_refunds_daily ADD COLUMN shard smallint NOT NULL DEFAULT 0 CHECK (shard BETWEEN 0 AND 15);
ALTER TABLE stats_refunds_daily ALTER COLUMN shard DROP DEFAULT;
ALTER TABLE stats_refunds_daily DROP CONSTRAINT stats_refunds_daily_pkey, ADD PRIMARY KEY (day, currency, shard);

CREATE OR REPLACE FUNCTION stats_refunds_apply() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM stats_refunds_daily;
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO stats_refunds_daily AS s (day, currency, shard, requested, approved, rejected, pending, failed, requested_cents, approved_cents)
        SELECT day, currency, shard, sum(requested), sum(approved), sum(rejected), sum(pending), sum(failed), sum(requested_cents), sum(approved_cents)
        FROM (
            SELECT (r.created_at AT TIME ZONE 'UTC')::date AS day, (hashtext(r.id::text) & 15)::smallint AS shard, p.currency::text AS currency,
            1 AS requested,
            1 * (r.status = 'APPROVED')::int AS approved,
            1 * (r.status = 'REJECTED')::int AS rejected,
            1 * (r.status = 'PENDING')::int AS pending,
            1 * (r.status = 'FAILED')::int AS failed,
            1 * r.amount_cents AS requested_cents,
            1 * CASE WHEN r.status = 'APPROVED' THEN r.amount_cents ELSE 0 END AS approved_cents
            FROM stats_new_rows r JOIN payments p ON p.id = r.payment_id
        ) d
        GROUP BY day, currency, shard HAVING sum(requested) <> 0 OR sum(approved) <> 0 OR sum(rejected) <> 0 OR sum(pending) <> 0 OR sum(failed) <> 0 OR sum(requested_cents) <> 0 OR sum(approved_cents) <> 0
        ORDER BY day, currency, shard
        ON CONFLICT (day, currency, shard) DO UPDATE SET
            requested = s.requested + EXCLUDED.requested,
            approved = s.approved + EXCLUDED.approved,
            rejected = s.rejected + EXCLUDED.rejected,
            pending = s.pending + EXCLUDED.pending,
            failed = s.failed + EXCLUDED.failed,
            requested_cents = s.requested_cents + EXCLUDED.requested_cents,
            approved_cents = s.approved_cents + EXCLUDED.approved_cents;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO stats_refunds_daily AS s (day, currency, shard, requested, approved, rejected, pending, failed, requested_cents, approved_cents)
        SELECT day, currency, shard, sum(requested), sum(approved), sum(rejected), sum(pending), sum(failed), sum(requested_cents), sum(approved_cents)
        FROM (
            SELECT (r.created_at AT TIME ZONE 'UTC')::date AS day, (hashtext(r.id::text) & 15)::smallint AS shard, p.currency::text AS currency,
            1 AS requested,
            1 * (r.status = 'APPROVED')::int AS approved,
            1 * (r.status = 'REJECTED')::int AS rejected,
            1 * (r.status = 'PENDING')::int AS pending,
            1 * (r.status = 'FAILED')::int AS failed,
            1 * r.amount_cents AS requested_cents,
            1 * CASE WHEN r.status = 'APPROVED' THEN r.amount_cents ELSE 0 END AS approved_cents
            FROM stats_new_rows r JOIN payments p ON p.id = r.payment_id
            UNION ALL
            SELECT (r.created_at AT TIME ZONE 'UTC')::date AS day, (hashtext(r.id::text) & 15)::smallint AS shard, p.currency::text AS currency,
            -1 AS requested,
            -1 * (r.status = 'APPROVED')::int AS approved,
            -1 * (r.status = 'REJECTED')::int AS rejected,
            -1 * (r.status = 'PENDING')::int AS pending,
            -1 * (r.status = 'FAILED')::int AS failed,
            -1 * r.amount_cents AS requested_cents,
            -1 * CASE WHEN r.status = 'APPROVED' THEN r.amount_cents ELSE 0 END AS approved_cents
            FROM stats_old_rows r JOIN payments p ON p.id = r.payment_id
        ) d
        GROUP BY day, currency, shard HAVING sum(requested) <> 0 OR sum(approved) <> 0 OR sum(rejected) <> 0 OR sum(pending) <> 0 OR sum(failed) <> 0 OR sum(requested_cents) <> 0 OR sum(approved_cents) <> 0
        ORDER BY day, currency, shard
        ON CONFLICT (day, currency, shard) DO UPDATE SET
            requested = s.requested + EXCLUDED.requested,
            approved = s.approved + EXCLUDED.approved,
            rejected = s.rejected + EXCLUDED.rejected,
            pending = s.pending + EXCLUDED.pending,
            failed = s.failed + EXCLUDED.failed,
            requested_cents = s.requested_cents + EXCLUDED.requested_cents,
            approved_cents = s.approved_cents + EXCLUDED.approved_cents;
    ELSE
        INSERT INTO stats_refunds_daily AS s (day, currency, shard, requested, approved, rejected, pending, failed, requested_cents, approved_cents)
        SELECT day, currency, shard, sum(requested), sum(approved), sum(rejected), sum(pending), sum(failed), sum(requested_cents), sum(approved_cents)
        FROM (
            SELECT (r.created_at AT TIME ZONE 'UTC')::date AS day, (hashtext(r.id::text) & 15)::smallint AS shard, p.currency::text AS currency,
            -1 AS requested,
            -1 * (r.status = 'APPROVED')::int AS approved,
            -1 * (r.status = 'REJECTED')::int AS rejected,
            -1 * (r.status = 'PENDING')::int AS pending,
            -1 * (r.status = 'FAILED')::int AS failed,
            -1 * r.amount_cents AS requested_cents,
            -1 * CASE WHEN r.status = 'APPROVED' THEN r.amount_cents ELSE 0 END AS approved_cents
            FROM stats_old_rows r JOIN payments p ON p.id = r.payment_id
        ) d
        GROUP BY day, currency, shard HAVING sum(requested) <> 0 OR sum(approved) <> 0 OR sum(rejected) <> 0 OR sum(pending) <> 0 OR sum(failed) <> 0 OR sum(requested_cents) <> 0 OR sum(approved_cents) <> 0
        ORDER BY day, currency, shard
        ON CONFLICT (day, currency, shard) DO UPDATE SET
            requested = s.requested + EXCLUDED.requested,
            approved = s.approved + EXCLUDED.approved,
            rejected = s.rejected + EXCLUDED.rejected,
            pending = s.pending + EXCLUDED.pending,
            failed = s.failed + EXCLUDED.failed,
            requested_cents = s.requested_cents + EXCLUDED.requested_cents,
            approved_cents = s.approved_cents + EXCLUDED.approved_cents;
    END IF;
    RETURN NULL;
END;
$$;

-- The rows so far, spread over their shards.
DELETE FROM stats_refunds_daily;
INSERT INTO stats_refunds_daily (day, currency, shard, requested, approved, rejected, pending, failed, requested_cents, approved_cents)
SELECT day, currency, shard, sum(requested), sum(approved), sum(rejected), sum(pending), sum(failed), sum(requested_cents), sum(approved_cents)
FROM (
    SELECT (r.created_at AT TIME ZONE 'UTC')::date AS day, (hashtext(r.id::text) & 15)::smallint AS shard, p.currency::text AS currency,
    1 AS requested,
    1 * (r.status = 'APPROVED')::int AS approved,
    1 * (r.status = 'REJECTED')::int AS rejected,
    1 * (r.status = 'PENDING')::int AS pending,
    1 * (r.status = 'FAILED')::int AS failed,
    1 * r.amount_cents AS requested_cents,
    1 * CASE WHEN r.status = 'APPROVED' THEN r.amount_cents ELSE 0 END AS approved_cents
    FROM refund_requests r JOIN payments p ON p.id = r.payment_id
) d
GROUP BY day, currency, shard;

