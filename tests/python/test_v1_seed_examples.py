"""The code examples of the two v1 API documents, run against idflow.

The seed documents "Create Settings Flow" and "Submit Settings" show curl commands,
JavaScript (fetch) and Python (httpx) snippets against `https://api-id.avnology.net`. Here:

* each curl command runs exactly as written (through `bash -c`, so quoting and line
  continuations behave as in a terminal), with only the base URL, the flow id, the session
  token and the CSRF token substituted;
* the httpx snippets are the documents' functions with the base URL as an added first
  parameter;
* the fetch snippets run with node (global fetch) from a temporary `.mjs` file with the base URL
  substituted.

The documents cut some snippets off; they are completed minimally, following the request the
same document shows for curl (the completions are marked below). One value in the documents is
an extraction artifact, not an example: the profile email reads `[email protected]` (an
email-protection placeholder of the page the documents were copied from); the test puts the
user's real address there.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import uuid

import httpx
import pyotp
import pytest

DOC_BASE = "https://api-id.avnology.net"
DOC_FLOW_ID = "d4e5f6a7-b8c9-0123-def0-123456789abc"
DOC_CSRF = "dG9rZW4..."
DOC_EMAIL_ARTIFACT = "[email protected]"
TIMEOUT = 30

# ---- the documents' curl commands, verbatim ---------------------------------------------------

# "Create Settings Flow" – Example Request
CURL_CREATE = """curl "https://api-id.avnology.net/v1/flows/settings" \\
-H "Authorization: Bearer avnl_ses_a1b2c3d4...\""""

# "Submit Settings" – Update Profile
CURL_UPDATE_PROFILE = """curl -X POST "https://api-id.avnology.net/v1/flows/settings/d4e5f6a7-b8c9-0123-def0-123456789abc:submit" \\
-H "Authorization: Bearer avnl_ses_..." \\
-H "Content-Type: application/json" \\
-d '{
"method": "profile",
"body": {
"traits": {
"email": "[email protected]",
"name": { "first": "Jane", "last": "Doe" }
},
"csrf_token": "dG9rZW4..."
}
}'"""

# "Submit Settings" – Change Password
CURL_CHANGE_PASSWORD = """curl -X POST "https://api-id.avnology.net/v1/flows/settings/d4e5f6a7-b8c9-0123-def0-123456789abc:submit" \\
-H "Authorization: Bearer avnl_ses_..." \\
-H "Content-Type: application/json" \\
-d '{
"method": "password",
"body": {
"password": "NewSecureP@ss2026!",
"csrf_token": "dG9rZW4..."
}
}'"""

# "Submit Settings" – Enroll TOTP
CURL_ENROLL_TOTP = """curl -X POST "https://api-id.avnology.net/v1/flows/settings/d4e5f6a7-b8c9-0123-def0-123456789abc:submit" \\
-H "Authorization: Bearer avnl_ses_..." \\
-H "Content-Type: application/json" \\
-d '{
"method": "totp",
"body": {
"totp_code": "123456",
"csrf_token": "dG9rZW4..."
}
}'"""

# "Submit Settings" – Remove TOTP
CURL_REMOVE_TOTP = """curl -X POST "https://api-id.avnology.net/v1/flows/settings/d4e5f6a7-b8c9-0123-def0-123456789abc:submit" \\
-H "Authorization: Bearer avnl_ses_..." \\
-H "Content-Type: application/json" \\
-d '{
"method": "totp",
"body": {
"totp_unlink": true,
"csrf_token": "dG9rZW4..."
}
}'"""

# The create example's token is cut off in the document ("avnl_ses_a1b2c3d4..."), the submit
# examples' token is "avnl_ses_...".
DOC_TOKENS = ("avnl_ses_a1b2c3d4...", "avnl_ses_...")

# ---- the documents' JavaScript (fetch) snippets ------------------------------------------------

# "Create Settings Flow" – complete in the document.
JS_CREATE_SETTINGS_FLOW = """async function createSettingsFlow(sessionToken) {
const response = await fetch('https://api-id.avnology.net/v1/flows/settings', {
headers: { 'Authorization': `Bearer ${sessionToken}` },
});
return response.json();
}"""

