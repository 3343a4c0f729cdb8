// The browser half of scripts/e2e (which starts Keyway and sets the environment): headless
// Chromium with the DevTools virtual authenticator, driven through puppeteer-core.
"use strict";

const puppeteer = require("puppeteer-core");
const http = require("node:http");
const crypto = require("node:crypto");
const path = require("node:path");
const assert = require("node:assert/strict");
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");

const base = process.env.KEYWAY_ISSUER;
const out = process.env.E2E_SCREENSHOTS;
const errors = [];
let shots = 0;

const b64url = (buf) => Buffer.from(buf).toString("base64url");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function keyway(args) {
  const stdout = execFileSync(process.env.E2E_BIN, ["--json", ...args], { encoding: "utf8" });
  return JSON.parse(stdout);
}

// The text part of the newest message in the file transport's directory, decoded.
async function newestMail(count) {
  const dir = process.env.E2E_MAIL_DIR;
  for (let i = 0; i < 200; i += 1) {
    const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith(".eml")).sort() : [];
    if (files.length >= count) {
      const eml = fs.readFileSync(path.join(dir, files[files.length - 1]), "utf8").replace(/\r\n/g, "\n");
      const start = eml.indexOf("Content-Type: text/plain");
      const [headers, ...rest] = eml.slice(start).split("\n\n");
      let body = rest.join("\n\n").split("\n--")[0];
      if (/quoted-printable/i.test(headers)) {
        body = body.replace(/=\n/g, "").replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
      } else if (/base64/i.test(headers)) {
        body = Buffer.from(body.replace(/\s/g, ""), "base64").toString("utf8");
      }
      return body;
    }
    await sleep(50);
  }
  throw new Error(`no message number ${count} in ${dir}`);
}

function step(text) {
  console.log(`e2e: ${text}`);
}

// A relying party's redirect URI: a page that says where the browser landed, and tells the
// script about every code it receives.
function relyingParty() {
  const waiting = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://localhost");
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    res.end(
      '<!doctype html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">' +
        '<meta name="viewport" content="width=device-width, initial-scale=1">' +
        "<title>Team Wiki</title></head><body><h1>Team Wiki</h1><p>Signed in through Keyway.</p></body></html>",
    );
    if (url.pathname === "/cb") {
      const next = waiting.shift();
      if (next) next(url.searchParams);
    }
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const port = server.address().port;
      resolve({
        redirect: `http://localhost:${port}/cb`,
        next: () => new Promise((r) => waiting.push(r)),
        close: () => server.close(),
      });
    });
  });
}

