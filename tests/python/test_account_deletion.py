"""Self-service account deletion through the official Python SDK `ory-kratos-client` (an idflow
extension): the settings submit with `method: delete_account` schedules the deletion, ends the
session and mails a notice (read from a real SMTP server); signing in during the grace period
offers to cancel (the login answer's `account_deletion`, kept by the SDK as an additional
property), and the cancel route keeps the account.

The SDK has no model for `delete_account`; the settings body is sent with one of its settings
models whose fields are all optional (`UpdateSettingsFlowWithLookupMethod`) with
`method="delete_account"` and the confirmation as an additional property, which the SDK puts in
the JSON body as is.
"""

from __future__ import annotations

import uuid

import httpx
import ory_kratos_client
import pytest
from ory_kratos_client.models.update_login_flow_body import UpdateLoginFlowBody
from ory_kratos_client.models.update_login_flow_with_password_method import (
    UpdateLoginFlowWithPasswordMethod,
)
from ory_kratos_client.models.update_registration_flow_body import UpdateRegistrationFlowBody
from ory_kratos_client.models.update_registration_flow_with_password_method import (
    UpdateRegistrationFlowWithPasswordMethod,
)
from ory_kratos_client.models.update_settings_flow_body import UpdateSettingsFlowBody
from ory_kratos_client.models.update_settings_flow_with_lookup_method import (
    UpdateSettingsFlowWithLookupMethod,
)


def delete_account_body(**fields) -> UpdateSettingsFlowBody:
    inner = UpdateSettingsFlowWithLookupMethod(method="delete_account")
    inner.additional_properties = dict(fields)
    return UpdateSettingsFlowBody(inner)


def test_delete_account_then_cancel_on_sign_in(mail_frontend, mail_identity_api, mail_server, mail_sink):
    email, password = f"py-delete-{uuid.uuid4().hex}@example.com", f"Pw-{uuid.uuid4().hex}-x"
    reg = mail_frontend.update_registration_flow(
        flow=mail_frontend.create_native_registration_flow().id,
        update_registration_flow_body=UpdateRegistrationFlowBody(
            UpdateRegistrationFlowWithPasswordMethod(method="password", password=password, traits={"email": email})
        ),
    )
    token = reg.session_token
    mail_sink.wait_for(email, 1)  # the verification mail of the registration

    # The settings flow offers the deletion (nodes in the `profile` group the SDK accepts).
    flow = mail_frontend.create_native_settings_flow(x_session_token=token)
    names = [getattr(n.attributes.actual_instance, "name", None) for n in flow.ui.nodes]
    assert "delete_account_confirm" in names

    # Without the confirmation: a form error (400).
    with pytest.raises(ory_kratos_client.exceptions.BadRequestException):
        mail_frontend.update_settings_flow(
            flow=flow.id, x_session_token=token, update_settings_flow_body=delete_account_body()
        )

    # Confirmed: scheduled (1050041), the session ended, the notice mailed with the cancel link.
    done = mail_frontend.update_settings_flow(
        flow=flow.id,
        x_session_token=token,
        update_settings_flow_body=delete_account_body(delete_account_confirm=True),
    )
    assert 1050041 in [m.id for m in done.ui.messages or []]
    assert done.identity.additional_properties.get("delete_after")
    with pytest.raises(ory_kratos_client.exceptions.UnauthorizedException):
        mail_frontend.to_session(x_session_token=token)
    notice = next(b for b in mail_sink.wait_for(email, 2) if "scheduled for deletion" in b)
    assert f"{mail_server.public_url}/self-service/login/browser" in notice
    admin = mail_identity_api.get_identity(id=reg.identity.id)
    assert admin.additional_properties.get("delete_after")

    # Signing in offers to cancel and cancels nothing by itself.
    login = mail_frontend.update_login_flow(
        flow=mail_frontend.create_native_login_flow().id,
        update_login_flow_body=UpdateLoginFlowBody(
            UpdateLoginFlowWithPasswordMethod(method="password", identifier=email, password=password)
        ),
    )
    offer = login.additional_properties.get("account_deletion")
    assert offer and offer["scheduled"] is True, login
    assert mail_identity_api.get_identity(id=reg.identity.id).additional_properties.get("delete_after")

    # Cancel (extension route, with the new session token): the account stays.
    r = httpx.request(offer["cancel"]["method"], offer["cancel"]["url"], headers={"X-Session-Token": login.session_token})
    assert r.status_code == 200, r.text
    assert r.json()["account_deletion"] == {"scheduled": False}
    assert "delete_after" not in mail_identity_api.get_identity(id=reg.identity.id).additional_properties
    assert mail_frontend.to_session(x_session_token=login.session_token).identity.id == reg.identity.id
