-- Every statement the postgresql:// store runs, by name (loaded by _sql.py).
-- `{cols}` expands to the message columns in the order of _logic.COLS.
-- %(now)s is the caller's explicit clock, or NULL for the server's clock.
-- State tests are literals so the planner uses the partial indexes.

-- name: CLOCK
-- The moment and one operation number for a multi-statement transaction.
SELECT coalesce(%(now)s::float8, extract(epoch FROM now())::float8), nextval('leaseq_seq');

-- name: INSERT
-- A put of a new live message: one statement, nothing when the key is taken.
WITH c AS (SELECT coalesce(%(now)s::float8, extract(epoch FROM now())::float8) AS t),
a AS (SELECT c.t, coalesce(%(at)s::float8, c.t + %(delay)s::float8) AS avail FROM c)
INSERT INTO leaseq_messages (id, queue, key, value, priority, state, attempts, max_attempts,
    created_at, available_at, band, ord_t, ord_s)
SELECT %(id)s, %(queue)s, %(key)s, %(value)s, %(priority)s,
    CASE WHEN a.avail <= a.t THEN 0 ELSE 1 END, 0, %(max_attempts)s, a.t, a.avail, 1,
    greatest(a.avail, a.t), coalesce(%(seq)s::bigint, nextval('leaseq_seq'))
FROM a
ON CONFLICT DO NOTHING
RETURNING created_at, available_at, pg_notify(%(chan)s, %(payload)s) IS NULL;

-- name: LIVE_BY_KEY
SELECT {cols} FROM leaseq_messages WHERE queue = %(queue)s AND key = %(key)s;

-- name: LIVE_BY_KEY_LOCK
SELECT {cols} FROM leaseq_messages WHERE queue = %(queue)s AND key = %(key)s FOR UPDATE;

-- name: BY_ID
SELECT {cols} FROM leaseq_messages WHERE id = %(id)s AND queue = %(queue)s;

-- name: BY_ID_LOCK
SELECT {cols} FROM leaseq_messages WHERE id = %(id)s AND queue = %(queue)s FOR UPDATE;

-- name: DEAD_BY_ID
SELECT {cols} FROM leaseq_dead WHERE id = %(id)s AND queue = %(queue)s;

-- name: DEAD_BY_ID_LOCK
SELECT {cols} FROM leaseq_dead WHERE id = %(id)s AND queue = %(queue)s FOR UPDATE;

-- name: SAVE
-- Write back every column a transition may change (cold paths: release, reap...).
UPDATE leaseq_messages SET value = %(value)s, state = %(state)s, attempts = %(attempts)s,
    available_at = %(available_at)s, band = %(band)s, ord_t = %(ord_t)s, ord_s = %(ord_s)s,
    token = %(token)s, leased_by = %(leased_by)s, leased_at = %(leased_at)s,
    lease_expires_at = %(lease_expires_at)s, last_error = %(last_error)s,
    follow = %(follow)s, history = %(history)s::jsonb
WHERE id = %(id)s;

-- name: SET_VALUE
UPDATE leaseq_messages SET value = %(value)s, follow = %(follow)s, history = %(history)s::jsonb
WHERE id = %(id)s;

-- name: DELETE_ROW
DELETE FROM leaseq_messages WHERE id = %(id)s;

-- name: BURY
-- A dead letter joins its table (the hot row was deleted in the same transaction).
INSERT INTO leaseq_dead (id, queue, key, value, priority, state, attempts, max_attempts,
    created_at, available_at, band, ord_t, ord_s, token, leased_by, leased_at,
    lease_expires_at, last_error, follow, history)
VALUES (%(id)s, %(queue)s, %(key)s, %(value)s, %(priority)s, 3, %(attempts)s,
    %(max_attempts)s, %(created_at)s, %(available_at)s, 1, %(ord_t)s, %(ord_s)s, NULL, NULL,
    NULL, NULL, %(last_error)s, false, %(history)s::jsonb);

-- name: UNBURY
-- A requeued dead letter becomes live again (nothing when its key is taken).
INSERT INTO leaseq_messages (id, queue, key, value, priority, state, attempts, max_attempts,
    created_at, available_at, band, ord_t, ord_s, last_error, history)
VALUES (%(id)s, %(queue)s, %(key)s, %(value)s, %(priority)s, %(state)s, %(attempts)s,
    %(max_attempts)s, %(created_at)s, %(available_at)s, 1, %(ord_t)s, %(ord_s)s,
    %(last_error)s, %(history)s::jsonb)
ON CONFLICT DO NOTHING;

-- name: DELETE_DEAD
DELETE FROM leaseq_dead WHERE id = %(id)s;

