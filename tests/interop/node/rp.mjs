// A relying party built on Node's openid-client (panva), against a running `portail serve`.
//
// Driven by tests/sso/test_interop_openid_client.py: discovery, code + PKCE (the user agent is
// this script's fetch with a cookie jar of its own, logging in with the portal's form), ID token
// validation by openid-client (signature from the JWKS, iss, aud, nonce, and RFC 9207's iss on
// the authorization response), userinfo, refresh, silent re-authentication (prompt=none),
// RP-initiated logout, then prompt=none again, which must come back as login_required.
// Prints one JSON object with what it saw; any error is printed and exits 1.
import * as client from "openid-client";

const env = process.env;
const issuer = new URL(env.ISSUER);
const redirectUri = env.REDIRECT_URI;
const jar = new Map();

function remember(response) {
  for (const header of response.headers.getSetCookie()) {
    const [pair] = header.split(";");
    const eq = pair.indexOf("=");
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    if (value === "" || /max-age=0/i.test(header)) jar.delete(name);
    else jar.set(name, value);
  }
}

// The browser: cookies (Secure ones too: this is loopback http), no redirects followed.
async function browse(url, init = {}) {
  const headers = { ...(init.headers || {}) };
  if (jar.size) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
  const response = await fetch(url, { ...init, headers, redirect: "manual" });
  remember(response);
  return response;
}

// Follows the portal's redirects (and its « Ouverture de … » page) until the RP's redirect URI.
async function navigate(url, { login = true } = {}) {
  let current = new URL(url, issuer).href;
  for (let hops = 0; hops < 10; hops++) {
    if (current.startsWith(redirectUri) || current.startsWith(env.POST_LOGOUT_URI)) return current;
    const response = await browse(current);
    if (response.status >= 300 && response.status < 400) {
      current = new URL(response.headers.get("location"), current).href;
      continue;
    }
    const html = await response.text();
    const refresh = html.match(/http-equiv="refresh" content="0;url=([^"]+)"/);
    if (refresh) {
      current = new URL(refresh[1].replaceAll("&amp;", "&"), current).href;
      continue;
    }
    if (login && new URL(current).pathname === "/auth/login") {
      const csrf = html.match(/name="csrfmiddlewaretoken" value="([^"]+)"/)[1];
      const next = html.match(/name="next" value="([^"]+)"/);
      const form = new URLSearchParams({
        csrfmiddlewaretoken: csrf,
        identifier: env.IDENTIFIER,
        password: env.PASSWORD,
      });
      if (next) form.set("next", next[1].replaceAll("&amp;", "&"));
      const posted = await browse(current, {
        method: "POST",
        body: form,
        headers: { "content-type": "application/x-www-form-urlencoded" },
      });
      if (posted.status !== 302) throw new Error(`login answered ${posted.status}`);
      current = new URL(posted.headers.get("location"), current).href;
      continue;
    }
    if (!login && html.includes('name="allow" value="on"')) {
      // The portal asks whether to end the ENT session too (logout by id_token_hint ends only
      // this application's grant otherwise): the user clicks « Se déconnecter de l'ENT ».
      const form = new URLSearchParams();
      for (const input of html.matchAll(/<input[^>]*type="hidden"[^>]*>/g)) {
        const name = input[0].match(/name="([^"]*)"/);
        const value = input[0].match(/value="([^"]*)"/);
        if (name) form.append(name[1], value ? value[1].replaceAll("&amp;", "&") : "");
      }
      form.set("allow", "on");
      const posted = await browse(current, {
        method: "POST",
        body: form,
        headers: { "content-type": "application/x-www-form-urlencoded" },
      });
      if (posted.status < 300 || posted.status >= 400) {
        throw new Error(`logout confirmation answered ${posted.status}`);
      }
      current = new URL(posted.headers.get("location"), current).href;
      continue;
    }
    throw new Error(`stuck at ${current}: HTTP ${response.status}`);
  }
  throw new Error("too many redirects");
}

async function authorize(config, extra = {}) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: "openid profile email ent",
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    state,
    nonce,
    ...extra,
  });
  const callback = await navigate(url.href, { login: !extra.prompt });
  return client.authorizationCodeGrant(config, new URL(callback), {
    pkceCodeVerifier: verifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
}

const options = { execute: [client.allowInsecureRequests] }; // loopback http only
const config = env.CLIENT_SECRET
  ? await client.discovery(issuer, env.CLIENT_ID, env.CLIENT_SECRET, undefined, options)
  : await client.discovery(issuer, env.CLIENT_ID, undefined, client.None(), options);

const result = { issuer: config.serverMetadata().issuer };
const tokens = await authorize(config);
const claims = tokens.claims();
result.claims = claims;
result.userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);

const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
result.refreshed = {
  new_refresh_token: refreshed.refresh_token !== tokens.refresh_token,
  sub: refreshed.claims()?.sub,
};
result.refreshed.userinfo = await client.fetchUserInfo(config, refreshed.access_token, claims.sub);
// The old refresh token was rotated away: using it again is refused.
try {
  await client.refreshTokenGrant(config, tokens.refresh_token);
  result.replayed_refresh = "accepted";
} catch (error) {
  result.replayed_refresh = error.error || error.code || String(error);
}

const silent = await authorize(config, { prompt: "none" });
result.silent_sub = silent.claims().sub;

const logoutUrl = client.buildEndSessionUrl(config, {
  id_token_hint: silent.id_token,
  post_logout_redirect_uri: env.POST_LOGOUT_URI,
  state: "au-revoir",
});
result.logout_landing = await navigate(logoutUrl.href, { login: false });

try {
  await authorize(config, { prompt: "none" });
  result.after_logout = "code";
} catch (error) {
  result.after_logout = error.error || error.code || String(error);
}
console.log(JSON.stringify(result));
