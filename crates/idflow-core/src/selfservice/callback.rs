//! The return of a browser from a social sign-in provider: the `oidc` method checks the state
//! and the provider's answer and decides a step (`methods::oidc::Resumed`); this flow-level
//! entry completes it like a submit of that flow (login, registration or settings).

use super::login::LoggedIn;
use super::methods::oidc::{CallbackParams, Oidc, Resumed};
use super::registration::Registered;
use super::settings::SettingsDone;
use super::{Engine, Req, Submitted};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Flow, FlowKind, MethodId};

/// The outcome of a callback.
#[derive(Debug)]
pub enum OidcDone {
    Login(LoggedIn),
    Registration(Registered),
    Settings(Submitted<SettingsDone>),
    /// Form errors on the flow: show its UI again.
    Invalid(Flow),
}

impl Engine {
    /// `GET /self-service/methods/oidc/callback/<provider>`. Returns the flow kind (when the
    /// state named a flow) with the outcome.
    pub async fn oidc_callback(
        &self,
        provider_id: &str,
        params: &CallbackParams,
        req: &Req,
    ) -> (Option<FlowKind>, Result<OidcDone>) {
        let mut kind = None;
        let res = self.oidc_callback_inner(provider_id, params, req, &mut kind).await;
        (kind, res)
    }

    async fn oidc_callback_inner(
        &self,
        provider_id: &str,
        params: &CallbackParams,
        req: &Req,
        kind: &mut Option<FlowKind>,
    ) -> Result<OidcDone> {
        let (flow, resumed) = self.oidc_resume(provider_id, params, req, kind).await?;
        Ok(match resumed {
            Resumed::Login(step) => match self.complete_login(flow, &Oidc, step, req).await? {
                Submitted::Done(d) => OidcDone::Login(d),
                Submitted::Invalid(f) | Submitted::ShowForm(f) => OidcDone::Invalid(f),
            },
            Resumed::Registration(step) => match self.complete_registration(flow, &Oidc, step, req).await? {
                Submitted::Done(d) => OidcDone::Registration(d),
                Submitted::Invalid(f) | Submitted::ShowForm(f) => OidcDone::Invalid(f),
            },
            Resumed::Settings(change) => {
                let a = req.auth.as_ref().ok_or_else(|| {
                    Error::new(ErrorKind::Unauthorized, "A valid Ory Session Cookie or Ory Session Token is missing.")
                })?;
                OidcDone::Settings(self.settings_apply(flow, a, req, MethodId::Oidc, change).await?)
            }
        })
    }
}