function watch(page, name) {
  page.on("response", async (r) => {
    if (process.env.E2E_DEBUG && (r.status() >= 400 || r.request().method() === "POST")) {
      console.log(`e2e: ${name}: ${r.status()} ${r.request().method()} ${r.url()}\n${await r.text().catch(() => "")}`);
    }
  });
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`${name} ${page.url()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => errors.push(`${name} ${page.url()}: ${e.message}`));
}

// A person: their own browser profile, page and virtual platform authenticator.
async function person(browser, name) {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  watch(page, name);
  await page.setViewport({ width: 1280, height: 800 });
  const cdp = await page.createCDPSession();
  await cdp.send("WebAuthn.enable", { enableUI: false });
  const p = { name, context, page, cdp, requests: [] };
  p.authenticator = await addAuthenticator(p);
  page.on("request", (r) => {
    if (r.method() === "POST") p.requests.push(`${new URL(r.url()).pathname} ${r.postData() || ""}`);
  });
  return p;
}

async function addAuthenticator(p) {
  const { authenticatorId } = await p.cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      ctap2Version: "ctap2_1",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return authenticatorId;
}

async function presence(p, on) {
  await p.cdp.send("WebAuthn.setAutomaticPresenceSimulation", {
    authenticatorId: p.authenticator,
    enabled: on,
  });
}

async function screenshots(page, name) {
  shots += 1;
  const stem = `${String(shots).padStart(2, "0")}-${name}`;
  for (const [label, width, height] of [
    ["desktop", 1280, 800],
    ["phone", 390, 844],
  ]) {
    await page.setViewport({ width, height });
    // Nothing may push the page wider than the screen (a long link, secret or table).
    const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(scrollWidth <= width, `${name} is ${scrollWidth}px wide at ${width}px`);
    await page.screenshot({ path: path.join(out, `${stem}-${label}.png`), fullPage: true });
  }
  await page.setViewport({ width: 1280, height: 800 });
}

// Clicks and waits for the navigation it causes (through any redirects).
async function clickAndWait(page, selector) {
  await Promise.all([page.waitForNavigation({ waitUntil: "load" }), page.click(selector)]);
}

function pkce() {
  const verifier = b64url(crypto.randomBytes(32));
  const challenge = b64url(crypto.createHash("sha256").update(verifier).digest());
  return { verifier, challenge };
}

function authorizeUrl(client, rp, challenge) {
  const q = new URLSearchParams({
    response_type: "code",
    client_id: client.client_id,
    redirect_uri: rp.redirect,
    scope: "openid profile",
    state: crypto.randomUUID(),
    nonce: crypto.randomUUID(),
    code_challenge: challenge,
    code_challenge_method: "S256",
  });
  return `${base}/authorize?${q}`;
}

// The ID token's claims for a code, from the token endpoint.
async function idClaims(client, rp, code, verifier) {
  const res = await fetch(`${base}/token`, {
    method: "POST",
    headers: {
      Authorization: "Basic " + Buffer.from(`${client.client_id}:${client.client_secret}`).toString("base64"),
    },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: rp.redirect,
      code_verifier: verifier,
    }),
  });
  assert.equal(res.status, 200, `token endpoint: ${await res.clone().text()}`);
  const tokens = await res.json();
  return JSON.parse(Buffer.from(tokens.id_token.split(".")[1], "base64url").toString());
}

// Signs `p` in to the relying party; `how` runs on the sign-in page and makes the passkey
// sign-in happen. Checks the ID token says a passkey did it.
async function signInToRp(p, client, rp, label, how) {
  const { verifier, challenge } = pkce();
  const landed = rp.next();
  await p.page.goto(authorizeUrl(client, rp, challenge), { waitUntil: "load" });
  assert.match(new URL(p.page.url()).pathname, /^\/signin/, `${label}: the sign-in page`);
  await how();
  const params = await landed;
  assert.ok(params.get("code"), `${label}: a code`);
  const claims = await idClaims(client, rp, params.get("code"), verifier);
  assert.equal(claims.acr, "phr", `${label}: acr`);
  assert.ok(claims.amr.includes("user"), `${label}: amr ${claims.amr}`);
  await p.page.waitForFunction(() => document.readyState === "complete" && location.pathname === "/cb");
  return claims;
}

async function signOut(p) {
  await p.page.goto(`${base}/account`, { waitUntil: "load" });
  await clickAndWait(p.page, 'form[action="/logout/confirm"] button');
  return p.page.url();
}

async function waitForOptions(p, mode) {
  for (let i = 0; i < 100; i += 1) {
    if (p.requests.some((r) => r.startsWith("/signin/passkey/options") && r.includes(`mode=${mode}`))) return;
    await sleep(50);
  }
  throw new Error(`${p.name}: the page never asked for ${mode} options`);
}

async function main() {
  const browser = await puppeteer.launch({
    executablePath: process.env.E2E_CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
  const rp = await relyingParty();
  try {
    const client = keyway([
      "client", "create", "--name", "Team Wiki", "--redirect-uri", rp.redirect, "--first-party",
    ]);

    step("the administrator opens the setup link and registers a passkey");
    const ada = await person(browser, "ada");
    await ada.page.goto(process.env.E2E_SETUP_LINK, { waitUntil: "load" });
    await screenshots(ada.page, "setup-invitation");
    await ada.page.type("#username", "ada");
    await ada.page.type("#name", "Ada Lovelace");
    await clickAndWait(ada.page, "button[type=submit]");
    assert.match(ada.page.url(), /\/account\?welcome=1$/);
    await screenshots(ada.page, "account-welcome");
    await ada.page.goto(`${base}/`, { waitUntil: "load" });
    await screenshots(ada.page, "home-signed-in");
    assert.match(await signOut(ada), /\/signed-out$/);
    await screenshots(ada.page, "signed-out");

    step("sign-in with the passkey button");
    await presence(ada, false);
    ada.requests.length = 0;
    await signInToRp(ada, client, rp, "button", async () => {
      await waitForOptions(ada, "autofill");
      await screenshots(ada.page, "signin");
      await presence(ada, true);
      await Promise.all([ada.page.waitForNavigation({ waitUntil: "load" }), ada.page.click("#passkey-button")]);
    });
    assert.ok(ada.requests.some((r) => r.includes("mode=button")), "the button asked for options");
    await screenshots(ada.page, "relying-party");
    await signOut(ada);

    step("sign-in through autofill");
    ada.requests.length = 0;
    await signInToRp(ada, client, rp, "autofill", async () => {});
    assert.ok(!ada.requests.some((r) => r.includes("mode=button") || r.includes("mode=username")));
    assert.ok(ada.requests.some((r) => r.includes("mode=autofill")));
    await signOut(ada);

    step("sign-in username first");
    await presence(ada, false);
    ada.requests.length = 0;
    await signInToRp(ada, client, rp, "username first", async () => {
      await waitForOptions(ada, "autofill");
      await ada.page.type("#username", "ada");
      await presence(ada, true);
      await Promise.all([ada.page.waitForNavigation({ waitUntil: "load" }), ada.page.click("#passkey-username")]);
    });
    assert.ok(ada.requests.some((r) => r.includes("mode=username") && r.includes("username=ada")));

    step("the administrator opens the admin UI, which signs in through Keyway");
    await ada.page.goto(`${base}/admin`, { waitUntil: "load" });
    assert.equal(new URL(ada.page.url()).pathname, "/admin");
    assert.ok((await ada.page.content()).includes("Dashboard"));
    await screenshots(ada.page, "admin-dashboard");
    await clickAndWait(ada.page, "nav.admin-nav a[href='/admin/invitations']");
    await ada.page.type("#inv-email", "cleo@example.com");
    await ada.page.type("#inv-groups", "staff");
    await clickAndWait(ada.page, "form[action='/admin/invitations'] button[type=submit]");
    assert.ok((await ada.page.$eval("#invitation-link", (e) => e.textContent)).includes("/invite/"));
    await screenshots(ada.page, "admin-invitations");
    await clickAndWait(ada.page, "nav.admin-nav a[href='/admin/users']");
    await screenshots(ada.page, "admin-people");
    await clickAndWait(ada.page, "#people a");
    await screenshots(ada.page, "admin-person");

    step("the administrator creates an account and makes its owner a sign-in link");
    await ada.page.goto(`${base}/admin/users/new`, { waitUntil: "load" });
    await screenshots(ada.page, "admin-person-new");
    await ada.page.type("#new-username", "dora");
    await ada.page.type("#new-name", "Dora");
    await ada.page.type("#new-email", "dora@example.com");
    await clickAndWait(ada.page, "form[action='/admin/users'] button[type=submit]");
    assert.ok((await ada.page.content()).includes("no way to sign in yet"));
    await clickAndWait(ada.page, "form[action$='/recovery'] button:not([name])");
    assert.ok((await ada.page.$eval("#recovery-link", (e) => e.textContent)).includes("/recover/"));
    await screenshots(ada.page, "admin-person-link");
    await clickAndWait(ada.page, "a[href$='/delete']");
    await screenshots(ada.page, "admin-person-delete");
    await ada.page.type("#confirm", "dora");
    await clickAndWait(ada.page, "form[action$='/delete'] button[type=submit]");
    assert.equal(new URL(ada.page.url()).pathname, "/admin/users");
    assert.ok(!(await ada.page.content()).includes("<strong>dora</strong>"));
    await clickAndWait(ada.page, "nav.admin-nav a[href='/admin/groups']");
    await screenshots(ada.page, "admin-groups");
    await ada.page.type("#group-name", "staff");
    await clickAndWait(ada.page, "form[action='/admin/groups'] button[type=submit]");
    await screenshots(ada.page, "admin-group");
    await clickAndWait(ada.page, "nav.admin-nav a[href='/admin/apps']");
    await screenshots(ada.page, "admin-applications");
    await clickAndWait(ada.page, "#apps a");
    await screenshots(ada.page, "admin-application");

    step("the administrator registers an application, edits it and rotates its secret");
    await ada.page.goto(`${base}/admin/apps/new`, { waitUntil: "load" });
    await screenshots(ada.page, "admin-application-new");
    await ada.page.type("#app-name", "Team wiki");
    await ada.page.type("#app-redirects", "https://wiki.example.com/callback");
    await ada.page.type("#app-at", "15m");
    await clickAndWait(ada.page, "form.settings button[type=submit]");
    const secret = await ada.page.$eval("#client-secret", (e) => e.textContent);
    assert.ok(secret.length > 20);
    await screenshots(ada.page, "admin-application-created");
    await clickAndWait(ada.page, "a[href$='/edit']");
    await screenshots(ada.page, "admin-application-edit");
    await ada.page.$eval("#app-name", (e) => { e.value = "Team wiki (staging)"; });
    await clickAndWait(ada.page, "form.settings button[type=submit]");
    assert.ok((await ada.page.content()).includes("Team wiki (staging)"));
    await clickAndWait(ada.page, "form[action$='/secret'] button[type=submit]");
    const rotated = await ada.page.$eval("#client-secret", (e) => e.textContent);
    assert.notEqual(rotated, secret);
    assert.ok((await ada.page.content()).includes("previous secret keeps working"));
    await screenshots(ada.page, "admin-application-rotated");
    await clickAndWait(ada.page, "nav.admin-nav a[href='/admin/audit']");
    await screenshots(ada.page, "admin-audit");
    await clickAndWait(ada.page, "nav.admin-nav a[href='/admin/keys']");
    await clickAndWait(ada.page, "form[action='/admin/keys/rotate'] button[type=submit]");
    assert.ok((await ada.page.content()).includes("starts signing"));
    await screenshots(ada.page, "admin-keys");

    step("a second person, invited from the command line, signs in the same way");
    const invitation = keyway(["invite", "create", "--username", "bea", "--name", "Bea", "--email", "bea@example.com"]);
    const bea = await person(browser, "bea");
    await bea.page.goto(invitation.url, { waitUntil: "load" });
    await screenshots(bea.page, "invitation");
    await clickAndWait(bea.page, "button[type=submit]");
    assert.match(bea.page.url(), /\/account\?welcome=1$/);
    await signOut(bea);
    await presence(bea, false);
    await signInToRp(bea, client, rp, "bea", async () => {
      await waitForOptions(bea, "autofill");
      await presence(bea, true);
      await Promise.all([bea.page.waitForNavigation({ waitUntil: "load" }), bea.page.click("#passkey-button")]);
    });

    step("an emailed sign-in link, opened in the browser that asked for it");
    await signOut(bea);
    {
      const { verifier, challenge } = pkce();
      const landed = rp.next();
      await bea.page.goto(authorizeUrl(client, rp, challenge), { waitUntil: "load" });
      await presence(bea, false);
      await bea.page.type("#email", "bea@example.com");
      await clickAndWait(bea.page, "form.email-link button[type=submit]");
      await screenshots(bea.page, "check-your-email");
      const text = await newestMail(1);
      const link = text.match(/http:\/\/localhost:\d+\/signin\/email\/[A-Za-z0-9_-]+/)[0];
      await bea.page.goto(link, { waitUntil: "load" });
      await screenshots(bea.page, "email-link-same-browser");
      await clickAndWait(bea.page, "form[action^='/signin/email/'] button[type=submit]");
      const params = await landed;
      const claims = await idClaims(client, rp, params.get("code"), verifier);
      assert.deepEqual(claims.amr, ["email"]);
    }

    step("an emailed sign-in link opened on another device gives a code for the first");
    await signOut(bea);
    {
      const { verifier, challenge } = pkce();
      const landed = rp.next();
      await bea.page.goto(authorizeUrl(client, rp, challenge), { waitUntil: "load" });
      await bea.page.type("#email", "bea@example.com");
      await clickAndWait(bea.page, "form.email-link button[type=submit]");
      const text = await newestMail(2);
      const link = text.match(/http:\/\/localhost:\d+\/signin\/email\/[A-Za-z0-9_-]+/)[0];
      const phone = await person(browser, "phone");
      await phone.page.goto(link, { waitUntil: "load" });
      await screenshots(phone.page, "email-link-other-device");
      const code = (await phone.page.$eval(".code", (e) => e.textContent)).replace(/\D/g, "");
      assert.equal(code.length, 6);
      await bea.page.type("#code", code);
      await clickAndWait(bea.page, "form[action='/signin/email/code'] button[type=submit]");
      const params = await landed;
      const claims = await idClaims(client, rp, params.get("code"), verifier);
      assert.deepEqual(claims.amr, ["otp"]);
    }

    step("the administrator adds a second passkey on another device, then removes it");
    // The first device would refuse (its credential is excluded): the second one registers.
    await ada.cdp.send("WebAuthn.removeVirtualAuthenticator", { authenticatorId: ada.authenticator });
    ada.authenticator = await addAuthenticator(ada);
    await ada.page.goto(`${base}/account`, { waitUntil: "load" });
    await clickAndWait(ada.page, "#add-passkey");
    assert.match(ada.page.url(), /done=added$/);
    const count = () => ada.page.$$eval("#passkeys > li", (li) => li.length);
    assert.equal(await count(), 2);
    await screenshots(ada.page, "account-two-passkeys");
    const removes = await ada.page.$$('#passkeys form[action="/account/passkeys/remove"] button');
    await Promise.all([ada.page.waitForNavigation({ waitUntil: "load" }), removes[1].click()]);
    assert.match(ada.page.url(), /done=removed$/);
    assert.equal(await count(), 1);
    await screenshots(ada.page, "account-passkey-removed");

    step("the administrator signs out of the admin UI, through Keyway's end_session");
    await ada.page.goto(`${base}/admin`, { waitUntil: "load" });
    await clickAndWait(ada.page, "form[action='/admin/logout'] button[type=submit]");
    assert.equal(new URL(ada.page.url()).pathname, "/admin/signed-out");
    await screenshots(ada.page, "admin-signed-out");
  } finally {
    rp.close();
    await browser.close();
  }
  if (errors.length > 0) {
    throw new Error(`console errors:\n${errors.join("\n")}`);
  }
  step(`passed (${shots} pages, ${shots * 2} screenshots)`);
}

main().catch((e) => {
  console.error(`e2e: FAILED: ${e.stack || e}`);
  if (errors.length > 0) console.error(`console errors:\n${errors.join("\n")}`);
  process.exit(1);
});
