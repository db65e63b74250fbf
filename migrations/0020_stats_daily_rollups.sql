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


-- What one fact row counts, as SQL over a relation (the transition table, or the fact table for
-- the backfill below); %1$s is the sign (1 for new rows, -1 for old ones), %2$s the relation.

CREATE FUNCTION stats_revenue_rows(sign integer, relation text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
SELECT format($q$
    SELECT (succeeded_at AT TIME ZONE 'UTC')::date AS day, track, currency::text AS currency,
           %1$s AS payments, %1$s * amount_cents AS gross_cents, %1$s * refunded_amount_cents AS refunded_cents
    FROM %2$s
    WHERE succeeded_at IS NOT NULL AND status IN ('SUCCEEDED', 'PARTIALLY_REFUNDED', 'REFUNDED', 'DISPUTED')
$q$, sign, relation)
$$;

CREATE FUNCTION stats_enrollments_rows(sign integer, relation text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
SELECT format($q$
    SELECT (enrolled_at AT TIME ZONE 'UTC')::date AS day, track_id, %1$s AS enrollments
    FROM %2$s
    WHERE enrolled_at IS NOT NULL AND track_id IS NOT NULL AND role = 'student'
$q$, sign, relation)
$$;

CREATE FUNCTION stats_provisioning_rows(sign integer, relation text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
SELECT format($q$
    SELECT (updated_at AT TIME ZONE 'UTC')::date AS day, tool, status, %1$s AS count
    FROM %2$s
$q$, sign, relation)
$$;

CREATE FUNCTION stats_refunds_rows(sign integer, relation text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
SELECT format($q$
    SELECT (r.created_at AT TIME ZONE 'UTC')::date AS day, p.currency::text AS currency,
           %1$s AS requested,
           %1$s * (r.status = 'APPROVED')::int AS approved,
           %1$s * (r.status = 'REJECTED')::int AS rejected,
           %1$s * (r.status = 'PENDING')::int AS pending,
           %1$s * (r.status = 'FAILED')::int AS failed,
           %1$s * r.amount_cents AS requested_cents,
           %1$s * CASE WHEN r.status = 'APPROVED' THEN r.amount_cents ELSE 0 END AS approved_cents
    FROM %2$s r JOIN payments p ON p.id = r.payment_id
$q$, sign, relation)
$$;


-- One apply function for every rollup: the delta of the statement's old and new rows, summed by
-- key, added in key order; nothing when the statement moved no count.
CREATE FUNCTION stats_rollup_apply() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    rollup text := TG_ARGV[0];              -- stats_<name>_daily
    rows_of text := TG_ARGV[1];             -- stats_<name>_rows
    keys text := TG_ARGV[2];                -- the rollup's key columns, comma-separated
    measures text[] := string_to_array(TG_ARGV[3], ',');
    parts text[] := '{}';
    part text;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        EXECUTE format('DELETE FROM %I', rollup);
        RETURN NULL;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        EXECUTE format('SELECT %I(1, %L)', rows_of, 'stats_new_rows') INTO part;
        parts := parts || part;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        EXECUTE format('SELECT %I(-1, %L)', rows_of, 'stats_old_rows') INTO part;
        parts := parts || part;
    END IF;
    EXECUTE format(
        'INSERT INTO %1$I AS s (%2$s, %3$s)
         SELECT %2$s, %4$s FROM (%5$s) d GROUP BY %2$s HAVING %6$s ORDER BY %2$s
         ON CONFLICT (%2$s) DO UPDATE SET %7$s',
        rollup,
        keys,
        array_to_string(measures, ', '),
        (SELECT string_agg(format('sum(%I)', m), ', ') FROM unnest(measures) m),
        array_to_string(parts, ' UNION ALL '),
        (SELECT string_agg(format('sum(%I) <> 0', m), ' OR ') FROM unnest(measures) m),
        (SELECT string_agg(format('%1$I = s.%1$I + EXCLUDED.%1$I', m), ', ') FROM unnest(measures) m)
    );
    RETURN NULL;
END;
$$;

-- The triggers: one per event (a trigger with transition tables takes one event), and TRUNCATE.
DO $$
DECLARE
    spec record;
    event text;
BEGIN
    FOR spec IN
        SELECT * FROM (VALUES
            ('payments', 'revenue', 'day, track, currency', 'payments,gross_cents,refunded_cents'),
            ('users', 'enrollments', 'day, track_id', 'enrollments'),
            ('tool_provisioning', 'provisioning', 'day, tool, status', 'count'),
            ('refund_requests', 'refunds', 'day, currency',
             'requested,approved,rejected,pending,failed,requested_cents,approved_cents')
        ) AS t (fact, name, keys, measures)
    LOOP
        FOREACH event IN ARRAY ARRAY['INSERT', 'UPDATE', 'DELETE'] LOOP
            EXECUTE format(
                'CREATE TRIGGER %I AFTER %s ON %I REFERENCING %s FOR EACH STATEMENT
                 EXECUTE FUNCTION stats_rollup_apply(%L, %L, %L, %L)',
                format('stats_%s_%s', spec.name, lower(event)), event, spec.fact,
                CASE event
                    WHEN 'INSERT' THEN 'NEW TABLE AS stats_new_rows'
                    WHEN 'UPDATE' THEN 'OLD TABLE AS stats_old_rows NEW TABLE AS stats_new_rows'
                    ELSE 'OLD TABLE AS stats_old_rows'
                END,
                format('stats_%s_daily', spec.name), format('stats_%s_rows', spec.name), spec.keys, spec.measures
            );
        END LOOP;
        EXECUTE format(
            'CREATE TRIGGER %I AFTER TRUNCATE ON %I FOR EACH STATEMENT
             EXECUTE FUNCTION stats_rollup_apply(%L, %L, %L, %L)',
            format('stats_%s_truncate', spec.name), spec.fact,
            format('stats_%s_daily', spec.name), format('stats_%s_rows', spec.name), spec.keys, spec.measures
        );
        -- What the facts already hold.
        EXECUTE format(
            'INSERT INTO %I (%s, %s) SELECT %s, %s FROM (%s) d GROUP BY %s',
            format('stats_%s_daily', spec.name), spec.keys, replace(spec.measures, ',', ', '), spec.keys,
            (SELECT string_agg(format('sum(%I)', m), ', ') FROM unnest(string_to_array(spec.measures, ',')) m),
            CASE spec.name
                WHEN 'revenue' THEN stats_revenue_rows(1, 'payments')
                WHEN 'enrollments' THEN stats_enrollments_rows(1, 'users')
                WHEN 'provisioning' THEN stats_provisioning_rows(1, 'tool_provisioning')
                ELSE stats_refunds_rows(1, 'refund_requests')
            END,
            spec.keys
        );
    END LOOP;
END;
$$;
