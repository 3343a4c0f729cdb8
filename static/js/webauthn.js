// Keyway's passkey ceremonies: the only script its pages use. No framework, no build step.
// The server sends WebAuthn options as JSON (binary fields in base64url); this script turns
// them into what navigator.credentials wants, and posts the browser's answer as an ordinary
// form so that the browser follows the server's redirect. Without it, the passkey controls
// stay hidden and the other ways to sign in still work.
"use strict";

(function () {
  if (!window.PublicKeyCredential || !navigator.credentials) return;

  const b64 = {
    encode(buffer) {
      const bytes = new Uint8Array(buffer);
      let s = "";
      for (const b of bytes) s += String.fromCharCode(b);
      return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    },
    decode(text) {
      const s = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4));
      return Uint8Array.from(s, (c) => c.charCodeAt(0)).buffer;
    },
  };

  // Options from the server: a form post with the page's CSRF token and the given fields.
  async function fetchOptions(url, fields) {
    const res = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      body: new URLSearchParams(fields),
    });
    let body = null;
    try {
      body = await res.json();
    } catch (e) {
      body = null;
    }
    if (!res.ok || !body || !body.publicKey) {
      throw new Error((body && body.error) || "The server did not answer. Reload the page and try again.");
    }
    return body;
  }

  function requestOptions(o) {
    const pk = o.publicKey;
    pk.challenge = b64.decode(pk.challenge);
    for (const c of pk.allowCredentials || []) c.id = b64.decode(c.id);
    return pk;
  }

  function creationOptions(o) {
    const pk = o.publicKey;
    pk.challenge = b64.decode(pk.challenge);
    pk.user.id = b64.decode(pk.user.id);
    for (const c of pk.excludeCredentials || []) c.id = b64.decode(c.id);
    return pk;
  }

  function assertionJSON(cred) {
    const r = cred.response;
    return JSON.stringify({
      id: cred.id,
      rawId: b64.encode(cred.rawId),
      type: cred.type,
      response: {
        authenticatorData: b64.encode(r.authenticatorData),
        clientDataJSON: b64.encode(r.clientDataJSON),
        signature: b64.encode(r.signature),
        userHandle: r.userHandle ? b64.encode(r.userHandle) : null,
      },
      extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
    });
  }

  function attestationJSON(cred) {
    const r = cred.response;
    return JSON.stringify({
      id: cred.id,
      rawId: b64.encode(cred.rawId),
      type: cred.type,
      response: {
        attestationObject: b64.encode(r.attestationObject),
        clientDataJSON: b64.encode(r.clientDataJSON),
        transports: r.getTransports ? r.getTransports() : undefined,
      },
      extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
    });
  }

  // Words for the browser's refusals; a cancelled prompt is not an error worth shouting about.
  function explain(err) {
    if (err && err.name === "NotAllowedError") return "The passkey request was cancelled or timed out.";
    if (err && err.name === "InvalidStateError") return "This device already holds a passkey for your account.";
    if (err && err.name === "SecurityError") return "This browser refused passkeys for this address.";
    return (err && err.message) || "Something went wrong with the passkey. Try again.";
  }

  // ---- Sign-in page -------------------------------------------------------------------
  function signinPage() {
    const box = document.querySelector("[data-passkey-signin]");
    const form = document.getElementById("passkey-form");
    if (!box || !form) return;
    box.hidden = false;
    const status = document.getElementById("passkey-status");
    const csrf = form.elements.csrf.value;
    const usernameField = document.getElementById("username");
    let pending = null; // { controller, done } of the waiting autofill request

    function say(text) {
      if (status) status.textContent = text;
    }

    function submit(cred) {
      form.elements.credential.value = assertionJSON(cred);
      form.elements.username.value = usernameField ? usernameField.value : "";
      form.submit();
    }

    async function stopAutofill() {
      if (!pending) return;
      const p = pending;
      pending = null;
      p.controller.abort();
      // Wait until the browser has really let go, or it refuses the next request.
      await p.done.catch(() => {});
    }

    async function autofill() {
      if (!PublicKeyCredential.isConditionalMediationAvailable) return;
      if (!(await PublicKeyCredential.isConditionalMediationAvailable())) return;
      const options = await fetchOptions("/signin/passkey/options", { csrf, mode: "autofill" });
      const controller = new AbortController();
      const done = navigator.credentials.get({
        publicKey: requestOptions(options),
        mediation: "conditional",
        signal: controller.signal,
      });
      pending = { controller, done };
      const cred = await done;
      if (cred) submit(cred);
    }

    async function explicit(fields) {
      await stopAutofill();
      say("Follow your browser's prompt to use your passkey…");
      try {
        const options = await fetchOptions("/signin/passkey/options", Object.assign({ csrf }, fields));
        const cred = await navigator.credentials.get({ publicKey: requestOptions(options) });
        if (cred) submit(cred);
      } catch (err) {
        say(explain(err));
        autofill().catch(() => {});
      }
    }

    const button = document.getElementById("passkey-button");
    if (button) button.addEventListener("click", () => explicit({ mode: "button" }));
    const byName = document.getElementById("passkey-username");
    if (byName) {
      byName.addEventListener("click", () => {
        const name = usernameField ? usernameField.value.trim() : "";
        if (!name) {
          say("Enter your username first.");
          if (usernameField) usernameField.focus();
          return;
        }
        explicit({ mode: "username", username: name });
      });
    }
    autofill().catch((err) => {
      if (err && err.name !== "AbortError") say("");
    });
  }

  // ---- Registration (invitation and account pages) -------------------------------------
  function registrationForms() {
    for (const form of document.querySelectorAll("form[data-passkey-register]")) {
      const status = document.getElementById("register-status");
      const button = form.querySelector("button[type=submit]");
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        if (status) status.textContent = "";
        if (button) button.disabled = true;
        try {
          const fields = {};
          for (const [k, v] of new FormData(form)) if (k !== "credential") fields[k] = v;
          const options = await fetchOptions(form.dataset.passkeyRegister, fields);
          const publicKey = creationOptions(options);
          let cred;
          try {
            cred = await navigator.credentials.create({ publicKey });
          } catch (err) {
            // An authenticator that cannot keep a discoverable credential: ask for one it can.
            if (!err || (err.name !== "NotSupportedError" && err.name !== "ConstraintError")) throw err;
            publicKey.authenticatorSelection.residentKey = "preferred";
            publicKey.authenticatorSelection.requireResidentKey = false;
            cred = await navigator.credentials.create({ publicKey });
          }
          form.elements.credential.value = attestationJSON(cred);
          form.submit();
        } catch (err) {
          if (status) status.textContent = explain(err);
          if (button) button.disabled = false;
        }
      });
    }
  }

  signinPage();
  registrationForms();
})();
