-- Row level security and grants.
--
-- Who is who:
--   * an agency member is a row in public.users whose id is the JWT's `sub` (auth.uid());
--     role 'agency_admin' may change the agency's settings, 'agency_user' only reads;
--   * a platform administrator carries `"app_metadata": {"platform_admin": true}` in the JWT.
--     On Supabase app_metadata can only be written with the service role, so users cannot
--     grant it to themselves;
--   * service_role (the job, the Node service) bypasses RLS;
--   * anon sees nothing.
-- Supabase grants every privilege on new public tables to anon and authenticated by default;
-- this migration revokes that and grants back only what the policies are written for.

-- Helpers read public.users as its owner so that the users policy itself does not recurse.
create or replace function public.current_agency_id() returns uuid
  language sql stable security definer
  set search_path = pg_catalog
as $$
  select u.agency_id from public.users u where u.id = auth.uid()
$$;

create or replace function public.is_agency_admin(p_agency_id uuid) returns boolean
  language sql stable security definer
  set search_path = pg_catalog
as $$
  select exists (
    select 1 from public.users u
     where u.id = auth.uid() and u.agency_id = p_agency_id and u.role = 'agency_admin'
  )
$$;

create or replace function public.is_platform_admin() returns boolean
  language sql stable
  set search_path = pg_catalog
as $$
  select coalesce((auth.jwt() -> 'app_metadata' ->> 'platform_admin')::boolean, false)
$$;

revoke all on function public.current_agency_id(), public.is_agency_admin(uuid), public.is_platform_admin() from public, anon;
grant execute on function public.current_agency_id(), public.is_agency_admin(uuid), public.is_platform_admin() to authenticated, service_role;

alter table public.agencies      enable row level security;
alter table public.payment_plans enable row level security;
alter table public.installments  enable row level security;
alter table public.users         enable row level security;
alter table public.audit_logs    enable row level security;
alter table public.jobs_log      enable row level security;

revoke all on public.agencies, public.payment_plans, public.installments, public.users,
              public.audit_logs, public.jobs_log from public, anon, authenticated;
grant all on public.agencies, public.payment_plans, public.installments, public.users,
             public.audit_logs, public.jobs_log to service_role;

-- Agencies: members read their own; its admins change the settings; platform admins read all.
grant select on public.agencies to authenticated;
grant update (name, timezone, overdue_cutoff_time, due_soon_threshold_days) on public.agencies to authenticated;

drop policy if exists agencies_select on public.agencies;
create policy agencies_select on public.agencies for select to authenticated
  using (id = public.current_agency_id() or public.is_platform_admin());

drop policy if exists agencies_update_by_admin on public.agencies;
create policy agencies_update_by_admin on public.agencies for update to authenticated
  using (public.is_agency_admin(id))
  with check (public.is_agency_admin(id));

-- Plans and installments: the agency's members, and only within their agency.
grant select, insert, update, delete on public.payment_plans, public.installments to authenticated;

drop policy if exists payment_plans_tenant on public.payment_plans;
create policy payment_plans_tenant on public.payment_plans for all to authenticated
  using (agency_id = public.current_agency_id())
  with check (agency_id = public.current_agency_id());

drop policy if exists installments_tenant on public.installments;
create policy installments_tenant on public.installments for all to authenticated
  using (agency_id = public.current_agency_id())
  with check (agency_id = public.current_agency_id());

-- Memberships: members see their agency's members.
grant select on public.users to authenticated;

drop policy if exists users_same_agency on public.users;
create policy users_same_agency on public.users for select to authenticated
  using (agency_id = public.current_agency_id());

-- Audit trail: read-only for the agency; written by the status function only.
grant select on public.audit_logs to authenticated;

drop policy if exists audit_logs_tenant_read on public.audit_logs;
create policy audit_logs_tenant_read on public.audit_logs for select to authenticated
  using (agency_id = public.current_agency_id());

-- Run log: platform admins read; service_role writes (the policies below make that explicit
-- even where service_role would not bypass RLS).
grant select on public.jobs_log to authenticated;

drop policy if exists jobs_log_platform_admin_read on public.jobs_log;
create policy jobs_log_platform_admin_read on public.jobs_log for select to authenticated
  using (public.is_platform_admin());

drop policy if exists jobs_log_service_role_all on public.jobs_log;
create policy jobs_log_service_role_all on public.jobs_log for all to service_role
  using (true) with check (true);