# "Submit Settings" – cut off after the Authorization header; completed (marked) with the
# Content-Type header and the `{method, body}` envelope of the curl example.
JS_CHANGE_PASSWORD = """async function changePassword(flowId, newPassword, csrfToken, sessionToken) {
return fetch(`https://api-id.avnology.net/v1/flows/settings/${flowId}:submit`, {
method: 'POST',
headers: {
'Authorization': `Bearer ${sessionToken}`
, 'Content-Type': 'application/json', // completed
}, // completed
body: JSON.stringify({ method: 'password', body: { password: newPassword, csrf_token: csrfToken } }), // completed
}); // completed
} // completed"""


# ---- the documents' Python (httpx) snippets, with the base URL as a parameter ---------------


def create_settings_flow(base_url: str, session_token: str) -> dict:
    return httpx.get(
        f"{base_url}/v1/flows/settings",
        headers={"Authorization": f"Bearer {session_token}"},  # completed: cut off after "Bearer
        timeout=TIMEOUT,
    ).json()


def change_password(base_url: str, flow_id: str, new_password: str, csrf_token: str, session_token: str) -> dict:
    return httpx.post(
        f"{base_url}/v1/flows/settings/{flow_id}:submit",
        # completed from here: the document stops inside the URL
        headers={"Authorization": f"Bearer {session_token}", "Content-Type": "application/json"},
        json={"method": "password", "body": {"password": new_password, "csrf_token": csrf_token}},
        timeout=TIMEOUT,
    ).json()


# ---- helpers ----------------------------------------------------------------------------------


def new_email() -> str:
    return f"seed-{uuid.uuid4().hex}@example.com"


def register(base_url: str) -> tuple[str, str]:
    """A new user through the v1 registration flow: (email, session token)."""
    email = new_email()
    flow = httpx.get(f"{base_url}/v1/flows/registration", timeout=TIMEOUT).json()
    resp = httpx.post(
        f"{base_url}/v1/flows/registration/{flow['id']}:submit",
        json={"method": "password", "body": {"traits": {"email": email}, "password": f"Pw-{uuid.uuid4().hex}"}},
        timeout=TIMEOUT,
    )
    assert resp.status_code == 200, resp.text
    return email, resp.json()["session_token"]


def new_flow(base_url: str, token: str) -> dict:
    resp = httpx.get(f"{base_url}/v1/flows/settings", headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)
    assert resp.status_code == 200, resp.text
    return resp.json()


def csrf_of(flow: dict) -> str:
    for n in flow["ui"]["nodes"]:
        if n["attributes"].get("name") == "csrf_token":
            return n["attributes"].get("value", "")
    return ""


def node(flow: dict, name: str) -> dict | None:
    for n in flow["ui"]["nodes"]:
        a = n["attributes"]
        if a.get("name") == name or a.get("id") == name:
            return n
    return None


