"""idflow driven by the official Python SDK `ory-kratos-client` 25.4.0.

Every call goes through the SDK, so each response must also pass the SDK's own pydantic model
validation (a 2xx body that does not fit its model raises before the test sees it; for 400 flow
responses the tests check that the SDK could parse the flow, too).

Written to the compatibility spec (identity, session, login: API registration, whoami, API
login, refresh login, session listing, API logout, password and duplicate errors, admin
identities), not to the implementation.
"""

from __future__ import annotations

import json
import uuid

import pytest
from ory_kratos_client.exceptions import (
    BadRequestException,
    ConflictException,
    ForbiddenException,
    NotFoundException,
    UnauthorizedException,
)
from ory_kratos_client.models.create_identity_body import CreateIdentityBody
from ory_kratos_client.models.identity_with_credentials import IdentityWithCredentials
from ory_kratos_client.models.identity_with_credentials_password import (
    IdentityWithCredentialsPassword,
)
from ory_kratos_client.models.identity_with_credentials_password_config import (
    IdentityWithCredentialsPasswordConfig,
)
from ory_kratos_client.models.login_flow import LoginFlow
from ory_kratos_client.models.perform_native_logout_body import PerformNativeLogoutBody
from ory_kratos_client.models.registration_flow import RegistrationFlow
from ory_kratos_client.models.update_login_flow_body import UpdateLoginFlowBody
from ory_kratos_client.models.update_login_flow_with_password_method import (
    UpdateLoginFlowWithPasswordMethod,
)
from ory_kratos_client.models.update_registration_flow_body import UpdateRegistrationFlowBody
from ory_kratos_client.models.update_registration_flow_with_password_method import (
    UpdateRegistrationFlowWithPasswordMethod,
)

# Message ids (spec §5.5)
MSG_INVALID_CREDENTIALS = 4000006
MSG_DUPLICATE_IDENTIFIER = 4000007
MSG_PASSWORD_TOO_SHORT = 4000032


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def new_email() -> str:
    return f"py-{uuid.uuid4().hex}@example.com"


def new_password() -> str:
    # Random, long, and sharing nothing with the email (the similarity check must not trip).
    return f"Pw-{uuid.uuid4().hex}-x"


def traits(email: str) -> dict:
    return {"email": email}


def enum_value(v):
    return getattr(v, "value", v)


def error_json(exc) -> dict:
    assert exc.body, f"HTTP {exc.status} without a body"
    return json.loads(exc.body)


def node_messages(flow: dict, name: str) -> list[dict]:
    for node in flow["ui"]["nodes"]:
        if node.get("attributes", {}).get("name") == name:
            return node.get("messages") or []
    raise AssertionError(f"no UI node named {name!r} in {json.dumps(flow['ui'], indent=1)}")


def message_ids(messages: list[dict]) -> list[int]:
    return [m["id"] for m in messages]


def register(frontend, email: str, password: str):
    flow = frontend.create_native_registration_flow()
    body = UpdateRegistrationFlowBody(
        UpdateRegistrationFlowWithPasswordMethod(
            method="password", password=password, traits=traits(email)
        )
    )
    return frontend.update_registration_flow(flow=flow.id, update_registration_flow_body=body)


def login_body(identifier: str, password: str) -> UpdateLoginFlowBody:
    return UpdateLoginFlowBody(
        UpdateLoginFlowWithPasswordMethod(
            method="password", identifier=identifier, password=password
        )
    )


def login(frontend, identifier: str, password: str):
    flow = frontend.create_native_login_flow()
    return frontend.update_login_flow(
        flow=flow.id, update_login_flow_body=login_body(identifier, password)
    )


# --------------------------------------------------------------------------------------------
# registration
# --------------------------------------------------------------------------------------------


def test_api_registration_returns_session_token(frontend, server):
    email, password = new_email(), new_password()

    flow = frontend.create_native_registration_flow()
    assert isinstance(flow, RegistrationFlow)
    assert flow.type == "api"
    assert flow.ui.method == "POST"
    assert flow.ui.action.startswith(f"{server.public_url}/self-service/registration?")
    assert f"flow={flow.id}" in flow.ui.action

    body = UpdateRegistrationFlowBody(
        UpdateRegistrationFlowWithPasswordMethod(
            method="password", password=password, traits=traits(email)
        )
    )
    res = frontend.update_registration_flow(flow=flow.id, update_registration_flow_body=body)

    # The default config runs the `session` hook after password registration (spec §4.7).
    assert res.session_token, "registration returned no session_token"
    assert res.identity.traits == traits(email)
    assert res.identity.state == "active"
    assert res.identity.credentials is None, "self-service responses never carry credentials"
    assert res.session is not None
    assert res.session.active is True
    assert res.session.identity.id == res.identity.id
    assert enum_value(res.session.authenticator_assurance_level) == "aal1"
    assert [m.method for m in res.session.authentication_methods] == ["password"]
    actions = [c.actual_instance for c in res.continue_with or []]
    set_token = [a for a in actions if a.action == "set_ory_session_token"]
    assert set_token and set_token[0].ory_session_token == res.session_token