-- name: PROMOTE
-- Delayed messages that fell due join the delivery-order index (their place
-- there was fixed when they were put or released).
UPDATE leaseq_messages SET state = 0
WHERE queue = %(queue)s AND state = 1 AND available_at <= %(now)s RETURNING key;

-- name: EXPIRED
-- Lazy, bounded reclaim: at most 256 expired leases per claim.
SELECT {cols} FROM leaseq_messages
WHERE queue = %(queue)s AND state = 2 AND lease_expires_at <= %(now)s
ORDER BY lease_expires_at LIMIT 256 FOR UPDATE SKIP LOCKED;

-- name: PROBE
-- Is there work for the full claim (due delayed messages or expired leases)?
SELECT EXISTS (SELECT 1 FROM leaseq_messages WHERE queue = %(queue)s AND state = 1
        AND available_at <= coalesce(%(now)s::float8, extract(epoch FROM now())::float8))
    OR EXISTS (SELECT 1 FROM leaseq_messages WHERE queue = %(queue)s AND state = 2
        AND lease_expires_at <= coalesce(%(now)s::float8, extract(epoch FROM now())::float8));

-- name: CLAIM
-- Lease the first `limit` ready messages in delivery order: one statement.
-- Rows other claimers hold are skipped (FOR UPDATE SKIP LOCKED). A lease's row
-- carries its future place in the head (-expiry, -operation number; later rows
-- of one claim get later numbers), so an expired lease needs one column changed.
-- Only a redelivery is news (DESIGN §11). With %(fast)s, nothing is claimed
-- when delayed messages fell due or leases expired: the caller then runs the
-- full claim, which writes those first so that the order stays exact.
WITH c AS (SELECT coalesce(%(now)s::float8, extract(epoch FROM now())::float8) AS t,
        coalesce(%(seq)s::bigint, nextval('leaseq_seq')) AS s),
pick AS (
    SELECT id, row_number() OVER (ORDER BY priority DESC, band, ord_t, ord_s) AS rn
    FROM (SELECT id, priority, band, ord_t, ord_s FROM leaseq_messages
          WHERE queue = %(queue)s AND state = 0
          ORDER BY priority DESC, band, ord_t, ord_s
          LIMIT %(limit)s FOR UPDATE SKIP LOCKED) r
    WHERE NOT %(fast)s::boolean OR NOT EXISTS (
        SELECT 1 FROM leaseq_messages, c WHERE queue = %(queue)s
        AND ((state = 1 AND available_at <= c.t) OR (state = 2 AND lease_expires_at <= c.t)))),
claimed AS (
UPDATE leaseq_messages m SET state = 2, attempts = m.attempts + 1,
    token = (%(tokens)s::text[])[pick.rn], leased_by = %(owner)s::text, leased_at = c.t,
    lease_expires_at = c.t + %(timeout)s::float8, band = 0,
    ord_t = -(c.t + %(timeout)s::float8), ord_s = -(c.s + pick.rn),
    history = CASE WHEN m.attempts = 0 THEN m.history ELSE
        (CASE WHEN jsonb_array_length(m.history) >= {history_limit}
              THEN m.history - 0 ELSE m.history END)
        || jsonb_build_array(jsonb_build_array(c.t, 'claimed', %(owner)s::text)) END
FROM pick, c
WHERE m.id = pick.id
RETURNING {mcols}, pick.rn),
-- Always one row at least: when nothing was claimed, a row of NULLs whose last
-- column says whether the full claim has work (due delayed messages, expired
-- leases), so an empty claim costs one round trip.
upd AS (SELECT * FROM claimed)
SELECT u.*, CASE WHEN u.id IS NULL THEN EXISTS (
        SELECT 1 FROM leaseq_messages, c WHERE queue = %(queue)s
        AND ((state = 1 AND available_at <= c.t) OR (state = 2 AND lease_expires_at <= c.t)))
    END AS need_full
FROM (SELECT 1) one LEFT JOIN upd u ON true;

-- name: CLAIM_ROW
-- Lease one row already locked by the caller's transaction (take by key).
UPDATE leaseq_messages m SET state = 2, attempts = m.attempts + 1, token = %(token)s,
    leased_by = %(owner)s::text, leased_at = %(now)s::float8, lease_expires_at = %(now)s::float8 + %(timeout)s::float8,
    band = 0, ord_t = -(%(now)s::float8 + %(timeout)s::float8), ord_s = -%(seq)s::bigint,
    history = CASE WHEN m.attempts = 0 THEN m.history ELSE
        (CASE WHEN jsonb_array_length(m.history) >= {history_limit}
              THEN m.history - 0 ELSE m.history END)
        || jsonb_build_array(jsonb_build_array(%(now)s::float8, 'claimed', %(owner)s::text)) END
WHERE m.id = %(id)s
RETURNING {mcols};

