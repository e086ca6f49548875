"""Every statement the ``sqlite://`` store runs (the schema is ``sqlite_schema.sql``).

Stored states: 0 ready and due, 1 delayed, 2 leased, 3 dead (see the schema).
State tests are literals, never parameters, so SQLite can use the partial
indexes. Rows are read as ``COLS`` and indexed with the ``R_*`` constants.
"""

from __future__ import annotations

from leaseq._core.model import HISTORY_LIMIT

COLS = (
    "rowid, id, key, value, priority, state, attempts, max_attempts, created_at, "
    "available_at, band, ord_t, ord_s, token, leased_by, leased_at, lease_expires_at, "
    "last_error, follow, history"
)
(
    R_ROWID,
    R_ID,
    R_KEY,
    R_VALUE,
    R_PRIO,
    R_STATE,
    R_ATT,
    R_MAXA,
    R_CREATED,
    R_AVAIL,
    R_BAND,
    R_ORDT,
    R_ORDS,
    R_TOKEN,
    R_BY,
    R_LEASED_AT,
    R_EXP,
    R_ERR,
    R_FOLLOW,
    R_HIST,
) = range(20)

ST_READY, ST_DELAYED, ST_LEASED, ST_DEAD = 0, 1, 2, 3

INSERT = (
    "INSERT INTO leaseq_messages (id, queue, key, live_key, value, priority, state, attempts, "
    "max_attempts, created_at, available_at, band, ord_t, ord_s, follow, history) "
    "VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6, 0, ?7, ?8, ?9, 1, ?10, ?11, 0, ?12) "
    "ON CONFLICT DO NOTHING"
)

LIVE_BY_KEY = f"SELECT {COLS} FROM leaseq_messages WHERE queue = ? AND live_key = ?"
BY_ID = f"SELECT {COLS} FROM leaseq_messages WHERE id = ? AND queue = ?"

#: Write back every column a transition may change (cold paths: release, reap, ...).
SAVE = (
    "UPDATE leaseq_messages SET value = ?1, state = ?2, attempts = ?3, available_at = ?4, "
    "band = ?5, ord_t = ?6, ord_s = ?7, token = ?8, leased_by = ?9, leased_at = ?10, "
    "lease_expires_at = ?11, last_error = ?12, follow = ?13, history = ?14, "
    "live_key = CASE WHEN ?2 = 3 THEN NULL ELSE key END WHERE rowid = ?15"
)
SET_VALUE = "UPDATE leaseq_messages SET value = ?, follow = ?, history = ? WHERE rowid = ?"
DELETE_ROW = "DELETE FROM leaseq_messages WHERE rowid = ?"

# -- claims ----------------------------------------------------------------------
#: Delayed messages that fell due join the delivery-order index (their place
#: there was fixed when they were put or released).
PROMOTE = (
    "UPDATE leaseq_messages SET state = 0 "
    "WHERE queue = ? AND state = 1 AND available_at <= ? RETURNING key"
)
EXPIRED = (
    f"SELECT {COLS} FROM leaseq_messages "
    "WHERE queue = ? AND state = 2 AND lease_expires_at <= ? ORDER BY lease_expires_at"
)
#: Is anything claimable? (read only: lets an idle claimer skip the write lock)
PROBE = (
    "SELECT EXISTS (SELECT 1 FROM leaseq_messages WHERE queue = ?1 AND state = 0) "
    "OR EXISTS (SELECT 1 FROM leaseq_messages "
    "WHERE queue = ?1 AND state = 1 AND available_at <= ?2) "
    "OR EXISTS (SELECT 1 FROM leaseq_messages "
    "WHERE queue = ?1 AND state = 2 AND lease_expires_at <= ?2)"
)
_ORDER = "ORDER BY priority DESC, band, ord_t, ord_s"
NEXT_ROWIDS = f"SELECT rowid FROM leaseq_messages WHERE queue = ? AND state = 0 {_ORDER} LIMIT ?"

