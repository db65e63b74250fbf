-- 0009: only the roles granted CONNECT may open the application database.
--
-- The students' database lives on the same server, and every new role (a student's login role
-- among them) may CONNECT to any database by default. The application's own login role is granted
-- CONNECT explicitly (functions/migrate/runner.py, grant_app_role); nobody else needs it.
DO $$
BEGIN
    EXECUTE format('REVOKE CONNECT ON DATABASE %I FROM PUBLIC', current_database());
END;
$$;