def run_curl(command: str, base_url: str, *, flow_id: str | None = None, token: str | None = None,
             csrf: str | None = None, extra: dict[str, str] | None = None) -> dict:
    """Run a documented curl command with the allowed substitutions; returns the JSON body."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    cmd = command.replace(DOC_BASE, base_url)
    if flow_id is not None:
        cmd = cmd.replace(DOC_FLOW_ID, flow_id)
    if token is not None:
        for t in DOC_TOKENS:
            cmd = cmd.replace(t, token)
    if csrf is not None:
        cmd = cmd.replace(DOC_CSRF, csrf)
    for old, new in (extra or {}).items():
        cmd = cmd.replace(old, new)
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, f"curl failed ({proc.returncode}): {proc.stderr}"
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"curl output is not JSON: {proc.stdout[:500]!r}")


def run_node(source: str, base_url: str, tmp_path) -> dict:
    """Run an ES module with the documented base URL replaced; it prints one JSON value."""
    node_bin = shutil.which("node")
    if node_bin is None:
        pytest.skip("node is not installed")
    path = tmp_path / f"snippet-{uuid.uuid4().hex}.mjs"
    path.write_text(source.replace(DOC_BASE, base_url))
    proc = subprocess.run([node_bin, str(path)], capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, f"node failed ({proc.returncode}): {proc.stderr}"
    return json.loads(proc.stdout)


def assert_v1_error(body: dict, code: str, status: int) -> None:
    err = body.get("error")
    assert isinstance(err, dict), body
    assert err["code"] == code, body
    assert err["status"] == status, body
    assert err["message"], body
    assert isinstance(err["details"], dict), body


def assert_success(body: dict, flow_id: str) -> dict:
    cf = body.get("continue_flow")
    assert isinstance(cf, dict), body
    assert cf["id"] == flow_id
    assert cf["type"] == "settings"
    assert cf["state"] == "success", body
    assert cf["ui"]["messages"][0]["id"] == "1050001"
    assert cf["ui"]["messages"][0]["type"] == "success"
    return cf


def password_works(base_url: str, email: str, password: str) -> bool:
    flow = httpx.get(f"{base_url}/v1/flows/login", timeout=TIMEOUT).json()
    resp = httpx.post(
        f"{base_url}/v1/flows/login/{flow['id']}:submit",
        json={"method": "password", "body": {"identifier": email, "password": password}},
        timeout=TIMEOUT,
    )
    return resp.status_code == 200


# ---- curl -------------------------------------------------------------------------------------


def test_curl_create_settings_flow(server):
    base = server.public_url
    _, token = register(base)
    flow = run_curl(CURL_CREATE, base, token=token)
    assert flow["type"] == "settings"
    assert flow["state"] == "show_form"
    assert flow["ui"]["method"] == "POST"
    assert flow["ui"]["action"] == f"{base}/v1/flows/settings/{flow['id']}:submit"
    assert "expires_at" in flow
    groups = {n["group"] for n in flow["ui"]["nodes"]}
    assert {"profile", "password", "totp"} <= groups, groups

    # As written (the document's placeholder token): 401 AVNOLOGY_AUTH_005 from the error table.
    assert_v1_error(run_curl(CURL_CREATE, base), "AVNOLOGY_AUTH_005", 401)


def test_curl_update_profile(server):
    base = server.public_url
    email, token = register(base)
    flow = new_flow(base, token)
    body = run_curl(CURL_UPDATE_PROFILE, base, flow_id=flow["id"], token=token, csrf=csrf_of(flow),
                    extra={DOC_EMAIL_ARTIFACT: email})
    cf = assert_success(body, flow["id"])
    assert cf["ui"]["messages"][0]["text"] == "Your profile has been updated."
    assert cf["identity"]["traits"] == {"email": email, "name": {"first": "Jane", "last": "Doe"}}

    # As written, the placeholder is no email address: 400 AVNOLOGY_AUTH_010 with the form.
    flow = new_flow(base, token)
    body = run_curl(CURL_UPDATE_PROFILE, base, flow_id=flow["id"], token=token)
    assert_v1_error(body, "AVNOLOGY_AUTH_010", 400)
    email_node = node(body["continue_flow"], "traits.email")
    assert email_node and email_node["messages"], body
    assert all(isinstance(m["id"], str) for m in email_node["messages"])


def test_curl_change_password(server):
    base = server.public_url
    email, token = register(base)
    flow = new_flow(base, token)
    body = run_curl(CURL_CHANGE_PASSWORD, base, flow_id=flow["id"], token=token, csrf=csrf_of(flow))
    assert_success(body, flow["id"])
    assert password_works(base, email, "NewSecureP@ss2026!")

    # An unknown flow id as written in the document: 404 AVNOLOGY_AUTH_004.
    assert_v1_error(run_curl(CURL_CHANGE_PASSWORD, base, token=token), "AVNOLOGY_AUTH_004", 404)


def test_curl_enroll_and_remove_totp(server):
    base = server.public_url
    _, token = register(base)
    flow = new_flow(base, token)
    secret_node = node(flow, "totp_secret_key")
    assert secret_node is not None
    secret = secret_node["attributes"]["text"]["context"]["secret"]
    totp = pyotp.TOTP(secret)

    # The document's code "123456" is (almost surely) wrong for this secret: AVNOLOGY_AUTH_007
    # with the flow, whose QR code image node the document shows.
    body = run_curl(CURL_ENROLL_TOTP, base, flow_id=flow["id"], token=token, csrf=csrf_of(flow))
    if totp.verify("123456", valid_window=1):
        assert_success(body, flow["id"])
    else:
        assert_v1_error(body, "AVNOLOGY_AUTH_007", 400)
        cf = body["continue_flow"]
        qr = node(cf, "totp_qr")
        assert qr["type"] == "image" and qr["group"] == "totp"
        assert qr["attributes"]["src"].startswith("data:image/png;base64,iVBORw0KGgo")
        assert (qr["attributes"]["width"], qr["attributes"]["height"]) == (256, 256)
        png = base64.b64decode(qr["attributes"]["src"].split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert node(cf, "totp_code")["messages"][0]["id"] == "4000008"
        # The same command with the app's current code (a one-time token) enrols.
        body = run_curl(CURL_ENROLL_TOTP, base, flow_id=flow["id"], token=token, csrf=csrf_of(flow),
                        extra={'"totp_code": "123456"': f'"totp_code": "{totp.now()}"'})
        assert_success(body, flow["id"])
    session = httpx.get(f"{base}/v1/sessions/current", headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT).json()
    assert session["authenticator_assurance_level"] == "aal2"

    flow = new_flow(base, token)
    assert node(flow, "totp_unlink") is not None
    body = run_curl(CURL_REMOVE_TOTP, base, flow_id=flow["id"], token=token, csrf=csrf_of(flow))
    cf = assert_success(body, flow["id"])
    assert node(cf, "totp_unlink") is None
    assert node(cf, "totp_qr") is not None


# ---- Python (httpx) ---------------------------------------------------------------------------


def test_httpx_snippets(server):
    base = server.public_url
    email, token = register(base)
    flow = create_settings_flow(base, token)
    assert flow["type"] == "settings"
    assert flow["ui"]["action"].startswith(f"{base}/v1/flows/settings/")

    # Too weak: 400 AVNOLOGY_AUTH_011 with the form.
    body = change_password(base, flow["id"], "short", csrf_of(flow), token)
    assert_v1_error(body, "AVNOLOGY_AUTH_011", 400)
    assert node(body["continue_flow"], "password")["messages"][0]["id"] == "4000032"

    new_password = f"Httpx-{uuid.uuid4().hex}"
    body = change_password(base, flow["id"], new_password, csrf_of(flow), token)
    assert_success(body, flow["id"])
    assert password_works(base, email, new_password)

    # A revoked session: 401 AVNOLOGY_AUTH_005.
    resp = httpx.delete(f"{base}/v1/sessions/current", headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)
    assert resp.status_code == 204
    assert_v1_error(create_settings_flow(base, token), "AVNOLOGY_AUTH_005", 401)


# ---- JavaScript (fetch) -----------------------------------------------------------------------


def test_fetch_snippets(server, tmp_path):
    base = server.public_url
    email, token = register(base)
    new_password = f"Fetch-{uuid.uuid4().hex}"
    source = (
        JS_CREATE_SETTINGS_FLOW
        + "\n\n"
        + JS_CHANGE_PASSWORD
        + "\n\n"
        + "const token = " + json.dumps(token) + ";\n"
        + "const flow = await createSettingsFlow(token);\n"
        + "const csrf = (flow.ui.nodes.find((n) => n.attributes.name === 'csrf_token')?.attributes.value) ?? '';\n"
        + "const weak = await changePassword(flow.id, 'short', csrf, token);\n"
        + "const strong = await changePassword(flow.id, " + json.dumps(new_password) + ", csrf, token);\n"
        + "console.log(JSON.stringify({ flow, weak: { status: weak.status, body: await weak.json() },"
        + " strong: { status: strong.status, body: await strong.json() } }));\n"
    )
    out = run_node(source, base, tmp_path)
    flow = out["flow"]
    assert flow["type"] == "settings"
    assert flow["ui"]["action"] == f"{base}/v1/flows/settings/{flow['id']}:submit"
    assert out["weak"]["status"] == 400
    assert_v1_error(out["weak"]["body"], "AVNOLOGY_AUTH_011", 400)
    assert out["strong"]["status"] == 200
    assert_success(out["strong"]["body"], flow["id"])
    assert password_works(base, email, new_password)

    # createSettingsFlow with a wrong token: the v1 envelope with AVNOLOGY_AUTH_005.
    bad = JS_CREATE_SETTINGS_FLOW + "\nconsole.log(JSON.stringify(await createSettingsFlow('avnl_ses_a1b2c3d4...')));\n"
    assert_v1_error(run_node(bad, base, tmp_path), "AVNOLOGY_AUTH_005", 401)
