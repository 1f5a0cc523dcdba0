//! Reading rows into the model, once for every engine: [`Cols`] is what the decoders need of
//! a row (a column by name, typed), implemented for sqlx's SQLite and PostgreSQL rows and for
//! the rows of the SQLite connection lane (rusqlite).

use crate::{de, from_ts, map_err, parse_json};
use idflow_core::model::{
    Aal, AuthMethod, Credential, CredentialType, Device, Identity, IdentityState, PendingChange, RecoveryAddress,
    Session, VerifiableAddress,
};
use idflow_core::store::StoreError;
use sqlx::Row;
use uuid::Uuid;

/// A row's columns by name.
pub(crate) trait Cols {
    fn text(&self, c: &str) -> Result<String, StoreError>;
    fn opt_text(&self, c: &str) -> Result<Option<String>, StoreError>;
    fn int(&self, c: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, c: &str) -> Result<Option<i64>, StoreError>;
    fn uuid(&self, c: &str) -> Result<Uuid, StoreError>;
    fn opt_uuid(&self, c: &str) -> Result<Option<Uuid>, StoreError>;
    fn boolean(&self, c: &str) -> Result<bool, StoreError>;
}

macro_rules! sqlx_cols {
    ($row:ty) => {
        impl Cols for $row {
            fn text(&self, c: &str) -> Result<String, StoreError> {
                self.try_get(c).map_err(map_err)
            }
            fn opt_text(&self, c: &str) -> Result<Option<String>, StoreError> {
                self.try_get(c).map_err(map_err)
            }
            fn int(&self, c: &str) -> Result<i64, StoreError> {
                self.try_get(c).map_err(map_err)
            }
            fn opt_int(&self, c: &str) -> Result<Option<i64>, StoreError> {
                self.try_get(c).map_err(map_err)
            }
            fn uuid(&self, c: &str) -> Result<Uuid, StoreError> {
                self.try_get(c).map_err(map_err)
            }
            fn opt_uuid(&self, c: &str) -> Result<Option<Uuid>, StoreError> {
                self.try_get(c).map_err(map_err)
            }
            fn boolean(&self, c: &str) -> Result<bool, StoreError> {
                self.try_get(c).map_err(map_err)
            }
        }
    };
}

sqlx_cols!(sqlx::sqlite::SqliteRow);
sqlx_cols!(sqlx::postgres::PgRow);

/// The identity row's columns, read under the names in `c` (plain, or the prefixed names of
/// `SESSION_WITH_IDENTITY`). Without its children (see [`Children`]).
pub(crate) fn identity(row: &impl Cols, c: &[&str; 12]) -> Result<Identity, StoreError> {
    let state = row.text(c[2])?;
    Ok(Identity {
        id: row.uuid(c[0])?,
        schema_id: row.text(c[1])?,
        state: IdentityState::parse(&state).unwrap_or(IdentityState::Inactive),
        state_changed_at: row.opt_int(c[3])?.map(from_ts),
        traits: parse_json(&row.text(c[4])?),
        metadata_public: parse_json(&row.text(c[5])?),
        metadata_admin: parse_json(&row.text(c[6])?),
        external_id: row.opt_text(c[7])?,
        verifiable_addresses: vec![],
        recovery_addresses: vec![],
        credentials: Default::default(),
        delete_after: row.opt_int(c[11])?.map(from_ts),
        version: row.int(c[8])?,
        created_at: from_ts(row.int(c[9])?),
        updated_at: from_ts(row.int(c[10])?),
        pending_changes: None,
    })
}

