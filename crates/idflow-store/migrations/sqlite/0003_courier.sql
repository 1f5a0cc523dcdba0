-- The mail courier's queue. A message is inserted in the transaction of the flow change that
-- causes it (status queued), claimed by one worker at a time (status processing, claim_id and
-- lease_until set; a claim whose lease ran out is taken over, so a crashed node loses no
-- message), then sent, re-queued with a later next_attempt_at, or abandoned. Every attempt
-- leaves one row in courier_dispatches.
CREATE TABLE courier_messages (
    id BLOB PRIMARY KEY NOT NULL,
    status TEXT NOT NULL,
    channel TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    html_body TEXT NOT NULL,
    template_type TEXT NOT NULL,
    template_data TEXT NOT NULL,
    send_count BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    claim_id BLOB,
    lease_until BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX courier_messages_due ON courier_messages(status, next_attempt_at);
CREATE INDEX courier_messages_created ON courier_messages(created_at, id);
CREATE INDEX courier_messages_recipient ON courier_messages(recipient);

CREATE TABLE courier_dispatches (
    id BLOB PRIMARY KEY NOT NULL,
    message_id BLOB NOT NULL REFERENCES courier_messages(id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX courier_dispatches_message ON courier_dispatches(message_id, created_at);
