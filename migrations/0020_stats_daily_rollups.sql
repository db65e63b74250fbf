-- 0020: daily rollups of the admin's additive time series (issue 18), kept in the transaction of
-- the facts they count.
--
-- GET /api/admin/stats/?from&to&bucket aggregated the facts of the whole range on every call: at
-- 100,000 students a window holds most rows, so each series cost hundreds of milliseconds. The
-- series that are sums and counts (revenue, enrollments, provisioning outcomes, refund requests) are
-- now read from one row per UTC day and key; a week is the sum of its days.
--
-- Kept by statement-level triggers with transition tables, whoever writes (the webhook, the
-- workflow steps, an admin, a purge's cascade, a bulk load, a migration): each statement adds what
-- its new rows count and subtracts what its old rows counted, grouped by day and key, in the same
-- transaction, so a rollup is never ahead of or behind the committed facts (a rolled-back write
-- rolls its delta back too). A statement that changes nothing a series counts (most updates of
-- users and payments) has no delta and touches no rollup row: the rows it would lock are only
-- locked by writes that move a count, until their commit. A statement applies its deltas in key
-- order, so two statements that touch the same rows queue rather than deadlock. Rows whose counts
-- fall to zero are kept (and skipped by the reads); TRUNCATE of a fact table empties its rollup.
--
-- Not here: the series with percentiles (review turnaround, waiting time) and the all-time totals;
-- see docs/decisions.md.

CREATE TABLE stats_revenue_daily (
    day            date    NOT NULL,
    track          text    NOT NULL,
    currency       text    NOT NULL,
    payments       bigint  NOT NULL,
    gross_cents    bigint  NOT NULL,
    refunded_cents bigint  NOT NULL,
    PRIMARY KEY (day, track, currency)
);
COMMENT ON TABLE stats_revenue_daily IS
    'Paid payments (SUCCEEDED, PARTIALLY_REFUNDED, REFUNDED, DISPUTED) per UTC day of succeeded_at, track and currency: count, amounts and refunded amounts (kept by trigger, migration 0020). No personal data.';

CREATE TABLE stats_enrollments_daily (
    day         date    NOT NULL,
    track_id    integer NOT NULL,
    enrollments bigint  NOT NULL,
    PRIMARY KEY (day, track_id)
);
COMMENT ON TABLE stats_enrollments_daily IS
    'Students per UTC day of users.enrolled_at and track (kept by trigger, migration 0020). No personal data.';

CREATE TABLE stats_provisioning_daily (
    day    date   NOT NULL,
    tool   text   NOT NULL,
    status text   NOT NULL,
    count  bigint NOT NULL,
    PRIMARY KEY (day, tool, status)
);
COMMENT ON TABLE stats_provisioning_daily IS
    'Tool records per UTC day of their last change (tool_provisioning.updated_at), tool and status (kept by trigger, migration 0020). No personal data.';

CREATE TABLE stats_refunds_daily (
    day             date   NOT NULL,
    currency        text   NOT NULL,
    requested       bigint NOT NULL,
    approved        bigint NOT NULL,
    rejected        bigint NOT NULL,
    pending         bigint NOT NULL,
    failed          bigint NOT NULL,
    requested_cents bigint NOT NULL,
    approved_cents  bigint NOT NULL,
    PRIMARY KEY (day, currency)
);
COMMENT ON TABLE stats_refunds_daily IS
    'Refund requests per UTC day of created_at and currency, by where they stand now (kept by trigger, migration 0020). No personal data.';


-- One trigger function per fact table, with static statements (planned once per session): the
-- delta of the statement's old and new rows, summed by key and applied in key order; nothing when
-- the statement moved no count. A trigger with transition tables takes one event, so each table
-- has an INSERT, an UPDATE and a DELETE trigger (and TRUNCATE, which empties the rollup). Each
-- table's rollup is then filled from what the facts already hold.

CREATE FUNCTION stats_revenue_apply() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM stats_revenue_daily;
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO stats_revenue_daily AS s (day, track, currency, payments, gross_cents, refunded_cents)
        SELECT day, track, currency, sum(payments), sum(gross_cents), sum(refunded_cents)
        FROM (
            SELECT (succeeded_at AT TIME ZONE 'UTC')::date AS day, track, currency::text AS currency,
            1 AS payments, 1 * amount_cents AS gross_cents, 1 * refunded_amount_cents AS refunded_cents
            FROM stats_new_rows
            WHERE succeeded_at IS NOT NULL AND status IN ('SUCCEEDED', 'PARTIALLY_REFUNDED', 'REFUNDED', 'DISPUTED')
        ) d
        GROUP BY day, track, currency HAVING sum(payments) <> 0 OR sum(gross_cents) <> 0 OR sum(refunded_cents) <> 0
        ORDER BY day, track, currency
        ON CONFLICT (day, track, currency) DO UPDATE SET
            payments = s.payments + EXCLUDED.payments,
            gross_cents = s.gross_cents + EXCLUDED.gross_cents,
            refunded_cents = s.refunded_cents + EXCLUDED.refunded_cents;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO stats_revenue_daily AS s (day, track, currency, payments, gross_cents, refunded_cents)
        SELECT day, track, currency, sum(payments), sum(gross_cents), sum(refunded_cents)
        FROM (
            SELECT (succeeded_at AT TIME ZONE 'UTC')::date AS day, track, currency::text AS currency,
            1 AS payments, 1 * amount_cents AS gross_cents, 1 * refunded_amount_cents AS refunded_cents
            FROM stats_new_rows
            WHERE succeeded_at IS NOT NULL AND status IN ('SUCCEEDED', 'PARTIALLY_REFUNDED', 'REFUNDED', 'DISPUTED')
            UNION ALL
            SELECT (succeeded_at AT TIME ZONE 'UTC')::date AS day, track, currency::text AS currency,
            -1 AS payments, -1 * amount_cents AS gross_cents, -1 * refunded_amount_cents AS refunded_cents
            FROM stats_old_rows
            WHERE succeeded_at IS NOT NULL AND status IN ('SUCCEEDED', 'PARTIALLY_REFUNDED', 'REFUNDED', 'DISPUTED')
        ) d
        GROUP BY day, track, currency HAVING sum(payments) <> 0 OR sum(gross_cents) <> 0 OR sum(refunded_cents) <> 0
        ORDER BY day, track, currency
        ON CONFLICT (day, track, currency) DO UPDATE SET
            payments = s.payments + EXCLUDED.payments,
            gross_cents = s.gross_cents + EXCLUDED.gross_cents,
            refunded_cents = s.refunded_cents + EXCLUDED.refunded_cents;
    ELSE
        INSERT INTO stats_revenue_daily AS s (day, track, currency, payments, gross_cents, refunded_cents)
        SELECT day, track, currency, sum(payments), sum(gross_cents), sum(refunded_cents)
        FROM (
            SELECT (succeeded_at AT TIME ZONE 'UTC')::date AS day, track, currency::text AS currency,
            -1 AS payments, -1 * amount_cents AS gross_cents, -1 * refunded_amount_cents AS refunded_cents
            FROM stats_old_rows
            WHERE succeeded_at IS NOT NULL AND status IN ('SUCCEEDED', 'PARTIALLY_REFUNDED', 'REFUNDED', 'DISPUTED')
        ) d
        GROUP BY day, track, currency HAVING sum(payments) <> 0 OR sum(gross_cents) <> 0 OR sum(refunded_cents) <> 0
        ORDER BY day, track, currency
        ON CONFLICT (day, track, currency) DO UPDATE SET
            payments = s.payments + EXCLUDED.payments,
            gross_cents = s.gross_cents + EXCLUDED.gross_cents,
            refunded_cents = s.refunded_cents + EXCLUDED.refunded_cents;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER stats_revenue_insert AFTER INSERT ON payments REFERENCING NEW TABLE AS stats_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION stats_revenue_apply();
CREATE TRIGGER stats_revenue_update AFTER UPDATE ON payments
    REFERENCING OLD TABLE AS stats_old_rows NEW TABLE AS stats_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION stats_revenue_apply();
CREATE TRIGGER stats_revenue_delete AFTER DELETE ON payments REFERENCING OLD TABLE AS stats_old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION stats_revenue_apply();
CREATE TRIGGER stats_revenue_truncate AFTER TRUNCATE ON payments
    FOR EACH STATEMENT EXECUTE FUNCTION stats_revenue_apply();

-- What the facts already hold.
INSERT INTO stats_revenue_daily (day, track, currency, payments, gross_cents, refunded_cents)
SELECT day, track, currency, sum(payments), sum(gross_cents), sum(refunded_cents)
FROM (
    SELECT (succeeded_at AT TIME ZONE 'UTC')::date AS day, track, currency::text AS currency,
    1 AS payments, 1 * amount_cents AS gross_cents, 1 * refunded_amount_cents AS refunded_cents
    FROM payments
    WHERE succeeded_at IS NOT NULL AND status IN ('SUCCEEDED', 'PARTIALLY_REFUNDED', 'REFUNDED', 'DISPUTED')
) d
GROUP BY day, track, currency;


CREATE FUNCTION stats_enrollments_apply() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM stats_enrollments_daily;
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO stats_enrollments_daily AS s (day, track_id, enrollments)
        SELECT day, track_id, sum(enrollments)
        FROM (
            SELECT (enrolled_at AT TIME ZONE 'UTC')::date AS day, track_id, 1 AS enrollments
            FROM stats_new_rows
            WHERE enrolled_at IS NOT NULL AND track_id IS NOT NULL AND role = 'student'
        ) d
        GROUP BY day, track_id HAVING sum(enrollments) <> 0
        ORDER BY day, track_id
        ON CONFLICT (day, track_id) DO UPDATE SET
            enrollments = s.enrollments + EXCLUDED.enrollments;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO stats_enrollments_daily AS s (day, track_id, enrollments)
        SELECT day, track_id, sum(enrollments)
        FROM (
            SELECT (enrolled_at AT TIME ZONE 'UTC')::date AS day, track_id, 1 AS enrollments
            FROM stats_new_rows
            WHERE enrolled_at IS NOT NULL AND track_id IS NOT NULL AND role = 'student'
            UNION ALL
            SELECT (enrolled_at AT TIME ZONE 'UTC')::date AS day, track_id, -1 AS enrollments
            FROM stats_old_rows
            WHERE enrolled_at IS NOT NULL AND track_id IS NOT NULL AND role = 'student'
        ) d
        GROUP BY day, track_id HAVING sum(enrollments) <> 0
        ORDER BY day, track_id
        ON CONFLICT (day, track_id) DO UPDATE SET
            enrollments = s.enrollments + EXCLUDED.enrollments;
    ELSE
        INSERT INTO stats_enrollments_daily AS s (day, track_id, enrollments)
        SELECT day, track_id, sum(enrollments)
        FROM (
            SELECT (enrolled_at AT TIME ZONE 'UTC')::date AS day, track_id, -1 AS enrollments
            FROM stats_old_rows
            WHERE enrolled_at IS NOT NULL AND track_id IS NOT NULL AND role = 'student'
        ) d
        GROUP BY day, track_id HAVING sum(enrollments) <> 0
        ORDER BY day, track_id
        ON CONFLICT (day, track_id) DO UPDATE SET
            enrollments = s.enrollments + EXCLUDED.enrollments;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER stats_enrollments_insert AFTER INSERT ON users REFERENCING NEW TABLE AS stats_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION stats_enrollments_apply();
CREATE TRIGGER stats_enrollments_update AFTER UPDATE ON users
    REFERENCING OLD TABLE AS stats_old_rows NEW TABLE AS stats_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION stats_enrollments_apply();
CREATE TRIGGER stats_enrollments_delete AFTER DELETE ON users REFERENCING OLD TABLE AS stats_old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION stats_enrollments_apply();
CREATE TRIGGER stats_enrollments_truncate AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION stats_enrollments_apply();

-- What the facts already hold.
INSERT INTO stats_enrollments_daily (day, track_id, enrollments)
SELECT day, track_id, sum(enrollments)
FROM (
    SELECT (enrolled_at AT TIME ZONE 'UTC')::date AS day, track_id, 1 AS enrollments
    FROM users
    WHERE enrolled_at IS NOT NULL AND track_id IS NOT NULL AND role = 'student'
) d
GROUP BY day, track_id;


CREATE FUNCTION stats_provisioning_apply() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM stats_provisioning_daily;
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO stats_provisioning_daily AS s (day, tool, status, count)
        SELECT day, tool, status, sum(count)
        FROM (
            SELECT (updated_at AT TIME ZONE 'UTC')::date AS day, tool, status, 1 AS count
            FROM stats_new_rows
        ) d
        GROUP BY day, tool, status HAVING sum(count) <> 0
        ORDER BY day, tool, status
        ON CONFLICT (day, tool, status) DO UPDATE SET
            count = s.count + EXCLUDED.count;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO stats_provisioning_daily AS s (day, tool, status, count)
        SELECT day, tool, status, sum(count)
        FROM (
            SELECT (updated_at AT TIME ZONE 'UTC')::date AS day, tool, status, 1 AS count
            FROM stats_new_rows
            UNION ALL
            SELECT (updated_at AT TIME ZONE 'UTC')::date AS day, tool, status, -1 AS count
            FROM stats_old_rows
        ) d
        GROUP BY day, tool, status HAVING sum(count) <> 0
        ORDER BY day, tool, status
        ON CONFLICT (day, tool, status) DO UPDATE SET
            count = s.count + EXCLUDED.count;
    ELSE
        INSERT INTO stats_provisioning_daily AS s (day, tool, status, count)
        SELECT day, tool, status, sum(count)
        FROM (
            SELECT (updated_at AT TIME ZONE 'UTC')::date AS day, tool, status, -1 AS count
            FROM stats_old_rows
        ) d
        GROUP BY day, tool, status HAVING sum(count) <> 0
        ORDER BY day, tool, status
        ON CONFLICT (day, tool, status) DO UPDATE SET
            count = s.count + EXCLUDED.count;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER stats_provisioning_insert AFTER INSERT ON tool_provisioning REFERENCING NEW TABLE AS stats_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION stats_provisioning_apply();
CREATE TRIGGER stats_provisioning_update AFTER UPDATE ON tool_provisioning
    REFERENCING OLD TABLE AS stats_old_rows NEW TABLE AS stats_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION stats_provisioning_apply();
CREATE TRIGGER stats_provisioning_delete AFTER DELETE ON tool_provisioning REFERENCING OLD TABLE AS stats_old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION stats_provisioning_apply();
CREATE TRIGGER stats_provisioning_truncate AFTER TRUNCATE ON tool_provisioning
    FOR EACH STATEMENT EXECUTE FUNCTION stats_provisioning_apply();

-- What the facts already hold.
INSERT INTO stats_provisioning_daily (day, tool, status, count)
SELECT day, tool, status, sum(count)
FROM (
    SELECT (updated_at AT TIME ZONE 'UTC')::date AS day, tool, status, 1 AS count
    FROM tool_provisioning
) d
GROUP BY day, tool, status;


CREATE FUNCTION stats_refunds_apply() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM stats_refunds_daily;
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO stats_refunds_daily AS s (day, currency, requested, approved, rejected, pending, failed, requested_cents, approved_cents)
        SELECT day, currency, sum(requested), sum(approved), sum(rejected), sum(pending), sum(failed), sum(requested_cents), sum(approved_cents)
        FROM (
            SELECT (r.created_at AT TIME ZONE 'UTC')::date AS day, p.currency::text AS currency,
            1 AS requested,
            1 * (r.status = 'APPROVED')::int AS approved,
            1 * (r.status = 'REJECTED')::int AS rejected,
            1 * (r.status = 'PENDING')::int AS pending,
            1 * (r.status = 'FAILED')::int AS failed,
            1 * r.amount_cents AS requested_cents,
            1 * CASE WHEN r.status = 'APPROVED' THEN r.amount_cents ELSE 0 END AS approved_cents
            FROM stats_new_rows r JOIN payments p ON p.id = r.payment_id
        ) d
        GROUP BY day, currency HAVING sum(requested) <> 0 OR sum(approved) <> 0 OR sum(rejected) <> 0 OR sum(pending) <> 0 OR sum(failed) <> 0 OR sum(requested_cents) <> 0 OR sum(approved_cents) <> 0
        ORDER BY day, currency
        ON CONFLICT (day, currency) DO UPDATE SET
            requested = s.requested + EXCLUDED.requested,
            approved = s.approved + EXCLUDED.approved,
            rejected = s.rejected + EXCLUDED.rejected,
            pending = s.pending + EXCLUDED.pending,
            failed = s.failed + EXCLUDED.failed,
            requested_cents = s.requested_cents + EXCLUDED.requested_cents,
            approved_cents = s.approved_cents + EXCLUDED.approved_cents;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO stats_refunds_daily AS s (day, currency, requested, approved, rejected, pending, failed, requested_cents, approved_cents)
        SELECT day, currency, sum(requested), sum(approved), sum(rejected), sum(pending), sum(failed), sum(requested_cents), sum(approved_cents)
        FROM (
            SELECT (r.created_at AT TIME ZONE 'UTC')::date AS day, p.currency::text AS currency,
            1 AS requested,
            1 * (r.status = 'APPROVED')::int AS approved,
            1 * (r.status = 'REJECTED')::int AS rejected,
            1 * (r.status = 'PENDING')::int AS pending,
            1 * (r.status = 'FAILED')::int AS failed,
            1 * r.amount_cents AS requested_cents,
            1 * CASE WHEN r.status = 'APPROVED' THEN r.amount_cents ELSE 0 END AS approved_cents
            FROM stats_new_rows r JOIN payments p ON p.id = r.payment_id
            UNION ALL
            SELECT (r.created_at AT TIME ZONE 'UTC')::date AS day, p.currency::text AS currency,
            -1 AS requested,
            -1 * (r.status = 'APPROVED')::int AS approved,
            -1 * (r.status = 'REJECTED')::int AS rejected,
            -1 * (r.status = 'PENDING')::int AS pending,
            -1 * (r.status = 'FAILED')::int AS failed,
            -1 * r.amount_cents AS requested_cents,
            -1 * CASE WHEN r.status = 'APPROVED' THEN r.amount_cents ELSE 0 END AS approved_cents
            FROM stats_old_rows r JOIN payments p ON p.id = r.payment_id
        ) d
        GROUP BY day, currency HAVING sum(requested) <> 0 OR sum(approved) <> 0 OR sum(rejected) <> 0 OR sum(pending) <> 0 OR sum(failed) <> 0 OR sum(requested_cents) <> 0 OR sum(approved_cents) <> 0
        ORDER BY day, currency
        ON CONFLICT (day, currency) DO UPDATE SET
            requested = s.requested + EXCLUDED.requested,
            approved = s.approved + EXCLUDED.approved,
            rejected = s.rejected + EXCLUDED.rejected,
            pending = s.pending + EXCLUDED.pending,
            failed = s.failed + EXCLUDED.failed,
            requested_cents = s.requested_cents + EXCLUDED.requested_cents,
            approved_cents = s.approved_cents + EXCLUDED.approved_cents;
    ELSE
        INSERT INTO stats_refunds_daily AS s (day, currency, requested, approved, rejected, pending, failed, requested_cents, approved_cents)
        SELECT day, currency, sum(requested), sum(approved), sum(rejected), sum(pending), sum(failed), sum(requested_cents), sum(approved_cents)
        FROM (
            SELECT (r.created_at AT TIME ZONE 'UTC')::date AS day, p.currency::text AS currency,
            -1 AS requested,
            -1 * (r.status = 'APPROVED')::int AS approved,
            -1 * (r.status = 'REJECTED')::int AS rejected,
            -1 * (r.status = 'PENDING')::int AS pending,
            -1 * (r.status = 'FAILED')::int AS failed,
            -1 * r.amount_cents AS requested_cents,
            -1 * CASE WHEN r.status = 'APPROVED' THEN r.amount_cents ELSE 0 END AS approved_cents
            FROM stats_old_rows r JOIN payments p ON p.id = r.payment_id
        ) d
        GROUP BY day, currency HAVING sum(requested) <> 0 OR sum(approved) <> 0 OR sum(rejected) <> 0 OR sum(pending) <> 0 OR sum(failed) <> 0 OR sum(requested_cents) <> 0 OR sum(approved_cents) <> 0
        ORDER BY day, currency
        ON CONFLICT (day, currency) DO UPDATE SET
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

CREATE TRIGGER stats_refunds_insert AFTER INSERT ON refund_requests REFERENCING NEW TABLE AS stats_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION stats_refunds_apply();
CREATE TRIGGER stats_refunds_update AFTER UPDATE ON refund_requests
    REFERENCING OLD TABLE AS stats_old_rows NEW TABLE AS stats_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION stats_refunds_apply();
CREATE TRIGGER stats_refunds_delete AFTER DELETE ON refund_requests REFERENCING OLD TABLE AS stats_old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION stats_refunds_apply();
CREATE TRIGGER stats_refunds_truncate AFTER TRUNCATE ON refund_requests
    FOR EACH STATEMENT EXECUTE FUNCTION stats_refunds_apply();

-- What the facts already hold.
INSERT INTO stats_refunds_daily (day, currency, requested, approved, rejected, pending, failed, requested_cents, approved_cents)
SELECT day, currency, sum(requested), sum(approved), sum(rejected), sum(pending), sum(failed), sum(requested_cents), sum(approved_cents)
FROM (
    SELECT (r.created_at AT TIME ZONE 'UTC')::date AS day, p.currency::text AS currency,
    1 AS requested,
    1 * (r.status = 'APPROVED')::int AS approved,
    1 * (r.status = 'REJECTED')::int AS rejected,
    1 * (r.status = 'PENDING')::int AS pending,
    1 * (r.status = 'FAILED')::int AS failed,
    1 * r.amount_cents AS requested_cents,
    1 * CASE WHEN r.status = 'APPROVED' THEN r.amount_cents ELSE 0 END AS approved_cents
    FROM refund_requests r JOIN payments p ON p.id = r.payment_id
) d
GROUP BY day, currency;

