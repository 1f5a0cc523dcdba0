"""Security notifications and the activity log through the official Python SDK
`ory-kratos-client` (sign-up, sign-in, a password change in a native settings flow), with the
notification read from a real SMTP server (aiosmtpd) and the activity log read with raw HTTP
requests from the idflow extension routes (`GET /self-service/settings/activity`,
`GET /v1/account/activity`, `GET /admin/identities/{id}/activity`).
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid

import ory_kratos_client
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


def get_json(url: str, headers: dict[str, str]) -> tuple[object, dict[str, str]]:
    req = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read()), dict(resp.headers)


def wait_for_notice(mail_sink, address: str, needle: str, timeout_s: float = 30.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for body in mail_sink.plain_bodies_to(address):
            if needle in body:
                return body
        time.sleep(0.1)
    raise AssertionError(f"no mail containing {needle!r} for {address}: {mail_sink.plain_bodies_to(address)}")


def test_password_change_notifies_and_is_logged(mail_frontend, mail_server, mail_sink):
    email = f"py-activity-{uuid.uuid4().hex}@example.com"
    old, new = f"Pw-{uuid.uuid4().hex}-a", f"Pw-{uuid.uuid4().hex}-b"

    flow = mail_frontend.create_native_registration_flow()
    reg = mail_frontend.update_registration_flow(
        flow=flow.id,
        update_registration_flow_body=UpdateRegistrationFlowBody(
            UpdateRegistrationFlowWithPasswordMethod(
                method="password", password=old, traits={"email": email}
            )
        ),
    )
    identity_id = reg.identity.id

    # A failed sign-in (wrong password), then a successful one.
    flow = mail_frontend.create_native_login_flow()
    try:
        mail_frontend.update_login_flow(
            flow=flow.id,
            update_login_flow_body=UpdateLoginFlowBody(
                UpdateLoginFlowWithPasswordMethod(method="password", identifier=email, password="nope-" + old)
            ),
        )
        raise AssertionError("a wrong password signed in")
    except ory_kratos_client.exceptions.BadRequestException:
        pass
    flow = mail_frontend.create_native_login_flow()
    token = mail_frontend.update_login_flow(
        flow=flow.id,
        update_login_flow_body=UpdateLoginFlowBody(
            UpdateLoginFlowWithPasswordMethod(method="password", identifier=email, password=old)
        ),
    ).session_token

    settings = mail_frontend.create_native_settings_flow(x_session_token=token)
    mail_frontend.update_settings_flow(
        flow=settings.id,
        x_session_token=token,
        update_settings_flow_body=UpdateSettingsFlowBody(
            UpdateSettingsFlowWithPasswordMethod(method="password", password=new)
        ),
    )

    # The notification reaches the account's address, with the recovery link, without secrets.
    body = wait_for_notice(mail_sink, email, "The password of your account was changed.")
    assert f"{mail_server.public_url}/self-service/recovery/browser" in body
    assert new not in body and old not in body and token not in body

    # Kratos-dialect extension route: newest first, one page at a time with a Link header.
    entries, headers = get_json(
        f"{mail_server.public_url}/self-service/settings/activity", {"X-Session-Token": token}
    )
    kinds = [(e["kind"], e["outcome"], e["method"]) for e in entries]
    # The change and the sign-out of the other sessions it caused are the newest two.
    assert set(kinds[:2]) == {
        ("settings_changed", "success", "password"),
        ("other_sessions_revoked", "success", "password"),
    }, kinds
    assert ("login", "success", "password") in kinds
    assert ("registration", "success", "password") in kinds
    assert all(e["identity_id"] == identity_id for e in entries)
    assert json.dumps(entries).find(new) == -1 and json.dumps(entries).find(token) == -1

    first, headers = get_json(
        f"{mail_server.public_url}/self-service/settings/activity?page_size=1", {"X-Session-Token": token}
    )
    assert len(first) == 1 and first[0]["id"] == entries[0]["id"]
    link = headers.get("Link") or headers.get("link")
    assert link and 'rel="next"' in link, headers
    second, _ = get_json(link[1 : link.index(">")], {"X-Session-Token": token})
    assert second[0]["id"] == entries[1]["id"]

    # v1 and admin routes see the same log.
    v1, _ = get_json(f"{mail_server.public_url}/v1/account/activity", {"Authorization": f"Bearer {token}"})
    assert [e["id"] for e in v1["activity"]] == [e["id"] for e in entries]
    assert v1["next_page_token"] is None
    admin, _ = get_json(f"{mail_server.admin_url}/admin/identities/{identity_id}/activity", {})
    # The failed sign-in is stored off the request path: wait for it.
    deadline = time.monotonic() + 10
    while not any(e["kind"] == "login" and e["outcome"] == "failure" for e in admin):
        assert time.monotonic() < deadline, admin
        time.sleep(0.1)
        admin, _ = get_json(f"{mail_server.admin_url}/admin/identities/{identity_id}/activity", {})
