-- leaseq postgresql:// schema, version 1. Every object lives in the store's
-- schema (``?schema=NAME``, default ``leaseq``); the version is the single row
-- of leaseq_version.
--
-- leaseq_messages is the HOT table: live messages only (ready, delayed,
-- leased). Dead letters, buffered follow-ups and outcomes live in their own
-- tables so the hot table stays small and its indexes stay dense.
--
-- `state` is the stored state:
--   0 ready and due (in the delivery-order index)
--   1 delayed (logically READY with available_at in the future; a claim
--     promotes the due ones, so the delivery-order index holds only due rows)
--   2 leased (a lease with lease_expires_at <= now is logically READY at the
--     head of its priority, or DEAD after its last attempt; claims rewrite
--     such rows lazily, a bounded number at a time)
-- Delivery order (leaseq._core.rules) is the order of leaseq_ready:
--   priority DESC, band (0 = head, 1 = line), ord_t, ord_s
-- head rows: ord_t = -(time they joined the head), ord_s = -(operation number)
-- line rows: ord_t = availability time, ord_s = operation number (FIFO)
-- Operation numbers come from leaseq_seq (steps of 4096: one number per
-- operation, the low bits order the rows of one batch). Delayed and leased
-- rows carry the place they will have once due/expired, so promoting them is
-- a one-column change. Times are epoch seconds (float8) of the server clock,
-- or of the caller's explicit clock.

CREATE TABLE leaseq_version (version integer NOT NULL);

CREATE SEQUENCE leaseq_seq INCREMENT BY 4096;

CREATE TABLE leaseq_messages (
    id               text     NOT NULL PRIMARY KEY,
    queue            text     NOT NULL,
    key              text     NOT NULL,
    value            bytea,
    priority         integer  NOT NULL,
    state            smallint NOT NULL,
    attempts         integer  NOT NULL,
    max_attempts     integer,
    created_at       float8   NOT NULL,
    available_at     float8   NOT NULL,
    band             smallint NOT NULL,
    ord_t            float8   NOT NULL,
    ord_s            bigint   NOT NULL,
    token            text,
    leased_by        text,
    leased_at        float8,
    lease_expires_at float8,
    last_error       text,
    follow           boolean  NOT NULL DEFAULT false,
    history          jsonb    NOT NULL DEFAULT '[]',
    -- At most one live message per key, enforced by the database.
    CONSTRAINT leaseq_live_key UNIQUE (queue, key)
);
CREATE INDEX leaseq_ready ON leaseq_messages (queue, priority DESC, band, ord_t, ord_s)
    WHERE state = 0;
CREATE INDEX leaseq_delayed ON leaseq_messages (queue, available_at) WHERE state = 1;
CREATE INDEX leaseq_leased ON leaseq_messages (queue, lease_expires_at) WHERE state = 2;
-- Every row is updated or deleted soon after it is written: vacuum the hot
-- table early and often (the defaults wait for 20% dead rows), and leave room
-- in each page for HOT updates.
ALTER TABLE leaseq_messages SET (
    fillfactor = 80,
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0.05,
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_vacuum_cost_delay = 0
);

-- Dead letters: the rows as they died (state 3); ord_t = death time,
-- ord_s = operation number (the order of death).
CREATE TABLE leaseq_dead (LIKE leaseq_messages INCLUDING DEFAULTS);
ALTER TABLE leaseq_dead ADD PRIMARY KEY (id);
CREATE INDEX leaseq_dead_order ON leaseq_dead (queue, ord_t, ord_s);

-- The single buffered follow-up of a leased key (put with if_in_flight="buffer").
CREATE TABLE leaseq_followups (
    queue        text    NOT NULL,
    key          text    NOT NULL,
    id           text    NOT NULL,
    value        bytea,
    priority     integer NOT NULL,
    delay        float8  NOT NULL,
    at           float8,
    max_attempts integer,
    PRIMARY KEY (queue, key)
);

-- The results ledger: one outcome per (queue, key), written with the ack or
-- dead-letter that settled the key.
CREATE TABLE leaseq_outcomes (
    queue       text   NOT NULL,
    key         text   NOT NULL,
    status      text   NOT NULL,
    value       bytea,
    error       text,
    recorded_at float8 NOT NULL,
    expires_at  float8,
    PRIMARY KEY (queue, key)
);
CREATE INDEX leaseq_outcomes_expiry ON leaseq_outcomes (queue, expires_at);

INSERT INTO leaseq_version (version) VALUES (1);
