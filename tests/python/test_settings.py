"""The settings flow driven by the official Python SDK `ory-kratos-client`.

Every call goes through the SDK, so each 2xx response must pass the SDK's pydantic models; for
400/403 responses the tests check that the SDK could parse the body as a SettingsFlow (400) or
read the error envelope (403).

Sequence (settings-flow spec §4, §8.1, §8.2, §13): create_native_settings_flow →
get_settings_flow → update_settings_flow with profile → password (success, too short, breached,
similar to the email) → refresh required once the session is no longer privileged.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from ory_kratos_client.exceptions import BadRequestException, ForbiddenException
from ory_kratos_client.models.settings_flow import SettingsFlow
from ory_kratos_client.models.update_login_flow_body import UpdateLoginFlowBody
from ory_kratos_client.models.update_login_flow_with_password_method import (
    UpdateLoginFlowWithPasswordMethod,
)
from ory_kratos_client.models.update_registration_flow_body import UpdateRegistrationFlowBody
from ory_kratos_client.models.update_registration_flow_with_password_method import (
    UpdateRegistrationFlowWithPasswordMethod,
)
from ory_kratos_client.models.update_settings_flow_body import UpdateSettingsFlowBody
from ory_kratos_client.models.update_settings_flow_with_password_method import (
    UpdateSettingsFlowWithPasswordMethod,
)
from ory_kratos_client.models.update_settings_flow_with_profile_method import (
    UpdateSettingsFlowWithProfileMethod,
)

MSG_SAVED = 1050001
MSG_DUPLICATE = 4000007
MSG_SIMILAR = 4000031
MSG_TOO_SHORT = 4000032
MSG_BREACHED = 4000034
MSG_PENDING_CHANGE = 1050024


def new_email() -> str:
    return f"py-settings-{uuid.uuid4().hex}@example.com"


def new_password() -> str:
    return f"Pw-{uuid.uuid4().hex}-x"


def enum_value(v):
    return getattr(v, "value", v)


def register(frontend, email: str, password: str) -> str:
    flow = frontend.create_native_registration_flow()
    body = UpdateRegistrationFlowBody(
        UpdateRegistrationFlowWithPasswordMethod(
            method="password", password=password, traits={"email": email}
        )
    )
    res = frontend.update_registration_flow(flow=flow.id, update_registration_flow_body=body)
    assert res.session_token
    return res.session_token


def profile_body(traits: dict) -> UpdateSettingsFlowBody:
    return UpdateSettingsFlowBody(UpdateSettingsFlowWithProfileMethod(method="profile", traits=traits))


def password_body(password: str) -> UpdateSettingsFlowBody:
    return UpdateSettingsFlowBody(
        UpdateSettingsFlowWithPasswordMethod(method="password", password=password)
    )


def node(flow: dict, name: str, group: str | None = None) -> dict:
    for n in flow["ui"]["nodes"]:
        if n["attributes"].get("name") == name and (group is None or n["group"] == group):
            return n
    raise AssertionError(f"no node {name!r} in {json.dumps(flow['ui'], indent=1)}")


def form_ids(flow: dict) -> list[int]:
    return [m["id"] for m in flow["ui"].get("messages") or []]


def update_400(frontend, flow_id: str, body, token: str) -> dict:
    """Submit expecting a 400 flow: the SDK must parse the body as a SettingsFlow."""
    with pytest.raises(BadRequestException) as ei:
        frontend.update_settings_flow(flow=flow_id, update_settings_flow_body=body, x_session_token=token)
    assert ei.value.status == 400
    assert isinstance(ei.value.data, SettingsFlow), "the 400 body is not a valid SettingsFlow"
    return json.loads(ei.value.body)


def login(frontend, email: str, password: str):
    flow = frontend.create_native_login_flow()
    return frontend.update_login_flow(
        flow=flow.id,
        update_login_flow_body=UpdateLoginFlowBody(
            UpdateLoginFlowWithPasswordMethod(method="password", identifier=email, password=password)
        ),
    )


def test_settings_profile_and_password(frontend, server):
    email, password = new_email(), new_password()
    token = register(frontend, email, password)

    flow = frontend.create_native_settings_flow(x_session_token=token)
    assert isinstance(flow, SettingsFlow)
    assert flow.type == "api"
    assert enum_value(flow.state) == "show_form"
    assert flow.identity.traits == {"email": email}
    assert flow.ui.action == f"{server.public_url}/self-service/settings?flow={flow.id}"
    assert flow.ui.method == "POST"
    groups = {n.group for n in flow.ui.nodes}
    assert {"default", "profile", "password"} <= {enum_value(g) for g in groups}

    fetched = frontend.get_settings_flow(id=flow.id, x_session_token=token)
    assert isinstance(fetched, SettingsFlow)
    assert fetched.id == flow.id
    assert fetched.expires_at == flow.expires_at

    # Profile.
    traits = {"email": email, "name": {"first": "Ada", "last": "Lovelace"}}
    done = frontend.update_settings_flow(
        flow=flow.id, update_settings_flow_body=profile_body(traits), x_session_token=token
    )
    assert isinstance(done, SettingsFlow)
    assert enum_value(done.state) == "success"
    assert done.identity.traits == traits
    assert [m.id for m in done.ui.messages] == [MSG_SAVED]
    assert enum_value(done.ui.messages[0].type) == "success"

    # Password errors: too short, breached, similar to the email.
    for bad, expected in [("aB3$x", MSG_TOO_SHORT), ("password123", MSG_BREACHED), (email, MSG_SIMILAR)]:
        flow_json = update_400(frontend, flow.id, password_body(bad), token)
        ids = [m["id"] for m in node(flow_json, "password", "password")["messages"]]
        assert ids == [expected], (bad, ids)
        assert flow_json["state"] == "success", "a flow that once succeeded stays success (§17.1)"

    # Password success.
    new_pw = new_password()
    done = frontend.update_settings_flow(
        flow=flow.id, update_settings_flow_body=password_body(new_pw), x_session_token=token
    )
    assert isinstance(done, SettingsFlow)
    assert enum_value(done.state) == "success"
    assert [m.id for m in done.ui.messages] == [MSG_SAVED]
    assert done.continue_with is None
    assert login(frontend, email, new_pw).session_token
    with pytest.raises(BadRequestException):
        login(frontend, email, password)


def test_settings_duplicate_email(frontend):
    taken = new_email()
    register(frontend, taken, new_password())
    token = register(frontend, new_email(), new_password())
    flow = frontend.create_native_settings_flow(x_session_token=token)
    flow_json = update_400(frontend, flow.id, profile_body({"email": taken.upper()}), token)
    assert form_ids(flow_json) == [MSG_DUPLICATE]


def test_settings_refresh_required(short_privilege_frontend, short_privilege_server):
    frontend = short_privilege_frontend
    email, password = new_email(), new_password()
    token = register(frontend, email, password)
    flow = frontend.create_native_settings_flow(x_session_token=token)
    time.sleep(2)  # privileged_session_max_age is 1s

    # A non-identifier trait may still change.
    done = frontend.update_settings_flow(
        flow=flow.id,
        update_settings_flow_body=profile_body({"email": email, "name": {"first": "Stale"}}),
        x_session_token=token,
    )
    assert enum_value(done.state) == "success"

    # A password change needs a refresh login.
    new_pw = new_password()
    with pytest.raises(ForbiddenException) as ei:
        frontend.update_settings_flow(
            flow=flow.id, update_settings_flow_body=password_body(new_pw), x_session_token=token
        )
    assert ei.value.status == 403
    err = json.loads(ei.value.body)
    assert err["error"]["id"] == "session_refresh_required"
    public = short_privilege_server.public_url
    assert err["redirect_browser_to"].startswith(f"{public}/self-service/login/browser?refresh=true&return_to=")
    assert flow.id in err["redirect_browser_to"]
    assert login(frontend, email, password).session_token, "nothing changed"

    # The flow now carries the notice; the password is not kept.
    pending = frontend.get_settings_flow(id=flow.id, x_session_token=token)
    assert MSG_PENDING_CHANGE in [m.id for m in pending.ui.messages or []]
    assert new_pw not in str(pending.to_dict())

    # Refresh login (API), then the same flow accepts the change.
    refresh = frontend.create_native_login_flow(refresh=True, x_session_token=token)
    assert refresh.refresh is True
    res = frontend.update_login_flow(
        flow=refresh.id,
        update_login_flow_body=UpdateLoginFlowBody(
            UpdateLoginFlowWithPasswordMethod(method="password", identifier=email, password=password)
        ),
        x_session_token=token,
    )
    token = res.session_token
    done = frontend.update_settings_flow(
        flow=flow.id, update_settings_flow_body=password_body(new_pw), x_session_token=token
    )
    assert enum_value(done.state) == "success"
    assert login(frontend, email, new_pw).session_token
