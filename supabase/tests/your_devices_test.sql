-- The "Your devices" functions as PostgREST calls them: `set role authenticated` and the
-- JWT's claims in request.jwt.claims. Any failed assertion aborts (psql ON_ERROR_STOP).
-- The rows are GoTrue's to write (the tables have RLS on).
reset role;
set role supabase_auth_admin;
insert into auth.users values
  ('00000000-0000-0000-0000-00000000000a'), ('00000000-0000-0000-0000-00000000000b');
insert into auth.sessions (id, user_id, created_at, updated_at, refreshed_at, aal, user_agent, ip) values
  ('10000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000000a', now() - interval '2 days', now() - interval '1 day', now() - interval '1 hour', 'aal1', 'Tessera/0.1.0 (linux)', '192.0.2.1'),
  ('10000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-00000000000a', now() - interval '1 day', now(), null, 'aal2', 'authctl/0.1.0 (linux)', '2001:db8::1'),
  ('20000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000000b', now(), now(), null, 'aal1', null, null);
insert into auth.refresh_tokens (token, user_id, revoked, session_id) values
  ('aaaaaaaaaaaa', '00000000-0000-0000-0000-00000000000a', false, '10000000-0000-0000-0000-000000000002');
reset role;
do $$
begin
  assert (select relrowsecurity from pg_class where oid = 'auth.sessions'::regclass),
    'auth.sessions has row-level security on, as GoTrue sets it';
  assert (select pg_get_userbyid(proowner) from pg_proc where proname = 'tessera_list_sessions')
    = 'project_postgres', 'the functions belong to the role that ran the migration';
end $$;

-- User a, on session 1.
set role authenticated;
select set_config('request.jwt.claims',
  '{"sub":"00000000-0000-0000-0000-00000000000a","role":"authenticated","session_id":"10000000-0000-0000-0000-000000000001"}', false);
do $$
declare
  n integer;
  current_id uuid;
begin
  select count(*) into n from public.tessera_list_sessions();
  assert n = 2, format('a sees her 2 sessions, not %s', n);
  select id into current_id from public.tessera_list_sessions() where is_current;
  assert current_id = '10000000-0000-0000-0000-000000000001', 'this device is marked';
  assert (select ip from public.tessera_list_sessions() where id = '10000000-0000-0000-0000-000000000002') = '2001:db8::1';
  assert not public.tessera_revoke_session('20000000-0000-0000-0000-000000000001'), 'not b''s session';
  assert public.tessera_revoke_session('10000000-0000-0000-0000-000000000002'), 'her other device';
  assert not public.tessera_revoke_session('10000000-0000-0000-0000-000000000002'), 'only once';
  select count(*) into n from public.tessera_list_sessions();
  assert n = 1, 'one left';
end $$;
-- The auth schema itself stays closed to the user.
do $$
begin
  perform count(*) from auth.sessions;
  raise exception 'authenticated read auth.sessions directly';
exception when insufficient_privilege then null;
end $$;
reset role;
do $$
begin
  assert (select count(*) from auth.sessions where user_id = '00000000-0000-0000-0000-00000000000b') = 1, 'b''s session stays';
  assert (select count(*) from auth.refresh_tokens) = 0, 'refresh tokens went with the session';
end $$;

-- The anon key cannot call them.
set role anon;
do $$
begin
  perform public.tessera_list_sessions();
  raise exception 'anon listed sessions';
exception when insufficient_privilege then null;
end $$;
reset role;
select 'your_devices_test: ok' as result;
