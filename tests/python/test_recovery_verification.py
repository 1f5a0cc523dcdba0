"""Account recovery and address verification driven by the official Python SDK
`ory-kratos-client`, with every code read from mail that a real SMTP server (aiosmtpd) received
from idflow's courier.

- Recovery (API flow): ask for a code, read it from the mail, submit it, get a session token and
  a settings flow, set a new password in that settings flow, sign in with it.
- Verification (API flow): registration mails a code to the new address; a verification flow
  sends another one, and submitting it marks the address verified (admin API).
- Email change (API flow): a settings change of the email waits for the code mailed to the new
  address (the old one gets a notice); submitting it moves the identifier.
"""

from __future__ import annotations

import re
import uuid

import ory_kratos_client
from ory_kratos_client.api.frontend_api import FrontendApi
from ory_kratos_client.models.update_login_flow_body import UpdateLoginFlowBody
from ory_kratos_client.models.update_login_flow_with_password_method import (
    UpdateLoginFlowWithPasswordMethod,
)
from ory_kratos_client.models.update_recovery_flow_body import UpdateRecoveryFlowBody
from ory_kratos_client.models.update_recovery_flow_with_code_method import (
    UpdateRecoveryFlowWithCodeMethod,
)
from ory_kratos_client.models.update_registration_flow_body import UpdateRegistrationFlowBody
from ory_kratos_client.models.update_registration_flow_with_password_method import (
    UpdateRegistrationFlowWithPasswordMethod,
)
from ory_kratos_client.models.update_settings_flow_body import UpdateSettingsFlowBody
from ory_kratos_client.models.update_settings_flow_with_password_method import (
    UpdateSettingsFlowWithPasswordMethod,
)
from ory_kratos_client.models.update_verification_flow_body import UpdateVerificationFlowBody
from ory_kratos_client.models.update_verification_flow_with_code_method import (
    UpdateVerificationFlowWithCodeMethod,
)

CODE = re.compile(r"\b(\d{6})\b")


def new_email() -> str:
    return f"py-mail-{uuid.uuid4().hex}@example.com"


def new_password() -> str:
    return f"Pw-{uuid.uuid4().hex}-x"


def code_in(body: str) -> str:
    m = CODE.search(body)
    assert m, f"no six-digit code in the mail:\n{body}"
    return m.group(1)


def register(frontend: FrontendApi, email: str, password: str):
    flow = frontend.create_native_registration_flow()
    body = UpdateRegistrationFlowBody(
        UpdateRegistrationFlowWithPasswordMethod(
            method="password", password=password, traits={"email": email}
        )
    )
    return frontend.update_registration_flow(flow=flow.id, update_registration_flow_body=body)


def login_token(frontend: FrontendApi, email: str, password: str) -> str:
    flow = frontend.create_native_login_flow()
    body = UpdateLoginFlowBody(
        UpdateLoginFlowWithPasswordMethod(method="password", identifier=email, password=password)
    )
    return frontend.update_login_flow(flow=flow.id, update_login_flow_body=body).session_token


def continue_with(flow) -> list[dict]:
    """The flow's `continue_with` items as plain dicts (whatever model the SDK picked)."""
    out = []
    for item in flow.continue_with or []:
        inner = getattr(item, "actual_instance", item)
        out.append(inner.to_dict() if hasattr(inner, "to_dict") else dict(inner))
    return out


def test_recovery_with_a_mailed_code_then_new_password(mail_frontend, mail_server, mail_sink):
    email, old = new_email(), new_password()
    register(mail_frontend, email, old)
    # Registration mails a verification code first; the recovery code comes in a second mail.
    mail_sink.wait_for(email, 1)

    flow = mail_frontend.create_native_recovery_flow()
    sent = mail_frontend.update_recovery_flow(
        flow=flow.id,
        update_recovery_flow_body=UpdateRecoveryFlowBody(
            UpdateRecoveryFlowWithCodeMethod(method="code", email=email)
        ),
    )
    assert getattr(sent.state, "value", sent.state) == "sent_email"
    recovery_mails = [b for b in mail_sink.wait_for(email, 2) if "recover" in b.lower()]
    assert len(recovery_mails) == 1, mail_sink.plain_bodies_to(email)
    code = code_in(recovery_mails[0])

    done = mail_frontend.update_recovery_flow(
        flow=flow.id,
        update_recovery_flow_body=UpdateRecoveryFlowBody(
            UpdateRecoveryFlowWithCodeMethod(method="code", code=code)
        ),
    )
    items = continue_with(done)
    token = next(i["ory_session_token"] for i in items if i.get("action") == "set_ory_session_token")
    settings_id = next(i["flow"]["id"] for i in items if i.get("action") == "show_settings_ui")

    # The recovered session changes the password in the settings flow it was given.
    new = new_password()
    settings = mail_frontend.get_settings_flow(id=settings_id, x_session_token=token)
    assert 1060001 in [m.id for m in settings.ui.messages or []]
    mail_frontend.update_settings_flow(
        flow=settings_id,
        x_session_token=token,
        update_settings_flow_body=UpdateSettingsFlowBody(
            UpdateSettingsFlowWithPasswordMethod(method="password", password=new)
        ),
    )
    assert login_token(mail_frontend, email, new)
    try:
        login_token(mail_frontend, email, old)
        raise AssertionError("the old password still works")
    except ory_kratos_client.exceptions.BadRequestException:
        pass