/// A `sessions` row.
pub(crate) fn session(row: &impl Cols) -> Result<Session, StoreError> {
    let aal = row.text("aal")?;
    let methods: Vec<AuthMethod> = de(&row.text("authentication_methods")?)?;
    let devices: Vec<Device> = de(&row.text("devices")?)?;
    Ok(Session {
        id: row.uuid("id")?,
        token_hash: row.text("token_hash")?,
        logout_token_hash: row.text("logout_token_hash")?,
        identity_id: row.uuid("identity_id")?,
        active: row.boolean("active")?,
        aal: Aal::parse(&aal).unwrap_or(Aal::Aal0),
        authentication_methods: methods,
        authenticated_at: from_ts(row.int("authenticated_at")?),
        issued_at: from_ts(row.int("issued_at")?),
        expires_at: from_ts(row.int("expires_at")?),
        devices,
        created_at: from_ts(row.int("created_at")?),
        updated_at: from_ts(row.int("updated_at")?),
    })
}

/// An identity's children from the rows of `HYDRATE_CHILDREN`, one row at a time.
#[derive(Default)]
pub(crate) struct Children {
    creds: Vec<Credential>,
    idents: Vec<(Uuid, String)>,
    verifiable: Vec<VerifiableAddress>,
    recovery: Vec<RecoveryAddress>,
    pending: Vec<PendingChange>,
}

impl Children {
    pub(crate) fn add(&mut self, identity_id: Uuid, r: &impl Cols) -> Result<(), StoreError> {
        match r.int("t")? {
            0 => {
                let kind = r.text("s1")?;
                // A credential of a kind this build does not know is skipped.
                let Some(kind) = CredentialType::parse(&kind) else { return Ok(()) };
                self.creds.push(Credential {
                    id: r.uuid("id")?,
                    kind,
                    identifiers: vec![],
                    config: parse_json(&r.text("s2")?),
                    version: r.int("n1")?,
                    created_at: from_ts(r.int("n2")?),
                    updated_at: from_ts(r.int("n3")?),
                });
            }
            1 => self.idents.push((r.uuid("ref_id")?, r.text("s1")?)),
            2 => self.verifiable.push(VerifiableAddress {
                id: r.uuid("id")?,
                via: r.text("s1")?,
                value: r.text("s2")?,
                verified: r.boolean("b")?,
                status: r.text("s3")?,
                verified_at: r.opt_int("n1")?.map(from_ts),
                created_at: from_ts(r.int("n2")?),
                updated_at: from_ts(r.int("n3")?),
            }),
            3 => self.recovery.push(RecoveryAddress {
                id: r.uuid("id")?,
                via: r.text("s1")?,
                value: r.text("s2")?,
                created_at: from_ts(r.int("n2")?),
                updated_at: from_ts(r.int("n3")?),
            }),
            _ => self.pending.push(PendingChange {
                identity_id,
                path: r.text("s1")?,
                value: parse_json(&r.text("s2")?),
                previous: parse_json(&r.text("s3")?),
                address: r.text("s4")?,
                flow_id: r.uuid("id")?,
                created_at: from_ts(r.int("n2")?),
                expires_at: from_ts(r.int("n3")?),
            }),
        }
        Ok(())
    }

    /// `ident` with these children, in a stable order (the query has no ORDER BY: sorting its
    /// five parts cost SQLite a sorter each, on every session read): addresses by creation,
    /// value and channel, a credential's identifiers alphabetically, pending changes by path
    /// (as `list_pending_changes` lists them).
    pub(crate) fn finish(mut self, mut ident: Identity) -> Identity {
        self.pending.sort_by(|a, b| a.path.cmp(&b.path));
        self.idents.sort_by(|a, b| a.1.cmp(&b.1));
        self.verifiable.sort_by(|a, b| (a.created_at, &a.value, &a.via).cmp(&(b.created_at, &b.value, &b.via)));
        self.recovery.sort_by(|a, b| (a.created_at, &a.value, &a.via).cmp(&(b.created_at, &b.value, &b.via)));
        ident.pending_changes = Some(self.pending);
        ident.verifiable_addresses = self.verifiable;
        ident.recovery_addresses = self.recovery;
        for mut c in self.creds {
            c.identifiers = self.idents.iter().filter(|(rc, _)| *rc == c.id).map(|(_, i)| i.clone()).collect();
            ident.credentials.insert(c.kind, c);
        }
        ident
    }
}
