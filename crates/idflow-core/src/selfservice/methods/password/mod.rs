//! The `password` method: sign-in with identifier + password (aal1, refresh), one-step
//! registration, and password changes in settings.

mod login;
mod registration;
mod settings;

use super::{Claim, LoginForm, LoginStep, Method, MethodId, RegistrationStep};
use crate::error::Result;
use crate::model::{Aal, CredentialType, Flow};
use crate::selfservice::settings::Change;
use crate::selfservice::{Authed, Body, Engine, Req, body_str};
use crate::ui::{Group, Node, UiText, msg};
use async_trait::async_trait;
use serde_json::json;

pub struct Password;

fn named(body: &Body) -> bool {
    body_str(body, "method") == Some("password")
}

#[async_trait]
impl Method for Password {
    fn id(&self) -> MethodId {
        MethodId::Password
    }
    fn enabled(&self, e: &Engine) -> bool {
        e.cfg.selfservice.methods.password.enabled
    }

    fn claims_settings(&self, _flow: &Flow, body: &Body) -> bool {
        named(body)
    }
    fn settings_precheck(&self, body: &Body) -> Option<(String, UiText)> {
        body_str(body, "password").is_none_or(str::is_empty).then(|| ("password".into(), msg::missing("password")))
    }
    fn settings_nodes(&self, _e: &Engine, _flow: &mut Flow, _identity: &crate::model::Identity) -> Vec<Node> {
        vec![
            Node::input(Group::Password, "password", "password")
                .required()
                .autocomplete("new-password")
                .label(msg::label_password()),
            Node::submit(Group::Password, "method", json!("password"), msg::label_save()),
        ]
    }
    async fn settings(&self, e: &Engine, _flow: &mut Flow, a: &Authed, body: &Body) -> Result<Change> {
        e.settings_password(a, body).await
    }

    fn claims_login(&self, _e: &Engine, flow: &Flow, body: &Body) -> Claim {
        match (named(body), flow.requested_aal == Aal::Aal1) {
            (false, _) => Claim::No,
            (true, true) => Claim::Yes,
            (true, false) => Claim::WrongLevel,
        }
    }
    fn login_nodes(&self, e: &Engine, flow: &mut Flow, _req: &Req, form: &LoginForm<'_>) -> Result<Vec<Node>> {
        if form.second_factor {
            return Ok(vec![]);
        }
        let mut nodes = vec![];
        let refreshing = form.refresh && form.identity.is_some();
        if refreshing {
            flow.ui.messages.push(msg::login_refresh());
            let ident = form
                .identity
                .and_then(|i| i.credential(CredentialType::Password))
                .and_then(|c| c.identifiers.first().cloned())
                .unwrap_or_default();
            nodes.push(Node::input(Group::Default, "identifier", "hidden").value(json!(ident)).required());
        } else {
            nodes.push(e.identifier_node()?);
        }
        nodes.push(
            Node::input(Group::Password, "password", "password")
                .required()
                .autocomplete("current-password")
                .label(msg::label_password()),
        );
        let label = if refreshing { msg::login_sign_in() } else { msg::login_with_password() };
        nodes.push(Node::submit(Group::Password, "method", json!("password"), label));
        Ok(nodes)
    }
    async fn login(&self, e: &Engine, flow: &mut Flow, body: &Body, _req: &Req) -> Result<LoginStep> {
        e.login_password(flow, body).await
    }

    fn claims_registration(&self, body: &Body) -> bool {
        named(body)
    }
    fn registration_nodes(&self, _e: &Engine) -> Vec<Node> {
        vec![
            Node::input(Group::Password, "password", "password")
                .required()
                .autocomplete("new-password")
                .label(msg::label_password()),
            Node::submit(Group::Password, "method", json!("password"), msg::sign_up()),
        ]
    }
    async fn register(&self, e: &Engine, _flow: &mut Flow, body: &Body, _req: &Req) -> Result<RegistrationStep> {
        e.register_password(body).await
    }
}
