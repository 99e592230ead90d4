-- Demo data for the embedded quick start: six agencies in time zones from UTC-8 to UTC+13, each
-- with installments placed around the agency's own local "today", so that the first run visibly
-- marks some overdue and leaves others alone. Run once, inside one transaction, by
-- src/db/demo-seed.ts (which skips it when any agency exists). Not a migration: production
-- databases never get it.
--
-- What a run does to each agency's installments:
--   due 10, 3 and 1 days ago, pending, active plan   -> overdue
--   due today, pending, active plan                  -> overdue only once the agency's cutoff has
--                                                       passed locally; Himalaya's cutoff (00:00)
--                                                       always has, Pacific Coast's (23:59) never
--                                                       has, the others depend on the hour
--   due tomorrow and in 14 days                      -> stay pending
--   already overdue, paid                            -> untouched
--   pending on a completed plan (5 days ago)         -> untouched: only active plans are chased

create temporary table demo_agency on commit drop as
select gen_random_uuid() as id, v.name, v.timezone, v.cutoff::time as cutoff
  from (values
    ('Brisbane Pathways Education', 'Australia/Brisbane',  '17:00'),
    ('Thames Student Services',     'Europe/London',       '17:00'),
    ('Hudson Study Abroad',         'America/New_York',    '12:00'),
    ('Himalaya Overseas Education', 'Asia/Kathmandu',      '00:00'),
    ('Harbour City Academics',      'Pacific/Auckland',    '17:00'),
    ('Pacific Coast Enrolments',    'America/Los_Angeles', '23:59')
  ) as v(name, timezone, cutoff);

insert into public.agencies (id, name, timezone, overdue_cutoff_time)
select id, name, timezone, cutoff from demo_agency;

create temporary table demo_plan on commit drop as
select gen_random_uuid() as id, a.id as agency_id, a.timezone, p.kind, p.status
  from demo_agency a
 cross join (values ('current', 'active'), ('finished', 'completed')) as p(kind, status);

insert into public.payment_plans (id, agency_id, status)
select id, agency_id, status from demo_plan;

-- Due dates are the agency's local date plus an offset: the rule judges each installment in its
-- agency's zone, so "today" has to be that zone's today, not the server's.
insert into public.installments (payment_plan_id, agency_id, amount, student_due_date, college_due_date, status)
select p.id,
       p.agency_id,
       i.amount,
       (now() at time zone p.timezone)::date + i.days_from_today,
       (now() at time zone p.timezone)::date + i.days_from_today + 14,
       i.status
  from demo_plan p
  join (values
    ('current',  -30, 'overdue', 1200.00),
    ('current',  -10, 'pending',  850.00),
    ('current',   -7, 'paid',     850.00),
    ('current',   -3, 'pending',  425.50),
    ('current',   -1, 'pending',  610.00),
    ('current',    0, 'pending',  990.00),
    ('current',    1, 'pending',  750.00),
    ('current',   14, 'pending',  750.00),
    ('finished', -35, 'paid',    2000.00),
    ('finished',  -5, 'pending',  300.00)
  ) as i(kind, days_from_today, status, amount) on i.kind = p.kind;
