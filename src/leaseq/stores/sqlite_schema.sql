-- leaseq sqlite:// schema, version 2 (PRAGMA user_version = 2).
-- Version 2 added leaseq_outcomes and leaseq_followups_id (MIGRATIONS[1] in
-- _sqlite_db.py upgrades a version 1 file in place).
--
-- One row per message. `state` is the *stored* state:
--   0 ready and due (claimable; in the delivery-order index)
--   1 delayed (logically READY, available_at in the future; promoted to 0 by
--     claims once due, so the delivery-order index never holds rows that are
--     not due and a claim never skips over them)
--   2 leased (a lease with lease_expires_at <= now is logically READY at the
--     head, or DEAD after its last attempt; claims rewrite such rows first)
--   3 dead
-- `live_key` is the key while the message is live and NULL once dead: the
-- unique index on it keeps keys unique among live messages, and claims and
-- releases (which do not change it) never touch that index.
-- Delivery order (leaseq._core.rules) is the index order of leaseq_ready:
--   priority DESC, band (0 = head, 1 = line), ord_t, ord_s
-- Operation numbers are wall-clock nanoseconds taken inside the write
-- transaction, made strictly increasing per process (writers are serialized
-- by the database lock, so they increase across processes too).
-- head rows: ord_t = -(time they joined the head), ord_s = -(operation number)
--            (a stack: the latest join first; equal times, the later operation)
-- line rows: ord_t = availability time, ord_s = operation number (FIFO)
-- Delayed and leased rows carry the ord_* they will have once due/expired, so
-- promoting them is a one-column change. Dead rows: ord_t = death time,
-- ord_s = operation number (death order).

CREATE TABLE leaseq_messages (
    id               TEXT    NOT NULL,
    queue            TEXT    NOT NULL,
    key              TEXT    NOT NULL,
    live_key         TEXT,
    value            BLOB,              -- JSON text, or bytes as they were put
    priority         INTEGER NOT NULL,
    state            INTEGER NOT NULL,
    attempts         INTEGER NOT NULL,
    max_attempts     INTEGER,
    created_at       REAL    NOT NULL,
    available_at     REAL    NOT NULL,
    band             INTEGER NOT NULL,
    ord_t            REAL    NOT NULL,
    ord_s            INTEGER NOT NULL,
    token            TEXT,
    leased_by        TEXT,
    leased_at        REAL,
    lease_expires_at REAL,
    last_error       TEXT,
    follow           INTEGER NOT NULL DEFAULT 0,  -- 1: a buffered follow-up exists
    history          TEXT    NOT NULL             -- JSON [[at, kind, detail], ...], bounded
);

CREATE UNIQUE INDEX leaseq_id ON leaseq_messages (id);
-- At most one live message per key, enforced by the database.
CREATE UNIQUE INDEX leaseq_live_key ON leaseq_messages (queue, live_key);
CREATE INDEX leaseq_ready ON leaseq_messages (queue, priority DESC, band, ord_t, ord_s)
    WHERE state = 0;
CREATE INDEX leaseq_delayed ON leaseq_messages (queue, available_at) WHERE state = 1;
CREATE INDEX leaseq_leased ON leaseq_messages (queue, lease_expires_at) WHERE state = 2;
CREATE INDEX leaseq_dead ON leaseq_messages (queue, ord_t, ord_s) WHERE state = 3;

-- The single buffered follow-up of a leased key (put with if_in_flight="buffer").
CREATE TABLE leaseq_followups (
    queue        TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    value        BLOB,
    priority     INTEGER NOT NULL,
    delay        REAL    NOT NULL,
    at           REAL,
    max_attempts INTEGER,
    PRIMARY KEY (queue, key)
) WITHOUT ROWID;
-- get_message finds a follow-up by the id its put returned.
CREATE INDEX leaseq_followups_id ON leaseq_followups (id);

-- The results ledger: one outcome per (queue, key), written by ack/dead_letter
-- in the same transaction as the message's removal or death.
CREATE TABLE leaseq_outcomes (
    queue       TEXT NOT NULL,
    key         TEXT NOT NULL,
    status      TEXT NOT NULL,    -- succeeded | failed
    value       BLOB,             -- serialized with the store's serializer
    error       TEXT,
    recorded_at REAL NOT NULL,
    expires_at  REAL,             -- NULL: kept until pruned
    PRIMARY KEY (queue, key)
) WITHOUT ROWID;
CREATE INDEX leaseq_outcomes_expiry ON leaseq_outcomes (queue, expires_at)
    WHERE expires_at IS NOT NULL;