def test_registration_rejects_too_short_password(frontend, identity_api):
    email = new_email()
    flow = frontend.create_native_registration_flow()
    body = UpdateRegistrationFlowBody(
        UpdateRegistrationFlowWithPasswordMethod(
            method="password", password="aB3$x", traits=traits(email)
        )
    )
    with pytest.raises(BadRequestException) as ei:
        frontend.update_registration_flow(flow=flow.id, update_registration_flow_body=body)

    assert ei.value.status == 400
    assert isinstance(ei.value.data, RegistrationFlow), "the 400 body is not a valid flow"
    flow_json = error_json(ei.value)
    assert flow_json["id"] == flow.id
    msgs = node_messages(flow_json, "password")
    assert MSG_PASSWORD_TOO_SHORT in message_ids(msgs), msgs
    assert all(m["type"] == "error" for m in msgs if m["id"] == MSG_PASSWORD_TOO_SHORT)
    # nothing was created
    assert identity_api.list_identities(credentials_identifier=email) == []


@pytest.mark.parametrize("variant", ["same", "upper-case"])
def test_registration_rejects_duplicate_email(frontend, variant):
    email = new_email()
    register(frontend, email, new_password())

    again = email if variant == "same" else email.upper()
    flow = frontend.create_native_registration_flow()
    body = UpdateRegistrationFlowBody(
        UpdateRegistrationFlowWithPasswordMethod(
            method="password", password=new_password(), traits=traits(again)
        )
    )
    with pytest.raises(BadRequestException) as ei:
        frontend.update_registration_flow(flow=flow.id, update_registration_flow_body=body)

    assert ei.value.status == 400
    assert isinstance(ei.value.data, RegistrationFlow), "the 400 body is not a valid flow"
    flow_json = error_json(ei.value)
    ids = message_ids(flow_json["ui"].get("messages") or [])
    assert MSG_DUPLICATE_IDENTIFIER in ids, flow_json["ui"]


# --------------------------------------------------------------------------------------------
# sessions: whoami, login, refresh, list, logout
# --------------------------------------------------------------------------------------------


def test_whoami_with_session_token(frontend):
    email = new_email()
    reg = register(frontend, email, new_password())

    session = frontend.to_session(x_session_token=reg.session_token)
    assert session.id == reg.session.id
    assert session.active is True
    assert session.identity.id == reg.identity.id
    assert session.identity.traits == traits(email)
    assert session.identity.credentials is None
    assert enum_value(session.authenticator_assurance_level) == "aal1"
    assert session.expires_at > session.authenticated_at


def test_whoami_without_valid_token_is_401(frontend):
    with pytest.raises(UnauthorizedException) as ei:
        frontend.to_session(x_session_token="not-a-real-token")
    assert ei.value.status == 401
    assert error_json(ei.value)["error"]["code"] == 401


def test_api_login_with_password(frontend):
    email, password = new_email(), new_password()
    reg = register(frontend, email, password)

    flow = frontend.create_native_login_flow()
    assert isinstance(flow, LoginFlow)
    assert flow.type == "api"
    assert flow.refresh is False
    assert enum_value(flow.requested_aal) == "aal1"

    res = frontend.update_login_flow(
        flow=flow.id, update_login_flow_body=login_body(email, password)
    )
    assert res.session_token
    assert res.session_token != reg.session_token
    assert res.session.id != reg.session.id, "a fresh login starts a new session"
    assert res.session.identity.id == reg.identity.id
    assert res.session.active is True
    assert [m.method for m in res.session.authentication_methods] == ["password"]

    who = frontend.to_session(x_session_token=res.session_token)
    assert who.id == res.session.id


def test_login_identifier_is_case_insensitive(frontend):
    email, password = new_email(), new_password()
    reg = register(frontend, email, password)
    res = login(frontend, email.upper(), password)
    assert res.session.identity.id == reg.identity.id


@pytest.mark.parametrize("case", ["wrong-password", "unknown-identifier"])
def test_login_with_bad_credentials_is_400_4000006(frontend, case):
    email, password = new_email(), new_password()
    register(frontend, email, password)
    identifier, attempt = (
        (email, password + "-wrong") if case == "wrong-password" else (new_email(), password)
    )

    flow = frontend.create_native_login_flow()
    with pytest.raises(BadRequestException) as ei:
        frontend.update_login_flow(
            flow=flow.id, update_login_flow_body=login_body(identifier, attempt)
        )

    assert ei.value.status == 400
    assert isinstance(ei.value.data, LoginFlow), "the 400 body is not a valid flow"
    flow_json = error_json(ei.value)
    assert flow_json["id"] == flow.id
    messages = flow_json["ui"]["messages"]
    assert messages[0]["id"] == MSG_INVALID_CREDENTIALS, messages
    assert messages[0]["type"] == "error"


