-- 0004: payments, processed Stripe events, Stripe customers, refund requests.
--
-- payments are financial records kept 7 years (PAYMENT_DATA retention, a legal requirement):
--  * a trigger rejects every DELETE, and any UPDATE of the money and identity fields (amount,
--    currency, track, kind, created_at) or of a Stripe id once it is set (setting it the first
--    time is allowed: the session id arrives after the row is written); refunded_amount_cents may
--    only grow. Status, refund and dispute columns stay writable: they are how refunds are recorded.
--  * user_id is ON DELETE RESTRICT: deleting a user can never cascade into payments. The purge
--    replaces user_id (and customer_email/customer_name) with an opaque subject_ref first.
--  * user_id is NULL for a pay-first (anonymous) checkout until the account exists.
--  * "paying twice for the same track" is a unique violation: at most one payment per
--    (user, track) that is pending or still paid for (PENDING, SUCCEEDED, PARTIALLY_REFUNDED,
--    DISPUTED). FAILED, EXPIRED and fully REFUNDED payments do not block a new attempt.
-- stripe_events is the webhook's idempotency record (event id primary key); it keeps no payload.
-- refund_requests: one open (PENDING) request per payment; its id is the Stripe idempotency key
-- of the refund; like payments it is a financial record, so its user reference is RESTRICT too.

CREATE TABLE payments (
    id                         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id                    uuid        REFERENCES users (id) ON DELETE RESTRICT,
    subject_ref                text,
    customer_email             citext,
    customer_name              text,
    track                      text        NOT NULL REFERENCES tracks (code) ON UPDATE RESTRICT ON DELETE RESTRICT,
    amount_cents               bigint      NOT NULL CHECK (amount_cents > 0),
    currency                   char(3)     NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status                     text        NOT NULL DEFAULT 'PENDING'
        CHECK (status IN ('PENDING', 'SUCCEEDED', 'FAILED', 'EXPIRED', 'REFUNDED', 'PARTIALLY_REFUNDED', 'DISPUTED')),
    kind                       text        NOT NULL DEFAULT 'CHECKOUT' CHECK (kind IN ('CHECKOUT', 'PAYMENT_INTENT', 'MANUAL')),
    stripe_checkout_session_id text        UNIQUE,
    stripe_payment_intent_id   text        UNIQUE,
    stripe_customer_id         text,
    stripe_charge_id           text        UNIQUE,
    refunded_amount_cents      bigint      NOT NULL DEFAULT 0,
    disputed                   boolean     NOT NULL DEFAULT false,
    dispute_status             text        CHECK (dispute_status IN ('OPEN', 'WON', 'LOST')),
    failure_message            text,
    idempotency_key            text        UNIQUE,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now(),
    succeeded_at               timestamptz,
    refunded_at                timestamptz,
    CONSTRAINT payments_refund_within_amount CHECK (refunded_amount_cents BETWEEN 0 AND amount_cents),
    CONSTRAINT payments_anonymised_has_no_user CHECK (subject_ref IS NULL OR user_id IS NULL)
);

CREATE FUNCTION payments_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        RAISE EXCEPTION 'payments are immutable records: TRUNCATE is not allowed'
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'payments are immutable records: DELETE of payment % is not allowed', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF NEW.id IS DISTINCT FROM OLD.id
       OR NEW.amount_cents IS DISTINCT FROM OLD.amount_cents
       OR NEW.currency IS DISTINCT FROM OLD.currency
       OR NEW.track IS DISTINCT FROM OLD.track
       OR NEW.kind IS DISTINCT FROM OLD.kind
       OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
        RAISE EXCEPTION 'payment %: amount, currency, track, kind and creation time cannot change', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF (OLD.stripe_checkout_session_id IS NOT NULL
            AND NEW.stripe_checkout_session_id IS DISTINCT FROM OLD.stripe_checkout_session_id)
       OR (OLD.stripe_payment_intent_id IS NOT NULL
            AND NEW.stripe_payment_intent_id IS DISTINCT FROM OLD.stripe_payment_intent_id)
       OR (OLD.stripe_customer_id IS NOT NULL
            AND NEW.stripe_customer_id IS DISTINCT FROM OLD.stripe_customer_id)
       OR (OLD.stripe_charge_id IS NOT NULL
            AND NEW.stripe_charge_id IS DISTINCT FROM OLD.stripe_charge_id) THEN
        RAISE EXCEPTION 'payment %: a Stripe id cannot change once it is set', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF OLD.subject_ref IS NOT NULL AND NEW.subject_ref IS DISTINCT FROM OLD.subject_ref THEN
        RAISE EXCEPTION 'payment %: subject_ref cannot change once it is set', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF NEW.refunded_amount_cents < OLD.refunded_amount_cents THEN
        RAISE EXCEPTION 'payment %: refunded amount cannot decrease (% -> %)',
            OLD.id, OLD.refunded_amount_cents, NEW.refunded_amount_cents
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER payments_guard BEFORE UPDATE OR DELETE ON payments
    FOR EACH ROW EXECUTE FUNCTION payments_guard();