# A lease's row already carries its future place in the head (expiry time,
# claim's operation number): an expired lease then needs one column changed.
# Only a redelivery is news (DESIGN §11); ``attempts`` is the value before this claim.
_HISTORY_APPEND = (
    "CASE WHEN attempts = 0 THEN history ELSE "
    f"json_insert(CASE WHEN json_array_length(history) >= {HISTORY_LIMIT} "
    "THEN json_remove(history, '$[0]') ELSE history END, '$[#]', json_array(?3, 'claimed', ?2)) "
    "END"
)
_CLAIM_SET = (
    "UPDATE leaseq_messages SET state = 2, attempts = attempts + 1, token = ?1, "
    "leased_by = ?2, leased_at = ?3, lease_expires_at = ?4, band = 0, ord_t = -?4, "
    f"ord_s = -?5, history = {_HISTORY_APPEND} "
)
#: Lease the first message in delivery order: one statement.
CLAIM_NEXT = (
    _CLAIM_SET + "WHERE rowid = (SELECT rowid FROM leaseq_messages "
    f"WHERE queue = ?6 AND state = 0 {_ORDER} LIMIT 1) RETURNING {COLS}"
)
CLAIM_ROW = _CLAIM_SET + f"WHERE rowid = ?6 RETURNING {COLS}"
#: The fast path, one autocommit statement: lease the first message unless a
#: delayed message fell due or a lease expired (then the caller runs the full
#: transaction, which writes those first so that the order stays exact).
_NOTHING_DUE = (
    "NOT EXISTS (SELECT 1 FROM leaseq_messages "
    "WHERE queue = ?6 AND state = 1 AND available_at <= ?3) "
    "AND NOT EXISTS (SELECT 1 FROM leaseq_messages "
    "WHERE queue = ?6 AND state = 2 AND lease_expires_at <= ?3) "
)
CLAIM_FAST = (
    _CLAIM_SET + "WHERE rowid = (SELECT rowid FROM leaseq_messages "
    f"WHERE queue = ?6 AND state = 0 {_ORDER} LIMIT 1) "
    f"AND {_NOTHING_DUE}RETURNING {COLS}"
)
#: ``get_many``'s fast path, one autocommit statement: lease the first ``?7``
#: messages under the same guards as CLAIM_FAST. Row ``i`` (1-based, delivery
#: order) takes token ``i`` of the JSON array ``?1`` and operation number
#: ``?5 + i``; the innermost query applies the LIMIT first, so the window runs
#: over at most ``?7`` rows whatever the backlog. RETURNING order is not
#: delivery order: the caller sorts by ``ord_s``.
_CLAIM_MANY_SET = _CLAIM_SET.replace(
    "token = ?1", "token = json_extract(?1, '$[' || (pick.i - 1) || ']')"
).replace("ord_s = -?5", "ord_s = -(?5 + pick.i)")
CLAIM_MANY_FAST = (
    _CLAIM_MANY_SET + f"FROM (SELECT r, row_number() OVER ({_ORDER}) "
    "AS i FROM (SELECT rowid AS r, priority, band, ord_t, ord_s FROM leaseq_messages "
    f"WHERE queue = ?6 AND state = 0 {_ORDER} LIMIT ?7)) AS pick "
    f"WHERE leaseq_messages.rowid = pick.r AND {_NOTHING_DUE}RETURNING {COLS}"
)

# -- lease operations --------------------------------------------------------------
#: Ack is one statement when the token holds: the fencing is in the WHERE clause.
ACK = (
    "DELETE FROM leaseq_messages WHERE id = ? AND queue = ? AND token = ? AND state = 2 "
    "AND lease_expires_at > ? RETURNING key, follow"
)
#: The fast path, one autocommit statement, when there is no buffered follow-up.
ACK_FAST = (
    "DELETE FROM leaseq_messages WHERE id = ? AND queue = ? AND token = ? AND state = 2 "
    "AND lease_expires_at > ? AND follow = 0 RETURNING key"
)
RENEW = (
    "UPDATE leaseq_messages SET lease_expires_at = ?1, ord_t = -?1, ord_s = -?2 WHERE rowid = ?3"
)

# -- buffered follow-ups -----------------------------------------------------------
FOLLOW_UPSERT = (
    "INSERT INTO leaseq_followups (queue, key, id, value, priority, delay, at, max_attempts) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (queue, key) DO UPDATE SET "
    "value = excluded.value, priority = excluded.priority, delay = excluded.delay, "
    "at = excluded.at, max_attempts = excluded.max_attempts RETURNING id"
)
FOLLOW_TAKE = (
    "DELETE FROM leaseq_followups WHERE queue = ? AND key = ? "
    "RETURNING id, value, priority, delay, at, max_attempts"
)
FOLLOW_VALUE = "SELECT value FROM leaseq_followups WHERE queue = ? AND key = ?"
#: A follow-up as FOLLOW_TAKE returns it, without taking it (logical reads).
FOLLOW_ROW = (
    "SELECT id, value, priority, delay, at, max_attempts FROM leaseq_followups "
    "WHERE queue = ? AND key = ?"
)
FOLLOW_KEY_BY_ID = "SELECT key FROM leaseq_followups WHERE id = ? AND queue = ?"
FOLLOW_DROP = "DELETE FROM leaseq_followups WHERE queue = ? AND key = ?"

