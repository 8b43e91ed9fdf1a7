-- The part of a Supabase project's database that the "Your devices" migration touches,
-- as GoTrue's migrations and Supabase's roles define it: enough to run the migration and
-- its test on a plain PostgreSQL (scripts/sql-test). Not shipped to projects.
create role anon nologin;
create role authenticated nologin;
create schema auth;
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
grant usage on schema auth to anon, authenticated;
grant execute on function auth.uid(), auth.jwt() to anon, authenticated;