-- name: ACK
-- Fencing in the WHERE clause: only the token's holder, before expiry, deletes.
-- Nothing when a buffered follow-up waits (the caller runs the full ack).
DELETE FROM leaseq_messages
WHERE id = %(id)s AND queue = %(queue)s AND token = %(token)s AND state = 2 AND NOT follow
    AND lease_expires_at > coalesce(%(now)s::float8, extract(epoch FROM now())::float8)
RETURNING key;

-- name: ACK_OUTCOME
-- Ack and record the key's outcome in one statement (both or neither).
WITH d AS (
    DELETE FROM leaseq_messages
    WHERE id = %(id)s AND queue = %(queue)s AND token = %(token)s AND state = 2 AND NOT follow
        AND lease_expires_at > coalesce(%(now)s::float8, extract(epoch FROM now())::float8)
    RETURNING key),
o AS (
    INSERT INTO leaseq_outcomes (queue, key, status, value, error, recorded_at, expires_at)
    SELECT %(queue)s, %(okey)s, %(status)s, %(ovalue)s, %(error)s, %(recorded_at)s,
        %(expires_at)s FROM d
    ON CONFLICT (queue, key) DO UPDATE SET status = excluded.status, value = excluded.value,
        error = excluded.error, recorded_at = excluded.recorded_at,
        expires_at = excluded.expires_at)
SELECT key, pg_notify(%(chan)s, %(payload)s) IS NULL FROM d;

-- name: OUTCOME_UPSERT
INSERT INTO leaseq_outcomes (queue, key, status, value, error, recorded_at, expires_at)
VALUES (%(queue)s, %(okey)s, %(status)s, %(ovalue)s, %(error)s, %(recorded_at)s,
    %(expires_at)s)
ON CONFLICT (queue, key) DO UPDATE SET status = excluded.status, value = excluded.value,
    error = excluded.error, recorded_at = excluded.recorded_at, expires_at = excluded.expires_at;

-- name: OUTCOME_GET
SELECT key, status, value, error, recorded_at, expires_at FROM leaseq_outcomes
WHERE queue = %(queue)s AND key = %(key)s
    AND (expires_at IS NULL
         OR expires_at > coalesce(%(now)s::float8, extract(epoch FROM now())::float8));

-- name: OUTCOME_PRUNE
DELETE FROM leaseq_outcomes WHERE queue = %(queue)s AND expires_at <= %(before)s;

-- name: RENEW
UPDATE leaseq_messages SET lease_expires_at = %(exp)s, ord_t = -%(exp)s, ord_s = -%(seq)s
WHERE id = %(id)s;

-- name: NOTIFY
SELECT pg_notify(%(chan)s, %(payload)s);

-- name: FOLLOW_UPSERT
INSERT INTO leaseq_followups (queue, key, id, value, priority, delay, at, max_attempts)
VALUES (%(queue)s, %(key)s, %(id)s, %(value)s, %(priority)s, %(delay)s, %(at)s,
    %(max_attempts)s)
ON CONFLICT (queue, key) DO UPDATE SET value = excluded.value, priority = excluded.priority,
    delay = excluded.delay, at = excluded.at, max_attempts = excluded.max_attempts
RETURNING id;

-- name: FOLLOW_TAKE
DELETE FROM leaseq_followups WHERE queue = %(queue)s AND key = %(key)s
RETURNING id, value, priority, delay, at, max_attempts;

-- name: FOLLOW_VALUE
SELECT value FROM leaseq_followups WHERE queue = %(queue)s AND key = %(key)s;

-- name: FOLLOW_DROP
DELETE FROM leaseq_followups WHERE queue = %(queue)s AND key = %(key)s;

-- name: LIVE_ROWS
SELECT {cols} FROM leaseq_messages WHERE queue = %(queue)s ORDER BY ord_s;

-- name: DEAD_ROWS
SELECT {cols} FROM leaseq_dead WHERE queue = %(queue)s ORDER BY ord_t, ord_s
LIMIT %(limit)s;

-- name: EXPIRED_EXHAUSTED
SELECT {cols} FROM leaseq_messages WHERE queue = %(queue)s AND state = 2
    AND lease_expires_at <= %(now)s AND max_attempts IS NOT NULL
    AND attempts >= max_attempts;

-- name: COUNTS
SELECT
    (SELECT count(*) FROM leaseq_messages WHERE queue = %(queue)s AND state = 0),
    (SELECT min(available_at) FROM leaseq_messages WHERE queue = %(queue)s AND state = 0),
    (SELECT count(*) FROM leaseq_messages WHERE queue = %(queue)s AND state = 1
        AND available_at <= %(now)s),
    (SELECT min(available_at) FROM leaseq_messages WHERE queue = %(queue)s AND state = 1
        AND available_at <= %(now)s),
    (SELECT count(*) FROM leaseq_messages WHERE queue = %(queue)s AND state = 1
        AND available_at > %(now)s),
    (SELECT count(*) FROM leaseq_dead WHERE queue = %(queue)s);