CREATE TRIGGER payments_no_truncate BEFORE TRUNCATE ON payments
    FOR EACH STATEMENT EXECUTE FUNCTION payments_guard();
CREATE TRIGGER payments_updated_at BEFORE UPDATE ON payments
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- My payments, newest first.
CREATE INDEX payments_user_created ON payments (user_id, created_at DESC, id DESC);
-- Paying twice for the same track (409): one live payment per user and track.
CREATE UNIQUE INDEX payments_one_live_per_user_track ON payments (user_id, track)
    WHERE user_id IS NOT NULL AND status IN ('PENDING', 'SUCCEEDED', 'PARTIALLY_REFUNDED', 'DISPUTED');
-- Admin payments list (keyset), optionally by status.
CREATE INDEX payments_created ON payments (created_at, id);
CREATE INDEX payments_status_created ON payments (status, created_at, id);
-- Pay-first checkouts are linked to an account (and found by export/purge) by e-mail.
CREATE INDEX payments_customer_email ON payments (customer_email) WHERE customer_email IS NOT NULL;
-- Export and audit of an erased person's payment records by their opaque reference (one person
-- may have several payments, so it is not unique).
CREATE INDEX payments_subject_ref ON payments (subject_ref) WHERE subject_ref IS NOT NULL;
CREATE INDEX payments_stripe_customer ON payments (stripe_customer_id) WHERE stripe_customer_id IS NOT NULL;

CREATE TABLE stripe_events (
    event_id          text        PRIMARY KEY,
    type              text        NOT NULL,
    stripe_created_at timestamptz,
    received_at       timestamptz NOT NULL DEFAULT now(),
    processed_at      timestamptz,
    payment_id        uuid        REFERENCES payments (id) ON DELETE RESTRICT,
    outcome           text
);

CREATE INDEX stripe_events_payment ON stripe_events (payment_id) WHERE payment_id IS NOT NULL;
CREATE INDEX stripe_events_received ON stripe_events (received_at);

CREATE TABLE stripe_customers (
    id                 serial PRIMARY KEY,
    user_id            uuid        NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    stripe_customer_id text        NOT NULL UNIQUE,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER stripe_customers_updated_at BEFORE UPDATE ON stripe_customers
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE refund_requests (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    payment_id       uuid        NOT NULL REFERENCES payments (id) ON DELETE RESTRICT,
    user_id          uuid        REFERENCES users (id) ON DELETE RESTRICT,
    reason           text,
    amount_cents     bigint      NOT NULL CHECK (amount_cents > 0),
    status           text        NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'APPROVED', 'REJECTED', 'FAILED')),
    decided_by       uuid        REFERENCES users (id) ON DELETE SET NULL,
    decided_at       timestamptz,
    decision_reason  text,
    stripe_refund_id text        UNIQUE,
    failure_message  text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT refund_requests_decided CHECK ((status = 'PENDING') = (decided_at IS NULL))
);

CREATE TRIGGER refund_requests_updated_at BEFORE UPDATE ON refund_requests
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- One open request per payment (refund twice → 409).
CREATE UNIQUE INDEX refund_requests_one_open ON refund_requests (payment_id) WHERE status = 'PENDING';
CREATE INDEX refund_requests_payment ON refund_requests (payment_id, created_at);
-- Admin list, pending first / by status (keyset).
CREATE INDEX refund_requests_status_created ON refund_requests (status, created_at, id);
CREATE INDEX refund_requests_user ON refund_requests (user_id) WHERE user_id IS NOT NULL;
