"""Second factors through the official Python SDK `ory-kratos-client`: enrol TOTP in a native
settings flow (code computed from the secret node with pyotp), then step a fresh password
session up to aal2 with a native `aal=aal2` login flow; recovery codes through the same flows.

Every call goes through the SDK, so the responses also pass its pydantic model validation.
"""

from __future__ import annotations

import json
import time

import pyotp
import pytest
from ory_kratos_client.exceptions import BadRequestException, ForbiddenException
from ory_kratos_client.models.update_login_flow_body import UpdateLoginFlowBody
from ory_kratos_client.models.update_login_flow_with_lookup_secret_method import (
    UpdateLoginFlowWithLookupSecretMethod,
)
from ory_kratos_client.models.update_login_flow_with_totp_method import (
    UpdateLoginFlowWithTotpMethod,
)
from ory_kratos_client.models.update_settings_flow_body import UpdateSettingsFlowBody
from ory_kratos_client.models.update_settings_flow_with_lookup_method import (
    UpdateSettingsFlowWithLookupMethod,
)
from ory_kratos_client.models.update_settings_flow_with_totp_method import (
    UpdateSettingsFlowWithTotpMethod,
)

from test_kratos_client import login, new_email, new_password, register


def _v(x):
    """An SDK enum or a plain string, as a string."""
    return getattr(x, "value", x)


def _node(flow_dict: dict, name: str) -> dict:
    for n in flow_dict["ui"]["nodes"]:
        a = n["attributes"]
        if a.get("name") == name or a.get("id") == name:
            return n
    raise AssertionError(f"no node {name!r}")


def _enrol_totp(frontend, token: str) -> pyotp.TOTP:
    flow = frontend.create_native_settings_flow(x_session_token=token)
    d = flow.to_dict()
    secret = _node(d, "totp_secret_key")["attributes"]["text"]["context"]["secret"]
    qr = _node(d, "totp_qr")["attributes"]["src"]
    assert qr.startswith("data:image/png;base64,")
    totp = pyotp.TOTP(secret)
    body = UpdateSettingsFlowBody(UpdateSettingsFlowWithTotpMethod(method="totp", totp_code=totp.now()))
    done = frontend.update_settings_flow(flow=flow.id, update_settings_flow_body=body, x_session_token=token)
    assert done.state == "success"
    return totp


def _next_code(totp: pyotp.TOTP) -> str:
    # The code of the next 30 s step: inside the ±1 step window and later than the one used.
    return totp.at(time.time() + 30)


def test_enrol_totp_then_step_up_to_aal2(frontend):
    email, password = new_email(), new_password()
    token = register(frontend, email, password).session_token
    totp = _enrol_totp(frontend, token)
    # Enrolling upgraded the current session.
    assert _v(frontend.to_session(x_session_token=token).authenticator_assurance_level) == "aal2"

    # A fresh password login is aal1 and whoami demands the second factor.
    res = login(frontend, email, password)
    assert res.session.identity is None
    with pytest.raises(ForbiddenException) as e:
        frontend.to_session(x_session_token=res.session_token)
    assert json.loads(e.value.body)["error"]["id"] == "session_aal2_required"

    flow = frontend.create_native_login_flow(aal="aal2", x_session_token=res.session_token)
    assert _v(flow.requested_aal) == "aal2"
    code = _next_code(totp)
    body = UpdateLoginFlowBody(UpdateLoginFlowWithTotpMethod(method="totp", totp_code=code))
    up = frontend.update_login_flow(flow=flow.id, update_login_flow_body=body, x_session_token=res.session_token)
    assert _v(up.session.authenticator_assurance_level) == "aal2"
    assert [_v(m.method) for m in up.session.authentication_methods] == ["password", "totp"]
    who = frontend.to_session(x_session_token=up.session_token)
    assert who.identity.traits["email"] == email

    # The same code is never accepted twice (replay).
    res2 = login(frontend, email, password)
    flow2 = frontend.create_native_login_flow(aal="aal2", x_session_token=res2.session_token)
    with pytest.raises(BadRequestException) as e:
        frontend.update_login_flow(flow=flow2.id, update_login_flow_body=body, x_session_token=res2.session_token)
    assert 4000008 in [m["id"] for n in json.loads(e.value.body)["ui"]["nodes"] for m in n["messages"]]


