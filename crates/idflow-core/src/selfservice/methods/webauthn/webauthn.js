/*
 * idflow WebAuthn helper, served at /.well-known/ory/webauthn.js (the `webauthn_script` node).
 *
 * Pages need no inline script: buttons named webauthn_register_trigger, webauthn_login_trigger,
 * passkey_register_trigger and passkey_login_trigger (or any element with a
 * data-onclick-trigger="<function name>" attribute) get a click listener. The functions are also
 * exported on window under the names of the nodes' `onclickTrigger` attribute:
 *
 *   oryWebAuthnRegistration(options)   security key registration (settings)
 *   oryWebAuthnLogin(options)          security key sign-in (login)
 *   oryPasskeySettingsRegistration()   passkey registration (settings, options in passkey_create_data)
 *   oryPasskeyLogin()                  passkey sign-in (login, options in passkey_challenge)
 *   oryPasskeyLoginAutocompleteInit()  passkey autofill (conditional mediation), started on load
 *
 * Each calls navigator.credentials.create/get, base64url-encodes the result as JSON into the
 * hidden input of its node group and submits the form with the method's name.
 */
(function () {
  "use strict";

  function b64uDecode(s) {
    var b64 = String(s).replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) {
      b64 += "=";
    }
    var bin = atob(b64);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) {
      out[i] = bin.charCodeAt(i);
    }
    return out.buffer;
  }

  function b64uEncode(buf) {
    if (!buf) {
      return null;
    }
    var bytes = new Uint8Array(buf);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) {
      bin += String.fromCharCode(bytes[i]);
    }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function parse(opts) {
    return typeof opts === "string" ? JSON.parse(opts) : opts;
  }

  function creationOptions(opts) {
    var pk = Object.assign({}, parse(opts).publicKey);
    pk.challenge = b64uDecode(pk.challenge);
    pk.user = Object.assign({}, pk.user, { id: b64uDecode(pk.user.id) });
    if (pk.excludeCredentials) {
      pk.excludeCredentials = pk.excludeCredentials.map(function (c) {
        return Object.assign({}, c, { id: b64uDecode(c.id) });
      });
    }
    return { publicKey: pk };
  }

  function requestOptions(opts) {
    var pk = Object.assign({}, parse(opts).publicKey);
    pk.challenge = b64uDecode(pk.challenge);
    if (pk.allowCredentials) {
      pk.allowCredentials = pk.allowCredentials.map(function (c) {
        return Object.assign({}, c, { id: b64uDecode(c.id) });
      });
    }
    return { publicKey: pk };
  }

  function extensions(cred) {
    try {
      return cred.getClientExtensionResults ? cred.getClientExtensionResults() : {};
    } catch (e) {
      return {};
    }
  }

  function registrationJSON(cred) {
    var r = cred.response;
    return JSON.stringify({
      id: cred.id,
      rawId: b64uEncode(cred.rawId),
      type: cred.type,
      response: {
        attestationObject: b64uEncode(r.attestationObject),
        clientDataJSON: b64uEncode(r.clientDataJSON),
        transports: r.getTransports ? r.getTransports() : undefined,
      },
      extensions: extensions(cred),
    });
  }

  function assertionJSON(cred) {
    var r = cred.response;
    return JSON.stringify({
      id: cred.id,
      rawId: b64uEncode(cred.rawId),
      type: cred.type,
      response: {
        authenticatorData: b64uEncode(r.authenticatorData),
        clientDataJSON: b64uEncode(r.clientDataJSON),
        signature: b64uEncode(r.signature),
        userHandle: b64uEncode(r.userHandle),
      },
      extensions: extensions(cred),
    });
  }

  function byName(name) {
    return document.querySelector('[name="' + name + '"]');
  }

  function formOf(name) {
    var el = byName(name);
    return el ? el.form || el.closest("form") : null;
  }

  function supported() {
    if (!window.PublicKeyCredential || !navigator.credentials) {
      window.alert("This browser does not support security keys or passkeys (WebAuthn).");
      return false;
    }
    return true;
  }

  function fail(err) {
    if (err && err.name === "AbortError") {
      return;
    }
    window.alert((err && err.message) || String(err));
  }

  // Put `value` into the hidden input `field`, add the method and submit the form.
  function submitWith(field, value, method) {
    var input = byName(field);
    if (!input) {
      return;
    }
    var form = input.form || input.closest("form");
    input.value = value;
    if (form) {
      var m = document.createElement("input");
      m.type = "hidden";
      m.name = "method";
      m.value = method;
      form.appendChild(m);
      form.submit();
    }
  }

  var conditional = null;

  function cancelConditional() {
    if (conditional) {
      conditional.abort();
      conditional = null;
    }
  }

  window.oryWebAuthnRegistration = function (opts) {
    if (!supported()) {
      return;
    }
    var name = byName("webauthn_register_displayname");
    if (name && !name.value) {
      name.required = true;
      if (name.reportValidity) {
        name.reportValidity();
      }
      name.focus();
      return;
    }
    navigator.credentials
      .create(creationOptions(opts))
      .then(function (cred) {
        submitWith("webauthn_register", registrationJSON(cred), "webauthn");
      })
      .catch(fail);
  };

  window.oryWebAuthnLogin = function (opts) {
    if (!supported()) {
      return;
    }
    cancelConditional();
    navigator.credentials
      .get(requestOptions(opts))
      .then(function (cred) {
        submitWith("webauthn_login", assertionJSON(cred), "webauthn");
      })
      .catch(fail);
  };

  window.oryPasskeySettingsRegistration = function () {
    if (!supported()) {
      return;
    }
    var data = byName("passkey_create_data");
    if (!data || !data.value) {
      return;
    }
    var create = JSON.parse(data.value);
    navigator.credentials
      .create(creationOptions(create.credentialOptions))
      .then(function (cred) {
        submitWith("passkey_settings_register", registrationJSON(cred), "passkey");
      })
      .catch(fail);
  };

  window.oryPasskeyLogin = function () {
    if (!supported()) {
      return;
    }
    var challenge = byName("passkey_challenge");
    if (!challenge || !challenge.value) {
      return;
    }
    cancelConditional();
    navigator.credentials
      .get(requestOptions(challenge.value))
      .then(function (cred) {
        submitWith("passkey_login", assertionJSON(cred), "passkey");
      })
      .catch(fail);
  };

  window.oryPasskeyLoginAutocompleteInit = function () {
    var challenge = byName("passkey_challenge");
    if (!challenge || !challenge.value || !window.PublicKeyCredential) {
      return;
    }
    var check = PublicKeyCredential.isConditionalMediationAvailable;
    if (!check) {
      return;
    }
    check.call(PublicKeyCredential).then(function (ok) {
      if (!ok) {
        return;
      }
      cancelConditional();
      conditional = new AbortController();
      var opts = requestOptions(challenge.value);
      opts.mediation = "conditional";
      opts.signal = conditional.signal;
      navigator.credentials
        .get(opts)
        .then(function (cred) {
          submitWith("passkey_login", assertionJSON(cred), "passkey");
        })
        .catch(fail);
    });
  };

  var defaults = {
    webauthn_register_trigger: "oryWebAuthnRegistration",
    webauthn_login_trigger: "oryWebAuthnLogin",
    passkey_register_trigger: "oryPasskeySettingsRegistration",
    passkey_login_trigger: "oryPasskeyLogin",
  };
  var withOptions = { oryWebAuthnRegistration: true, oryWebAuthnLogin: true };

  function bind() {
    var sel = Object.keys(defaults)
      .map(function (n) {
        return '[name="' + n + '"]';
      })
      .concat(["[data-onclick-trigger]"])
      .join(",");
    document.querySelectorAll(sel).forEach(function (el) {
      if (el.getAttribute("data-ory-bound")) {
        return;
      }
      el.setAttribute("data-ory-bound", "1");
      el.addEventListener("click", function (ev) {
        var fn = el.getAttribute("data-onclick-trigger") || defaults[el.getAttribute("name")];
        if (typeof window[fn] !== "function") {
          return;
        }
        ev.preventDefault();
        if (withOptions[fn]) {
          window[fn](el.getAttribute("data-options") || el.value);
        } else {
          window[fn]();
        }
      });
    });
    var ident = document.querySelector('input[autocomplete~="webauthn"]');
    if (ident && byName("passkey_challenge")) {
      window.oryPasskeyLoginAutocompleteInit();
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", bind);
  } else {
    bind();
  }
})();