def test_recovery_of_an_unknown_address_looks_the_same(mail_frontend, mail_server, mail_sink):
    email = new_email()
    flow = mail_frontend.create_native_recovery_flow()
    sent = mail_frontend.update_recovery_flow(
        flow=flow.id,
        update_recovery_flow_body=UpdateRecoveryFlowBody(
            UpdateRecoveryFlowWithCodeMethod(method="code", email=email)
        ),
    )
    assert getattr(sent.state, "value", sent.state) == "sent_email"
    assert mail_sink.plain_bodies_to(email) == [], "no mail to an address without an account"


def test_verification_with_a_mailed_code(mail_frontend, mail_identity_api, mail_server, mail_sink):
    email = new_email()
    reg = register(mail_frontend, email, new_password())
    # Registration mailed a code to the new, unverified address.
    mail_sink.wait_for(email, 1)

    flow = mail_frontend.create_native_verification_flow()
    mail_frontend.update_verification_flow(
        flow=flow.id,
        update_verification_flow_body=UpdateVerificationFlowBody(
            UpdateVerificationFlowWithCodeMethod(method="code", email=email)
        ),
    )
    mails = mail_sink.wait_for(email, 2)
    code = code_in(mails[-1])
    done = mail_frontend.update_verification_flow(
        flow=flow.id,
        update_verification_flow_body=UpdateVerificationFlowBody(
            UpdateVerificationFlowWithCodeMethod(method="code", code=code)
        ),
    )
    assert getattr(done.state, "value", done.state) == "passed_challenge"
    identity = mail_identity_api.get_identity(id=reg.identity.id)
    address = next(a for a in identity.verifiable_addresses if a.value == email)
    assert address.verified is True
    assert address.verified_at is not None


def test_email_change_is_verified_before_it_applies(mail_frontend, mail_identity_api, mail_server, mail_sink):
    """Changing the email in settings keeps the old one until the code mailed to the new address
    is submitted; the old address gets a notice without the code."""
    from ory_kratos_client.models.update_settings_flow_with_profile_method import (
        UpdateSettingsFlowWithProfileMethod,
    )

    email, password = new_email(), new_password()
    reg = register(mail_frontend, email, password)
    mail_sink.wait_for(email, 1)
    token = reg.session_token
    new = new_email()

    flow = mail_frontend.create_native_settings_flow(x_session_token=token)
    done = mail_frontend.update_settings_flow(
        flow=flow.id,
        x_session_token=token,
        update_settings_flow_body=UpdateSettingsFlowBody(
            UpdateSettingsFlowWithProfileMethod(method="profile", traits={"email": new})
        ),
    )
    # Not applied yet: the flow shows the pending change and names the verification flow.
    assert done.identity.traits["email"] == email
    shown = done.to_dict()
    email_node = next(n for n in shown["ui"]["nodes"] if n["attributes"].get("name") == "traits.email")
    assert [m["id"] for m in email_node["messages"]] == [1050050], email_node
    assert any(
        n["attributes"].get("name") == "cancel_pending" and n["attributes"].get("value") == "traits.email"
        for n in shown["ui"]["nodes"]
    )
    item = next(i for i in continue_with(done) if i.get("action") == "show_verification_ui")
    assert item["flow"]["verifiable_address"] == new

    code = code_in(mail_sink.wait_for(new, 1)[0])
    notice = mail_sink.wait_for(email, 2)[1]
    assert code not in notice and new not in notice, notice
    assert login_token(mail_frontend, email, password), "the old identifier still signs in"

    verified = mail_frontend.update_verification_flow(
        flow=item["flow"]["id"],
        update_verification_flow_body=UpdateVerificationFlowBody(
            UpdateVerificationFlowWithCodeMethod(method="code", code=code)
        ),
    )
    assert getattr(verified.state, "value", verified.state) == "passed_challenge"
    identity = mail_identity_api.get_identity(id=reg.identity.id)
    assert identity.traits["email"] == new
    assert [(a.value, a.verified) for a in identity.verifiable_addresses] == [(new, True)]
    assert login_token(mail_frontend, new, password)
    try:
        login_token(mail_frontend, email, password)
        raise AssertionError("the old identifier still works after the change")
    except ory_kratos_client.exceptions.BadRequestException:
        pass
