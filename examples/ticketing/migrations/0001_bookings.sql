-- Sold seats. The UNIQUE constraints are what make overselling impossible, whatever the number
-- of workers or redeliveries: the database, not application code, is the last line of defence.
CREATE TABLE bookings (
    id              BIGSERIAL PRIMARY KEY,
    idempotency_key TEXT        NOT NULL UNIQUE,
    user_id         TEXT        NOT NULL,
    concert_id      TEXT        NOT NULL,
    seat_number     INTEGER     NOT NULL CHECK (seat_number > 0),
    booked_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT bookings_seat_sold_once UNIQUE (concert_id, seat_number),
    -- One ticket per user per concert: the usual rule of a ticket war, and what keeps a user
    -- from being charged twice when they retry with a fresh key.
    CONSTRAINT bookings_one_per_user UNIQUE (concert_id, user_id)
);

-- Every request the worker has decided, confirmed or rejected, keyed by the client's
-- idempotency key. Written in the same transaction as the booking, so a key is here exactly
-- when its effect is.
CREATE TABLE processed_requests (
    idempotency_key TEXT        PRIMARY KEY,
    outcome         TEXT        NOT NULL CHECK (outcome IN ('confirmed', 'rejected')),
    reason          TEXT,
    user_id         TEXT        NOT NULL,
    concert_id      TEXT        NOT NULL,
    seat_number     INTEGER     NOT NULL,
    -- Where the deciding record was read, for tracing a decision back to the log.
    kafka_partition INTEGER     NOT NULL,
    kafka_offset    BIGINT      NOT NULL,
    processed_at    TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
