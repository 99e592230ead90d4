-- Stand-ins for two Supabase pieces that are not packaged here, created ONLY in a test's own
-- database by test setup code (never by a migration):
--
--   net.http_post  pg_net's signature (url, body, params, headers, timeout_milliseconds) →
--                  bigint request id. Real pg_net queues the request and a background worker
--                  sends it; this one sends it at once, for real, with PL/Python's urllib, and
--                  keeps the response in net._http_response as pg_net does.
--   vault.decrypted_secrets  a view over a plain table (no encryption; it is a test).
create extension if not exists plpython3u;

create schema if not exists net;

create table if not exists net._http_response (
  id            bigint generated always as identity primary key,
  status_code   integer,
  content_type  text,
  headers       jsonb,
  content       text,
  timed_out     boolean,
  error_msg     text,
  created       timestamptz not null default now()
);

create or replace function net.http_post(
    url                   text,
    body                  jsonb   default '{}'::jsonb,
    params                jsonb   default '{}'::jsonb,
    headers               jsonb   default '{"Content-Type": "application/json"}'::jsonb,
    timeout_milliseconds  integer default 5000)
  returns bigint
  language plpython3u
as $$
import json
import socket
import urllib.error
import urllib.parse
import urllib.request

target = url
query = json.loads(params) if params else {}
if query:
    target += ('&' if '?' in target else '?') + urllib.parse.urlencode(query)
request = urllib.request.Request(target, data=(body or '{}').encode('utf-8'), method='POST')
for name, value in (json.loads(headers) if headers else {}).items():
    if value is not None:
        request.add_header(name, value)

status, content_type, response_headers, content, timed_out, error = None, None, None, None, False, None
try:
    with urllib.request.urlopen(request, timeout=timeout_milliseconds / 1000.0) as response:
        status, content = response.status, response.read().decode('utf-8', 'replace')
        content_type, response_headers = response.headers.get('content-type'), dict(response.headers)
except urllib.error.HTTPError as e:
    status, content = e.code, e.read().decode('utf-8', 'replace')
    content_type, response_headers = e.headers.get('content-type'), dict(e.headers)
except (socket.timeout, TimeoutError):
    timed_out, error = True, 'Timeout was reached'
except Exception as e:
    error = str(e)

plan = plpy.prepare(
    'insert into net._http_response (status_code, content_type, headers, content, timed_out, error_msg) '
    'values ($1, $2, $3, $4, $5, $6) returning id',
    ['integer', 'text', 'jsonb', 'text', 'boolean', 'text'])
row = plpy.execute(plan, [status, content_type, json.dumps(response_headers) if response_headers is not None else None,
                          content, timed_out, error])
return row[0]['id']
$$;

create schema if not exists vault;

create table if not exists vault.secrets (
  id                uuid primary key default gen_random_uuid(),
  name              text unique,
  secret            text not null,
  created_at        timestamptz not null default now()
);

create or replace view vault.decrypted_secrets as
  select id, name, secret as decrypted_secret, created_at from vault.secrets;
