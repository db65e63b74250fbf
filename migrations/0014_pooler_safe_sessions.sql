-- 0014: connections RDS Proxy accepts and does not pin.
--
-- The statement timeout was sent as the startup parameter `options`, which RDS Proxy refuses
-- (PgBouncer too, in front of the local and test servers). It is now the login roles' default in
-- this database, set here for the roles the functions sign in as:
-- - apranova_app in AWS (cdk/constructs/database.py APP_USER), through the proxy with an IAM token.
--   It is created here if the deploy's grant step (functions/migrate/runner.py, grant_app_role)
--   has not made it yet, so the default is in place before any function connects; that step
--   grants the rest.
-- - the role running the migrations: locally and in the tests the functions sign in as it (the
--   local superuser). In AWS that is the master user, whose own sessions (the migration function,
--   an operator) are direct, not through the proxy, and may SET a longer timeout.
-- `IN DATABASE`: the defaults apply to this database only, not to the students' database or to
-- another database on a shared local server.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'apranova_app') THEN
        BEGIN
            CREATE ROLE apranova_app LOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- a migration of another database on the same server made it meanwhile
        END;
    END IF;
    EXECUTE format('ALTER ROLE apranova_app IN DATABASE %I SET statement_timeout = %L', current_database(), '10s');
    EXECUTE format('ALTER ROLE %I IN DATABASE %I SET statement_timeout = %L', current_user, current_database(), '10s');
END;
$$;

-- Session advisory locks outlive the transaction on a pooled server connection: through the proxy
-- (or PgBouncer in transaction mode) the unlock may run on another server connection and the lock
-- stays held by a connection other clients reuse. The two long jobs that held one across several
-- transactions now take a lease on their row instead, which expires with the function's timeout
-- if the function dies before it lets go.
ALTER TABLE data_export_requests ADD COLUMN build_lease_until timestamptz;
ALTER TABLE deletion_requests ADD COLUMN purge_lease_until timestamptz;
