-- 0016: server-side session state. An access token is a session only while its user row says so.
--
-- The API's guard reads, in one primary-key lookup per request with a token, whether the user
-- still exists, is active, holds the role the route needs (the database is the truth for roles;
-- Cognito groups follow it), and whether the token was issued (`iat`, whole seconds) in a second
-- after the one holding sessions_valid_after: a token issued in the same second as a logout is
-- refused. The auth function's login and refresh wait out that second when they would otherwise
-- hand out a token the guard refuses (see docs/decisions.md, "Sessions end when the person or an
-- admin decides").
--
-- The application sets it on logout, password change and reset, and a deletion request. The
-- trigger below sets it whatever writes the row, so that no writer can forget it, when the role
-- changes, the account is disabled (is_active turns false) or its erasure starts (deleted_at set).
-- clock_timestamp(), not now(): the time of the change, not of the transaction's start.
-- NULL: no session has been ended yet.

ALTER TABLE users ADD COLUMN sessions_valid_after timestamptz;

COMMENT ON COLUMN users.sessions_valid_after IS
    'Access tokens issued (iat) in this second or before are refused by the API (logout, sign-out everywhere, password change/reset, role change, disable, deletion).';

CREATE FUNCTION users_end_sessions_on_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.role IS DISTINCT FROM OLD.role
       OR (OLD.is_active AND NOT NEW.is_active)
       OR (OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL) THEN
        NEW.sessions_valid_after := clock_timestamp();
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER users_end_sessions BEFORE UPDATE OF role, is_active, deleted_at ON users
    FOR EACH ROW EXECUTE FUNCTION users_end_sessions_on_change();