# -- reads -------------------------------------------------------------------------
LIVE_ROWS = (
    f"SELECT {COLS} FROM leaseq_messages WHERE queue = ? AND live_key IS NOT NULL ORDER BY rowid"
)
DEAD_ROWS = (
    f"SELECT {COLS} FROM leaseq_messages WHERE queue = ? AND state = 3 ORDER BY ord_t, ord_s"
)
DEAD_ROWS_LIMIT = DEAD_ROWS + " LIMIT ?"
EXPIRED_EXHAUSTED = (
    f"SELECT {COLS} FROM leaseq_messages WHERE queue = ? AND state = 2 "
    "AND lease_expires_at <= ? AND max_attempts IS NOT NULL AND attempts >= max_attempts"
)
COUNTS = (
    "SELECT "
    "(SELECT count(*) FROM leaseq_messages WHERE queue = ?1 AND state = 0), "
    "(SELECT min(available_at) FROM leaseq_messages WHERE queue = ?1 AND state = 0), "
    "(SELECT count(*) FROM leaseq_messages WHERE queue = ?1 AND state = 1 "
    "AND available_at <= ?2), "
    "(SELECT min(available_at) FROM leaseq_messages WHERE queue = ?1 AND state = 1), "
    "(SELECT count(*) FROM leaseq_messages WHERE queue = ?1 AND state = 1 "
    "AND available_at > ?2), "
    "(SELECT count(*) FROM leaseq_messages WHERE queue = ?1 AND state = 3)"
)
#: Leases with, for one that holds a buffered follow-up, when that follow-up
#: would be due if the lease died at its expiry (else NULL).
LEASED_ROWS = (
    "SELECT m.attempts, m.max_attempts, m.lease_expires_at, m.leased_at, m.leased_by, "
    "coalesce(f.at, m.lease_expires_at + f.delay) FROM leaseq_messages m "
    "LEFT JOIN leaseq_followups f ON m.follow = 1 AND f.queue = m.queue AND f.key = m.key "
    "WHERE m.queue = ? AND m.state = 2"
)
COUNT_LIVE = "SELECT count(*) FROM leaseq_messages WHERE queue = ? AND live_key IS NOT NULL"
#: Expired leases that died and left no follow-up in their place (one that
#: left a follow-up is replaced by it: the live count stays).
COUNT_EXPIRED_EXHAUSTED = (
    "SELECT count(*) FROM leaseq_messages WHERE queue = ? AND state = 2 "
    "AND lease_expires_at <= ? AND max_attempts IS NOT NULL AND attempts >= max_attempts "
    "AND follow = 0"
)
COUNT_READY = (
    "SELECT "
    "(SELECT count(*) FROM leaseq_messages WHERE queue = ?1 AND state = 0) + "
    "(SELECT count(*) FROM leaseq_messages WHERE queue = ?1 AND state = 1 "
    "AND available_at <= ?2) + "
    "(SELECT count(*) FROM leaseq_messages WHERE queue = ?1 AND state = 2 "
    "AND lease_expires_at <= ?2 AND (max_attempts IS NULL OR attempts < max_attempts)) + "
    # an expired lease that died leaves its follow-up, put at the expiry time
    "(SELECT count(*) FROM leaseq_messages m JOIN leaseq_followups f "
    "ON f.queue = m.queue AND f.key = m.key WHERE m.queue = ?1 AND m.state = 2 "
    "AND m.lease_expires_at <= ?2 AND m.follow = 1 AND m.max_attempts IS NOT NULL "
    "AND m.attempts >= m.max_attempts "
    "AND coalesce(f.at, m.lease_expires_at + f.delay) <= ?2)"
)
#: Earliest delayed availability and lease expiry, past ones included: a due
#: moment that already passed tells a waiter to recheck now (its claim then
#: writes the promotion or expiry).
NEXT_DUE = (
    "SELECT (SELECT min(available_at) FROM leaseq_messages WHERE queue = ?1 AND state = 1), "
    "(SELECT min(lease_expires_at) FROM leaseq_messages WHERE queue = ?1 AND state = 2)"
)
QUEUES = "SELECT DISTINCT queue FROM leaseq_messages"

# -- maintenance -------------------------------------------------------------------
PURGE = "DELETE FROM leaseq_messages WHERE queue = ?"
PURGE_FOLLOW = "DELETE FROM leaseq_followups WHERE queue = ?"
PRUNE_DEAD = "DELETE FROM leaseq_messages WHERE queue = ? AND state = 3 AND ord_t <= ?"
KEY_IS_LIVE = "SELECT 1 FROM leaseq_messages WHERE queue = ? AND live_key = ?"

# -- results ledger ----------------------------------------------------------------
OUTCOME_PUT = (
    "INSERT OR REPLACE INTO leaseq_outcomes "
    "(queue, key, status, value, error, recorded_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
OUTCOME_GET = (
    "SELECT status, value, error, recorded_at, expires_at FROM leaseq_outcomes "
    "WHERE queue = ? AND key = ?"
)
PRUNE_OUTCOMES = (
    "DELETE FROM leaseq_outcomes WHERE queue = ? AND expires_at IS NOT NULL AND expires_at <= ?"
)
