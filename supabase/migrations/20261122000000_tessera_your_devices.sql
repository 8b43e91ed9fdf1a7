-- Tessera "Your devices": let a signed-in user list their own sessions and sign one out.
--
-- GoTrue has no endpoint for either, so these two functions expose `auth.sessions` through
-- PostgREST RPC, limited to the caller (`auth.uid()`):
--
--   POST /rest/v1/rpc/tessera_list_sessions    {}
--   POST /rest/v1/rpc/tessera_revoke_session   {"session_id": "<uuid>"}
--
-- with the user's access token as `Authorization: Bearer …` and the project's `apikey`.
-- Run it once per project: `supabase db push`, or paste it into the SQL editor.
--
-- Both are SECURITY DEFINER (the `auth` schema is not readable by `authenticated`), with an
-- empty search_path so that nothing a user creates can shadow what they call. They run as
-- the role that runs this migration, which must see every row of auth.sessions: GoTrue
-- turns on row-level security there. On Supabase that is `postgres` (BYPASSRLS); a role
-- that neither owns the table nor bypasses RLS would see no session and revoke none,
-- silently — so this migration refuses to run as one.

do $$
declare
  me oid := (select oid from pg_roles where rolname = current_user);
  t record;
begin
  select relowner, relrowsecurity, relforcerowsecurity into t
  from pg_class where oid = 'auth.sessions'::regclass;
  if t.relrowsecurity
     and not (select rolbypassrls or rolsuper from pg_roles where oid = me)
     and (t.relowner <> me or t.relforcerowsecurity) then
    raise exception 'Tessera "Your devices": % cannot see past the row-level security of auth.sessions', current_user
      using hint = 'run this migration as a role with BYPASSRLS (on Supabase: postgres, which `supabase db push` and the SQL editor use)';
  end if;
end $$;

create or replace function public.tessera_list_sessions()
returns table (
  id uuid,
  created_at timestamptz,
  updated_at timestamptz,
  refreshed_at timestamp,
  user_agent text,
  ip text,
  aal text,
  is_current boolean
)
language sql
stable
security definer
set search_path = ''
as $$
  select
    s.id,
    s.created_at,
    s.updated_at,
    s.refreshed_at,
    s.user_agent,
    host(s.ip),
    s.aal::text,
    s.id = nullif(auth.jwt() ->> 'session_id', '')::uuid
  from auth.sessions s
  where s.user_id = auth.uid()
  order by greatest(s.created_at, coalesce(s.refreshed_at::timestamptz, s.updated_at)) desc;
$$;

-- Deleting the row ends the session for GoTrue at once: its refresh tokens go with it
-- (on delete cascade), and every authenticated GoTrue call checks that the session exists.
-- Returns false when the id is not one of the caller's sessions.
create or replace function public.tessera_revoke_session(session_id uuid)
returns boolean
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  removed integer;
begin
  if auth.uid() is null then
    raise exception 'not signed in' using errcode = '42501';
  end if;
  delete from auth.sessions s
  where s.id = tessera_revoke_session.session_id
    and s.user_id = auth.uid();
  get diagnostics removed = row_count;
  return removed > 0;
end;
$$;

revoke all on function public.tessera_list_sessions() from public, anon;
revoke all on function public.tessera_revoke_session(uuid) from public, anon;
grant execute on function public.tessera_list_sessions() to authenticated;
grant execute on function public.tessera_revoke_session(uuid) to authenticated;
