-- 0010: the privacy policy and terms version "in force" follows effective_at, with no job.
--
-- The version in force of each document is the published version with the latest effective_at
-- that is not in the future (ties: the one published last). An admin may publish a version for a
-- future date: nothing changes for anyone until that time, and from then on it is in force, with
-- no scheduler flipping a flag. privacy_version_in_force() / terms_version_in_force() are the only
-- definition: every check (profile consent.current, sign-up, checkout, the curriculum, submission
-- and tool gate) calls them.
--
-- is_active (0005) is no longer read by the application. It cannot follow a scheduled version
-- without a job, so it is kept only as a mirror for people reading the table: publishing
-- (POST /api/admin/policies/) sets it on the version in force at that moment and off elsewhere,
-- and it may lag behind a scheduled version until the next publish. Use the functions, never the
-- column.
--
-- Versions are published in order: the admin route accepts only a version higher than every
-- existing one, effective no earlier than every existing one, so "latest effective_at" and
-- "highest version" always agree.

CREATE FUNCTION privacy_version_in_force() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT version FROM public.privacy_policies
    WHERE effective_at <= now()
    ORDER BY effective_at DESC, id DESC
    LIMIT 1
$$;

CREATE FUNCTION terms_version_in_force() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT version FROM public.terms_of_service
    WHERE effective_at <= now()
    ORDER BY effective_at DESC, id DESC
    LIMIT 1
$$;

COMMENT ON FUNCTION privacy_version_in_force() IS
    'The privacy policy version in force: latest effective_at <= now() (migration 0010).';
COMMENT ON FUNCTION terms_version_in_force() IS
    'The terms of service version in force: latest effective_at <= now() (migration 0010).';
COMMENT ON COLUMN privacy_policies.is_active IS
    'Not read by the application: a mirror set when a version is published. Use privacy_version_in_force().';
COMMENT ON COLUMN terms_of_service.is_active IS
    'Not read by the application: a mirror set when a version is published. Use terms_version_in_force().';
