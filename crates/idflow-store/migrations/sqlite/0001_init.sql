-- idflow schema v1 (SQLite). Keep in lockstep with ../postgres/0001_init.sql.
CREATE TABLE identities (
    id BLOB PRIMARY KEY NOT NULL,
    schema_id TEXT NOT NULL,
    state TEXT NOT NULL,
    state_changed_at BIGINT,
    traits TEXT NOT NULL,
    metadata_public TEXT NOT NULL,
    metadata_admin TEXT NOT NULL,
    external_id TEXT UNIQUE,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE credentials (
    id BLOB PRIMARY KEY NOT NULL,
    identity_id BLOB NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    config TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (identity_id, kind)
);

CREATE TABLE credential_identifiers (
    kind TEXT NOT NULL,
    identifier TEXT NOT NULL,
    identity_id BLOB NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    credential_id BLOB NOT NULL REFERENCES credentials(id) ON DELETE CASCADE,
    PRIMARY KEY (kind, identifier)
);
CREATE INDEX credential_identifiers_identity ON credential_identifiers(identity_id);

CREATE TABLE verifiable_addresses (
    id BLOB PRIMARY KEY NOT NULL,
    identity_id BLOB NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    via TEXT NOT NULL,
    value TEXT NOT NULL,
    verified BOOLEAN NOT NULL,
    status TEXT NOT NULL,
    verified_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (via, value)
);
CREATE INDEX verifiable_addresses_identity ON verifiable_addresses(identity_id);

CREATE TABLE recovery_addresses (
    id BLOB PRIMARY KEY NOT NULL,
    identity_id BLOB NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    via TEXT NOT NULL,
    value TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (via, value)
);
CREATE INDEX recovery_addresses_identity ON recovery_addresses(identity_id);

CREATE TABLE sessions (
    id BLOB PRIMARY KEY NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    logout_token_hash TEXT NOT NULL UNIQUE,
    identity_id BLOB NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    active BOOLEAN NOT NULL,
    aal TEXT NOT NULL,
    authentication_methods TEXT NOT NULL,
    authenticated_at BIGINT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    devices TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX sessions_identity ON sessions(identity_id);

CREATE TABLE flows (
    id BLOB PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    identity_id BLOB REFERENCES identities(id) ON DELETE CASCADE,
    data TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX flows_expires ON flows(expires_at);

CREATE TABLE kv (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE rate_limits (
    key TEXT PRIMARY KEY NOT NULL,
    window_start BIGINT NOT NULL,
    count BIGINT NOT NULL
);
