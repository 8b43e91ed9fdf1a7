-- The part of a Supabase project's database that the "Your devices" migration touches,
-- as GoTrue's migrations and Supabase's roles define it: enough to run the migration and
-- its test on a plain PostgreSQL (scripts/sql-test). Not shipped to projects.
--
-- As on a real project: the auth tables belong to supabase_auth_admin, GoTrue turns on
-- row-level security for them (migration 20240612123726_enable_rls_update_grants, no
-- policies: nobody but their owner and roles that bypass RLS sees a row), and migrations
-- run as `postgres`, which is not a superuser there but has BYPASSRLS and every privilege
-- on the auth tables. `project_postgres` stands for that role here (this cluster's own
-- `postgres` is a superuser, which would hide an RLS mistake).
create role anon nologin;
create role authenticated nologin;
create role supabase_auth_admin nologin;
create role project_postgres nologin bypassrls;
create role project_no_bypass nologin;
create schema auth authorization supabase_auth_admin;
set role supabase_auth_admin;
create type auth.aal_level as enum ('aal1', 'aal2', 'aal3');
create table auth.users (id uuid primary key);
create table auth.sessions (
  id uuid primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  created_at timestamptz,
  updated_at timestamptz,
  factor_id uuid,
  aal auth.aal_level,
  not_after timestamptz,
  refreshed_at timestamp without time zone,
  user_agent text,
  ip inet,
  tag text
);
create table auth.refresh_tokens (
  id bigserial primary key,
  token varchar(255),
  user_id varchar(255),
  revoked boolean,
  session_id uuid references auth.sessions (id) on delete cascade
);
-- Supabase's auth.uid() and auth.jwt(): the claims PostgREST puts in request.jwt.claims.
create function auth.uid() returns uuid language sql stable as $$
  select (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')::uuid
$$;
create function auth.jwt() returns jsonb language sql stable as $$
  select coalesce(nullif(current_setting('request.jwt.claims', true), ''), '{}')::jsonb
$$;
alter table auth.users enable row level security;
alter table auth.sessions enable row level security;
alter table auth.refresh_tokens enable row level security;
grant usage on schema auth to anon, authenticated, project_postgres, project_no_bypass;
grant execute on function auth.uid(), auth.jwt() to anon, authenticated;
grant all on all tables in schema auth to project_postgres, project_no_bypass;
reset role;
grant create on schema public to project_postgres, project_no_bypass;
-- The migration runs next, as the project's postgres role.
set role project_postgres;
