// idflow self-service UI: the WebAuthn/passkey ceremonies behind buttons that carry a
// `data-trigger` (the node's `onclickTrigger`) or fields with `data-onload-trigger`.
// No inline handlers: the page's CSP allows only this file. Everything else works without it.
(function () {
  'use strict';
  document.documentElement.classList.add('js');

  function b64uDecode(s) {
    var b64 = String(s).replace(/-/g, '+').replace(/_/g, '/');
    while (b64.length % 4) b64 += '=';
    var bin = atob(b64);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function b64uEncode(buf) {
    if (!buf) return '';
    var bytes = new Uint8Array(buf);
    var bin = '';
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function parse(v) {
    if (!v) return null;
    try { return JSON.parse(v); } catch (e) { return null; }
  }

  // Options may come as {publicKey: {...}}, {credentialOptions: {publicKey}} or bare publicKey.
  function publicKeyOf(o) {
    if (!o) return null;
    if (o.credentialOptions) o = o.credentialOptions;
    return o.publicKey || o;
  }

  function creationOptions(o) {
    var pk = publicKeyOf(o);
    if (!pk || !pk.challenge || !pk.user) return null;
    pk.challenge = b64uDecode(pk.challenge);
    pk.user.id = b64uDecode(pk.user.id);
    if (pk.excludeCredentials) {
      pk.excludeCredentials = pk.excludeCredentials.map(function (c) { return Object.assign({}, c, { id: b64uDecode(c.id) }); });
    }
    return { publicKey: pk };
  }

  function requestOptions(o) {
    var pk = publicKeyOf(o);
    if (!pk || !pk.challenge) return null;
    pk.challenge = b64uDecode(pk.challenge);
    if (pk.allowCredentials) {
      pk.allowCredentials = pk.allowCredentials.map(function (c) { return Object.assign({}, c, { id: b64uDecode(c.id) }); });
    }
    return { publicKey: pk };
  }

  function attestationJSON(c) {
    return JSON.stringify({
      id: c.id, rawId: b64uEncode(c.rawId), type: c.type,
      response: {
        attestationObject: b64uEncode(c.response.attestationObject),
        clientDataJSON: b64uEncode(c.response.clientDataJSON),
        transports: c.response.getTransports ? c.response.getTransports() : undefined,
      },
    });
  }

  function assertionJSON(c) {
    return JSON.stringify({
      id: c.id, rawId: b64uEncode(c.rawId), type: c.type,
      response: {
        authenticatorData: b64uEncode(c.response.authenticatorData),
        clientDataJSON: b64uEncode(c.response.clientDataJSON),
        signature: b64uEncode(c.response.signature),
        userHandle: b64uEncode(c.response.userHandle),
      },
    });
  }

  function field(form, name) {
    var sel = '[name="' + name + '"]';
    return (form && form.querySelector(sel)) || document.querySelector(sel);
  }

  function showError(form, text) {
    var el = form && form.querySelector('.js-error');
    if (el) { el.textContent = text; el.hidden = false; }
  }

  function submitWith(form, name, value, method) {
    // form.submit() sends no button value: name the method explicitly.
    var m = document.createElement('input');
    m.type = 'hidden';
    m.name = 'method';
    m.value = method;
    form.appendChild(m);
    var out = field(form, name);
    if (!out) {
      out = document.createElement('input');
      out.type = 'hidden';
      out.name = name;
      form.appendChild(out);
    }
    out.value = value;
    // Move the result into the form that is submitted (it may live elsewhere on the page).
    if (out.form !== form) form.appendChild(out);
    form.submit();
  }

  // trigger -> [where the options are, how to use them, result field]
  var triggers = {
    oryWebAuthnRegistration: { create: true, from: function (btn) { return parse(btn.value); }, result: 'webauthn_register', displayName: 'webauthn_register_displayname' },
    oryWebAuthnLogin: { create: false, from: function (btn) { return parse(btn.value); }, result: 'webauthn_login' },
    oryPasskeyRegistration: { create: true, from: function (btn, form) { var f = field(form, 'passkey_create_data'); return parse(f && f.value); }, result: 'passkey_register' },
    oryPasskeySettingsRegistration: { create: true, from: function (btn, form) { var f = field(form, 'passkey_create_data'); return parse(f && f.value); }, result: 'passkey_settings_register' },
    oryPasskeyLogin: { create: false, from: function (btn, form) { var f = field(form, 'passkey_challenge'); return parse(f && f.value); }, result: 'passkey_login' },
  };

  function run(name, btn) {
    var t = triggers[name];
    var form = btn.closest('form');
    if (!t || !form) return;
    if (!window.PublicKeyCredential || !navigator.credentials) {
      showError(form, 'This browser does not support security keys or passkeys.');
      return;
    }
    var raw = t.from(btn, form);
    // A registration may name the form field that holds the user's display name.
    if (t.create && raw && raw.displayNameFieldName) {
      var dn = field(form, raw.displayNameFieldName);
      var pk = publicKeyOf(raw);
      if (dn && dn.value && pk && pk.user) { pk.user.name = dn.value; pk.user.displayName = dn.value; }
    }
    if (t.create && t.displayName) {
      var dnf = field(form, t.displayName);
      var pk2 = publicKeyOf(raw);
      if (dnf && dnf.value && pk2 && pk2.user) { pk2.user.displayName = dnf.value; }
    }
    var opts = t.create ? creationOptions(raw) : requestOptions(raw);
    if (!opts) {
      showError(form, 'The security key request is incomplete. Reload the page and try again.');
      return;
    }
    btn.disabled = true;
    var p = t.create ? navigator.credentials.create(opts) : navigator.credentials.get(opts);
    p.then(function (cred) {
      submitWith(form, t.result, t.create ? attestationJSON(cred) : assertionJSON(cred), name.indexOf('oryPasskey') === 0 ? 'passkey' : 'webauthn');
    }).catch(function (err) {
      btn.disabled = false;
      showError(form, (err && err.name === 'NotAllowedError')
        ? 'The request was cancelled or timed out. Please try again.'
        : 'The security key or passkey could not be used: ' + (err && err.message ? err.message : err));
    });
  }

  // A method may ship its own script (a `script` node) that binds these buttons itself; it
  // handles the click first (and prevents the default), then this is only the fallback.
  document.addEventListener('click', function (ev) {
    var btn = ev.target.closest && ev.target.closest('[data-trigger]');
    if (!btn || ev.defaultPrevented) return;
    ev.preventDefault();
    run(btn.getAttribute('data-trigger'), btn);
  });

  // Passkey autofill on the login page (conditional mediation), when the browser offers it.
  function autocompleteInit(el) {
    var form = el.closest('form');
    var f = field(form, 'passkey_challenge');
    var opts = requestOptions(parse(f && f.value));
    if (!opts || !window.PublicKeyCredential || !PublicKeyCredential.isConditionalMediationAvailable) return;
    PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
      if (!ok) return;
      opts.mediation = 'conditional';
      return navigator.credentials.get(opts).then(function (cred) {
        submitWith(form, 'passkey_login', assertionJSON(cred), 'passkey');
      });
    }).catch(function () { /* the user can still use the button */ });
  }

  var methodScript = document.querySelector('form script[src]');
  document.querySelectorAll('[data-onload-trigger]').forEach(function (el) {
    if (methodScript) return;
    if (el.getAttribute('data-onload-trigger') === 'oryPasskeyLoginAutocompleteInit') autocompleteInit(el);
  });
})();
