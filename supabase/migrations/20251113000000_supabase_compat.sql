-- Supabase compatibility layer.
--
-- On Supabase every object below already exists and this migration changes nothing: each
-- statement only creates what is missing. On plain PostgreSQL (CI, self-hosted, the embedded
-- PGlite quick start) it provides the three API roles and auth.uid() / auth.jwt() / auth.role()
-- reading the claims from the `request.jwt.claims` setting, exactly as PostgREST sets them.
-- Nothing else in the schema may depend on Supabase-only extensions.

do $$
declare
  r record;
begin
  for r in
    select * from (values
      ('anon', false),
      ('authenticated', false),
      ('service_role', true)
    ) as roles(name, bypass)
  loop
    if not exists (select 1 from pg_catalog.pg_roles where rolname = r.name) then
      begin
        -- service_role bypasses RLS on Supabase; mirror that so the job sees every tenant.
        execute format('create role %I nologin noinherit%s', r.name,
                       case when r.bypass then ' bypassrls' else '' end);
      exception when duplicate_object or unique_violation then
        null; -- another database of this cluster created it at the same moment
      end;
    end if;
  end loop;
end
$$;

create schema if not exists auth;

do $$
begin
  if to_regprocedure('auth.jwt()') is null then
    create function auth.jwt() returns jsonb
      language sql stable
      set search_path = pg_catalog
    as $f$
      select coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
      )::jsonb
    $f$;
  end if;

  if to_regprocedure('auth.uid()') is null then
    create function auth.uid() returns uuid
      language sql stable
      set search_path = pg_catalog
    as $f$
      select nullif(coalesce(
        current_setting('request.jwt.claim.sub', true),
        nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'
      ), '')::uuid
    $f$;
  end if;

  if to_regprocedure('auth.role()') is null then
    create function auth.role() returns text
      language sql stable
      set search_path = pg_catalog
    as $f$
      select nullif(coalesce(
        current_setting('request.jwt.claim.role', true),
        nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role'
      ), '')::text
    $f$;
  end if;
end
$$;

grant usage on schema auth to anon, authenticated, service_role;
grant execute on function auth.jwt(), auth.uid(), auth.role() to anon, authenticated, service_role;
