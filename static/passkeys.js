/* Passkeys (WebAuthn) for Portcullis: no build step, no inline script (CSP default-src 'self').
   The server speaks JSON with base64url for binary fields; this file converts both ways. */
(function () {
  "use strict";

  function fromB64url(value) {
    var text = value.replace(/-/g, "+").replace(/_/g, "/");
    while (text.length % 4) { text += "="; }
    var raw = atob(text), bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { bytes[i] = raw.charCodeAt(i); }
    return bytes.buffer;
  }

  function toB64url(buffer) {
    var bytes = new Uint8Array(buffer), raw = "";
    for (var i = 0; i < bytes.length; i++) { raw += String.fromCharCode(bytes[i]); }
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (d) {
      return { type: d.type, id: fromB64url(d.id), transports: d.transports };
    });
  }

  function creationOptions(o) {
    o.challenge = fromB64url(o.challenge);
    o.user.id = fromB64url(o.user.id);
    o.excludeCredentials = descriptors(o.excludeCredentials);
    return o;
  }

  function requestOptions(o) {
    o.challenge = fromB64url(o.challenge);
    o.allowCredentials = descriptors(o.allowCredentials);
    return o;
  }

  function credentialJSON(c) {
    var r = c.response, response = { clientDataJSON: toB64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toB64url(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = toB64url(r.authenticatorData);
      response.signature = toB64url(r.signature);
      if (r.userHandle) { response.userHandle = toB64url(r.userHandle); }
    }
    return {
      id: c.id, rawId: toB64url(c.rawId), type: c.type, response: response,
      authenticatorAttachment: c.authenticatorAttachment || null,
      clientExtensionResults: c.getClientExtensionResults ? c.getClientExtensionResults() : {}
    };
  }

  function post(url, csrf, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          throw new Error(data.error || (response.status === 429
            ? "Too many attempts. Please wait and try again."
            : "Something went wrong (" + response.status + "). Please try again."));
        }
        return data;
      });
    });
  }

  function say(box, text) {
    var message = box.querySelector("[data-passkey-message]");
    if (message) { message.textContent = text; }
  }

  function failed(box, error) {
    if (error && error.name === "NotAllowedError") {
      say(box, "The passkey request was cancelled or timed out.");
    } else if (error && error.name === "SecurityError") {
      say(box, "Passkeys work only on this site's own address (https, or localhost).");
    } else if (error && error.name === "InvalidStateError") {
      say(box, "This device already holds a passkey for your account.");
    } else {
      say(box, (error && error.message) || "The passkey did not work.");
    }
  }

  function go(data) { window.location.assign(data.redirect || "/"); }

  function setUpRegistration(form) {
    form.hidden = false;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var csrf = form.elements.csrf_token.value;
      say(form, "");
      post(form.dataset.optionsUrl, csrf, {
        name: form.elements.name.value, password: form.elements.password.value
      }).then(function (options) {
        return navigator.credentials.create({ publicKey: creationOptions(options) });
      }).then(function (credential) {
        return post(form.dataset.finishUrl, csrf, {
          credential: credentialJSON(credential), next: form.dataset.next || ""
        });
      }).then(go).catch(function (error) { failed(form, error); });
    });
  }

  function assertion(box, csrf, extra) {
    say(box, "");
    return post(box.dataset.optionsUrl, csrf, {}).then(function (options) {
      return navigator.credentials.get({ publicKey: requestOptions(options) });
    }).then(function (credential) {
      var body = { credential: credentialJSON(credential) };
      Object.keys(extra || {}).forEach(function (k) { body[k] = extra[k]; });
      return post(box.dataset.finishUrl, csrf, body);
    }).then(go).catch(function (error) { failed(box, error); });
  }

  function setUpSignIn(box) {
    box.hidden = false;
    var button = box.querySelector("button");
    button.addEventListener("click", function () {
      assertion(box, box.dataset.csrf, { next: box.dataset.next });
    });
  }

  function start() {
    if (!window.PublicKeyCredential || !navigator.credentials) { return; }
    var form = document.getElementById("passkey-register");
    if (form) { setUpRegistration(form); }
    ["passkey-login", "passkey-mfa"].forEach(function (id) {
      var box = document.getElementById(id);
      if (box) { setUpSignIn(box); }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