def test_refresh_login_keeps_the_session(frontend):
    email, password = new_email(), new_password()
    reg = register(frontend, email, password)
    before = frontend.to_session(x_session_token=reg.session_token)

    flow = frontend.create_native_login_flow(refresh=True, x_session_token=reg.session_token)
    assert flow.refresh is True
    res = frontend.update_login_flow(
        flow=flow.id,
        update_login_flow_body=login_body(email, password),
        x_session_token=reg.session_token,
    )

    assert res.session.id == before.id, "refresh must update the existing session"
    assert res.session.identity.id == reg.identity.id
    assert res.session.authenticated_at >= before.authenticated_at
    assert len(res.session.authentication_methods) == len(before.authentication_methods) + 1
    assert res.session_token

    after = frontend.to_session(x_session_token=res.session_token)
    assert after.id == before.id
    assert after.authenticated_at >= before.authenticated_at


def test_list_my_sessions_shows_the_other_sessions(frontend):
    email, password = new_email(), new_password()
    reg = register(frontend, email, password)
    second = login(frontend, email, password)

    sessions = frontend.list_my_sessions(x_session_token=second.session_token)
    ids = [s.id for s in sessions]
    assert reg.session.id in ids
    assert second.session.id not in ids, "the current session is not listed"
    for s in sessions:
        assert s.active is True
        assert s.identity is None or s.identity.id == reg.identity.id


def test_native_logout_revokes_only_that_session(frontend):
    email, password = new_email(), new_password()
    reg = register(frontend, email, password)
    other = login(frontend, email, password)

    result = frontend.perform_native_logout(
        PerformNativeLogoutBody(session_token=reg.session_token)
    )
    assert result is None  # 204

    with pytest.raises(UnauthorizedException) as ei:
        frontend.to_session(x_session_token=reg.session_token)
    assert ei.value.status == 401

    still = frontend.to_session(x_session_token=other.session_token)
    assert still.id == other.session.id


def test_native_logout_with_unknown_token_is_403(frontend):
    with pytest.raises(ForbiddenException) as ei:
        frontend.perform_native_logout(
            PerformNativeLogoutBody(session_token=f"unknown-{uuid.uuid4().hex}")
        )
    assert ei.value.status == 403


# --------------------------------------------------------------------------------------------
# admin identities
# --------------------------------------------------------------------------------------------


def create_body(email: str, password: str) -> CreateIdentityBody:
    return CreateIdentityBody(
        schema_id="default",
        traits=traits(email),
        credentials=IdentityWithCredentials(
            password=IdentityWithCredentialsPassword(
                config=IdentityWithCredentialsPasswordConfig(password=password)
            )
        ),
    )


def test_admin_identity_lifecycle(identity_api, frontend):
    email, password = new_email(), new_password()

    created = identity_api.create_identity(create_identity_body=create_body(email, password))
    assert created.id
    assert created.schema_id == "default"
    assert created.state == "active"
    assert created.traits == traits(email)
    assert created.credentials and "password" in created.credentials
    assert created.credentials["password"].identifiers == [email]
    assert not created.credentials["password"].config, "create never returns credential configs"

    got = identity_api.get_identity(id=created.id)
    assert got.id == created.id
    assert got.traits == traits(email)
    assert "password" in (got.credentials or {})

    by_identifier = identity_api.list_identities(credentials_identifier=email)
    assert [i.id for i in by_identifier] == [created.id]
    everyone = identity_api.list_identities(page_size=500)
    assert created.id in [i.id for i in everyone]

    # The plaintext password was hashed and works for a self-service login.
    res = login(frontend, email, password)
    assert res.session.identity.id == created.id

    assert identity_api.delete_identity(id=created.id) is None  # 204
    with pytest.raises(NotFoundException) as ei:
        identity_api.get_identity(id=created.id)
    assert ei.value.status == 404
    with pytest.raises(NotFoundException):
        identity_api.delete_identity(id=created.id)
    # its sessions went with it
    with pytest.raises(UnauthorizedException):
        frontend.to_session(x_session_token=res.session_token)


def test_admin_create_duplicate_identifier_is_409(identity_api):
    email = new_email()
    identity_api.create_identity(create_identity_body=create_body(email, new_password()))
    with pytest.raises(ConflictException) as ei:
        identity_api.create_identity(create_identity_body=create_body(email, new_password()))
    assert ei.value.status == 409
