-- bench_seed.sql fills a migrated, empty Latchkey database with a
-- production-sized data set, for reading query plans (docs/POSTGRES.md):
--
--   5,000 users;
--   1,000,000 sessions (200 per user), opened over the last 31 days with the
--     default lifetimes (7-day idle, 30-day absolute deadline), so that about
--     one in thirty is past its absolute deadline and waiting for cleanup;
--     one in ten revoked, at a time between its creation and now;
--   200,000 security events over the last 30 days.
--
-- Its shape is fixed (setseed; the uuids are random) and it needs nothing
-- beyond PostgreSQL 13 (gen_random_uuid, sha256).
-- Run it with psql after migrating, or let TestExplainHotQueries
-- (explain_test.go) run it:
--
--   psql "$URL" -v ON_ERROR_STOP=1 -f store/postgres/testdata/bench_seed.sql
--
-- It takes about half a minute on a laptop.

SELECT setseed(0.42);

INSERT INTO users (id, email, password_hash, full_name, role, is_active, is_verified, token_version,
                   created_at, updated_at)
SELECT gen_random_uuid(),
       'user' || i || '@example.com',
       '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g',
       'User ' || i,
       CASE WHEN i % 100 = 0 THEN 'admin' ELSE 'user' END,
       i % 50 <> 0,
       i % 3 <> 0,
       i % 4,
       now() - interval '400 days' + i * interval '1 hour',
       now() - interval '1 day'
FROM generate_series(1, 5000) AS i;

-- Sessions are numbered i; session i belongs to user i % 5000 (in creation
-- order), so every user has sessions of every age.
CREATE TEMPORARY TABLE seed_users AS
SELECT row_number() OVER (ORDER BY created_at) - 1 AS n, id FROM users;
CREATE UNIQUE INDEX ON seed_users (n);

INSERT INTO sessions (id, user_id, mode, generation, current_hash, next_hash, rotated_at,
                      rotated_user_agent, rotated_device_id, created_at, last_used_at, idle_deadline,
                      absolute_deadline, revoked_at, revoke_reason, rotation_key_id, device_id,
                      device_name, user_agent, ip_address)
SELECT gen_random_uuid(), u.id,
       CASE WHEN s.i % 10 < 7 THEN 'cookie' ELSE 'mobile' END,
       s.gen,
       sha256(uuid_send(gen_random_uuid())),
       sha256(uuid_send(gen_random_uuid())),
       CASE WHEN s.gen > 0 THEN s.used END,
       CASE WHEN s.gen > 0 THEN 'Mozilla/5.0 (bench)' ELSE '' END,
       CASE WHEN s.gen > 0 THEN 'device-' || (s.i % 7) ELSE '' END,
       s.created, s.used,
       least(s.used + interval '7 days', s.created + interval '30 days'),
       s.created + interval '30 days',
       CASE WHEN s.i % 10 = 3 THEN s.created + (now() - s.created) * random() END,
       CASE WHEN s.i % 10 = 3 THEN (ARRAY['logout', 'logout_all', 'password_changed', 'reuse_detected'])[1 + s.i % 4] END,
       CASE WHEN s.i % 5 = 0 THEN 'rotation-2' ELSE 'rotation-1' END,
       'device-' || (s.i % 7), 'Device ' || (s.i % 7), 'Mozilla/5.0 (bench)', '198.51.100.' || (s.i % 250)
FROM (
    SELECT i, created, created + (now() - created) * random() AS used, (random() * 500)::bigint AS gen
    FROM (SELECT i, now() - interval '31 days' * random() AS created
          FROM generate_series(0, 999999) AS i) AS t
) AS s
JOIN seed_users u ON u.n = s.i % 5000;

INSERT INTO security_events (at, user_id, session_id, kind, ip, user_agent, detail)
SELECT now() - interval '30 days' * random(), u.id, NULL,
       (ARRAY['sign_in', 'sign_in_failed', 'logout', 'grace_answer'])[1 + i % 4],
       '198.51.100.' || (i % 250), 'Mozilla/5.0 (bench)', ''
FROM generate_series(0, 199999) AS i
JOIN seed_users u ON u.n = i % 5000;

DROP TABLE seed_users;

-- Fresh statistics and a visibility map, as autovacuum would leave them.
VACUUM ANALYZE users;
VACUUM ANALYZE sessions;
VACUUM ANALYZE security_events;