def test_recovery_code_steps_up_once(frontend):
    email, password = new_email(), new_password()
    token = register(frontend, email, password).session_token
    _enrol_totp(frontend, token)
    flow = frontend.create_native_settings_flow(x_session_token=token)
    regen = UpdateSettingsFlowBody(UpdateSettingsFlowWithLookupMethod(method="lookup_secret", lookup_secret_regenerate=True))
    shown = frontend.update_settings_flow(flow=flow.id, update_settings_flow_body=regen, x_session_token=token)
    codes = [s["text"] for s in _node(shown.to_dict(), "lookup_secret_codes")["attributes"]["text"]["context"]["secrets"]]
    assert len(codes) == 12
    confirm = UpdateSettingsFlowBody(UpdateSettingsFlowWithLookupMethod(method="lookup_secret", lookup_secret_confirm=True))
    done = frontend.update_settings_flow(flow=flow.id, update_settings_flow_body=confirm, x_session_token=token)
    assert done.state == "success"

    res = login(frontend, email, password)
    flow = frontend.create_native_login_flow(aal="aal2", x_session_token=res.session_token)
    body = UpdateLoginFlowBody(UpdateLoginFlowWithLookupSecretMethod(method="lookup_secret", lookup_secret=codes[0]))
    up = frontend.update_login_flow(flow=flow.id, update_login_flow_body=body, x_session_token=res.session_token)
    assert _v(up.session.authenticator_assurance_level) == "aal2"

    # Single use.
    res2 = login(frontend, email, password)
    flow2 = frontend.create_native_login_flow(aal="aal2", x_session_token=res2.session_token)
    with pytest.raises(BadRequestException) as e:
        frontend.update_login_flow(flow=flow2.id, update_login_flow_body=body, x_session_token=res2.session_token)
    ids = [m["id"] for n in json.loads(e.value.body)["ui"]["nodes"] for m in n["messages"]]
    assert 4000012 in ids


def test_few_recovery_codes_left_warns_in_settings(frontend):
    """The guard rail: once fewer than 3 unused recovery codes are left, every settings flow
    carries the warning 1050043 (the count in its context); with more, it does not."""
    email, password = new_email(), new_password()
    token = register(frontend, email, password).session_token
    _enrol_totp(frontend, token)
    flow = frontend.create_native_settings_flow(x_session_token=token)
    regen = UpdateSettingsFlowBody(UpdateSettingsFlowWithLookupMethod(method="lookup_secret", lookup_secret_regenerate=True))
    shown = frontend.update_settings_flow(flow=flow.id, update_settings_flow_body=regen, x_session_token=token)
    codes = [s["text"] for s in _node(shown.to_dict(), "lookup_secret_codes")["attributes"]["text"]["context"]["secrets"]]
    confirm = UpdateSettingsFlowBody(UpdateSettingsFlowWithLookupMethod(method="lookup_secret", lookup_secret_confirm=True))
    frontend.update_settings_flow(flow=flow.id, update_settings_flow_body=confirm, x_session_token=token)

    def warnings() -> list:
        f = frontend.create_native_settings_flow(x_session_token=token)
        return [m for m in (f.ui.messages or []) if m.id == 1050043]

    assert warnings() == []
    # Use ten of the twelve codes as second factors: two are left.
    for code in codes[:10]:
        res = login(frontend, email, password)
        step = frontend.create_native_login_flow(aal="aal2", x_session_token=res.session_token)
        body = UpdateLoginFlowBody(UpdateLoginFlowWithLookupSecretMethod(method="lookup_secret", lookup_secret=code))
        up = frontend.update_login_flow(flow=step.id, update_login_flow_body=body, x_session_token=res.session_token)
        assert _v(up.session.authenticator_assurance_level) == "aal2"
        if code == codes[8]:
            assert warnings() == [], "three left: no warning yet"
    w = warnings()
    assert len(w) == 1, w
    assert w[0].context == {"unused": 2}, w[0]
    assert "2 unused recovery codes" in w[0].text