-- name: LEASED_ROWS
SELECT attempts, max_attempts, lease_expires_at, leased_at, leased_by
FROM leaseq_messages WHERE queue = %(queue)s AND state = 2;

-- name: COUNT_LIVE
SELECT
    (SELECT count(*) FROM leaseq_messages WHERE queue = %(queue)s)
  - (SELECT count(*) FROM leaseq_messages WHERE queue = %(queue)s AND state = 2
        AND lease_expires_at <= coalesce(%(now)s::float8, extract(epoch FROM now())::float8)
        AND max_attempts IS NOT NULL AND attempts >= max_attempts);

-- name: COUNT_READY
WITH c AS (SELECT coalesce(%(now)s::float8, extract(epoch FROM now())::float8) AS t)
SELECT
    (SELECT count(*) FROM leaseq_messages WHERE queue = %(queue)s AND state = 0)
  + (SELECT count(*) FROM leaseq_messages, c WHERE queue = %(queue)s AND state = 1
        AND available_at <= c.t)
  + (SELECT count(*) FROM leaseq_messages, c WHERE queue = %(queue)s AND state = 2
        AND lease_expires_at <= c.t AND (max_attempts IS NULL OR attempts < max_attempts));

-- name: NEXT_DUE
-- Earliest delayed availability and lease expiry, past ones included: a due
-- moment that already passed tells a waiter to recheck now.
SELECT least(
    (SELECT min(available_at) FROM leaseq_messages WHERE queue = %(queue)s AND state = 1),
    (SELECT min(lease_expires_at) FROM leaseq_messages WHERE queue = %(queue)s AND state = 2));

-- name: NEXT_DUE_KEY
SELECT CASE state WHEN 1 THEN available_at WHEN 2 THEN lease_expires_at END
FROM leaseq_messages WHERE queue = %(queue)s AND key = %(key)s;

-- name: QUEUES
SELECT DISTINCT queue FROM leaseq_messages UNION SELECT DISTINCT queue FROM leaseq_dead;

-- name: PURGE
WITH a AS (DELETE FROM leaseq_messages WHERE queue = %(queue)s RETURNING 1),
b AS (DELETE FROM leaseq_dead WHERE queue = %(queue)s RETURNING 1),
f AS (DELETE FROM leaseq_followups WHERE queue = %(queue)s RETURNING 1)
SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM b), (SELECT count(*) FROM f);

-- name: PRUNE_DEAD
DELETE FROM leaseq_dead WHERE queue = %(queue)s AND ord_t <= %(before)s;

-- name: KEY_IS_LIVE
SELECT 1 FROM leaseq_messages WHERE queue = %(queue)s AND key = %(key)s;

-- name: ROOM_LOCK
-- Bounded puts of one queue take turns (acks only ever make room).
SELECT pg_advisory_xact_lock(hashtext(%(lock)s));

-- name: FOLLOW_GET
SELECT id, value, priority, delay, at, max_attempts FROM leaseq_followups
WHERE queue = %(queue)s AND key = %(key)s;

-- name: CLAIM_KEY
-- Take by key in one statement when the key's message is ready and due; else a
-- row of NULLs whose last column says whether the full take has work (the
-- key's delayed message fell due or its lease expired).
WITH c AS (SELECT coalesce(%(now)s::float8, extract(epoch FROM now())::float8) AS t,
        nextval('leaseq_seq') AS s),
claimed AS (
UPDATE leaseq_messages m SET state = 2, attempts = m.attempts + 1, token = %(token)s,
    leased_by = %(owner)s::text, leased_at = c.t, lease_expires_at = c.t + %(timeout)s::float8,
    band = 0, ord_t = -(c.t + %(timeout)s::float8), ord_s = -c.s,
    history = CASE WHEN m.attempts = 0 THEN m.history ELSE
        (CASE WHEN jsonb_array_length(m.history) >= {history_limit}
              THEN m.history - 0 ELSE m.history END)
        || jsonb_build_array(jsonb_build_array(c.t, 'claimed', %(owner)s::text)) END
FROM c
WHERE m.queue = %(queue)s AND m.key = %(key)s AND m.state = 0
RETURNING {mcols})
SELECT u.*, CASE WHEN u.id IS NULL THEN EXISTS (
        SELECT 1 FROM leaseq_messages, c WHERE queue = %(queue)s AND key = %(key)s
        AND ((state = 1 AND available_at <= c.t) OR (state = 2 AND lease_expires_at <= c.t)))
    END AS need_full
FROM (SELECT 1) one LEFT JOIN claimed u ON true;
