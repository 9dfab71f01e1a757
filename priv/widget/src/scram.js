// The widget's SASL mechanisms: SCRAM-SHA-1, -256 and -512 (RFC 5802, RFC
// 7677) on the browser's WebCrypto, and PLAIN; and which of them to use.
//
// Why SCRAM: ejabberd keeps SCRAM records by default (Debian's stock
// configuration), and checks a PLAIN password against one by redoing its
// 4 096 PBKDF2 rounds in Erlang: 25 ms of server CPU a login against 14 ms for
// a SCRAM login, where the client does those rounds (README "Performance").
// No imports: the functions are pure but for WebCrypto, so that node runs
// their tests (test/widget).

// Each mechanism's hash, as WebCrypto names it, and its output in bits.
const HASHES = {
  "SCRAM-SHA-1": { hash: "SHA-1", bits: 160 },
  "SCRAM-SHA-256": { hash: "SHA-256", bits: 256 },
  "SCRAM-SHA-512": { hash: "SHA-512", bits: 512 },
};

// A server may ask for more rounds; past this many, a hostile or broken
// server would hold the page's CPU for seconds. ejabberd asks for 4 096.
const MAX_ITERATIONS = 1_000_000;

const GS2_HEADER = "n,,"; // no channel binding, no authorization identity

// The mechanism that costs the server least, of those it offers (null if
// none is usable). ejabberd offers the one SCRAM mechanism of its records'
// hash when it stores SCRAM records, and every SCRAM mechanism when it stores
// plain-text passwords, where a SCRAM login would make it compute the salted
// password and PLAIN is a comparison. Without WebCrypto (a page that is not a
// secure context: plain http: other than on localhost) only PLAIN is usable.
export function chooseMechanism(offered, webCrypto = hasWebCrypto()) {
  const usable = webCrypto ? Object.keys(HASHES) : [];
  const scram = usable.filter((name) => offered.includes(name));
  if (scram.length === 1) return scram[0];
  if (offered.includes("PLAIN")) return "PLAIN";
  return scram.length > 0 ? scram[scram.length - 1] : null;
}

// Browsers give `crypto.subtle` to secure contexts only.
function hasWebCrypto() {
  return typeof crypto !== "undefined" && crypto.subtle !== undefined;
}

// PLAIN (RFC 4616): one message, no challenge.
export function plain({ username, password }) {
  return {
    initial: () => `\0${username}\0${password}`,
    respond: () => {
      throw new Error("SASL PLAIN: unexpected challenge");
    },
    verify: () => {},
  };
}

// A SCRAM exchange for `mechanism` (a key of HASHES): `initial()` is the
// client's first message, `respond(serverFirst)` its final one (a promise),
// `verify(serverFinal)` throws unless the server proved it holds the record.
// Messages are strings of bytes (as `atob` gives and `btoa` takes); the names
// and passwords the widget makes are ASCII.
export function scram(mechanism, { username, password, nonce = randomNonce() }) {
  if (!HASHES[mechanism]) throw new Error(`SASL: no such SCRAM mechanism ${mechanism}`);
  const { hash, bits } = HASHES[mechanism];
  const clientFirstBare = `n=${saslName(username)},r=${nonce}`;
  let expectedServerSignature = null;
  return {
    initial: () => GS2_HEADER + clientFirstBare,
    async respond(serverFirst) {
      const { r: serverNonce, s: salt, i: rounds, m: extension } = attributes(serverFirst);
      if (extension !== undefined) throw new Error("SCRAM: unsupported mandatory extension");
      if (!serverNonce || !serverNonce.startsWith(nonce) || serverNonce === nonce) {
        throw new Error("SCRAM: the server's nonce does not extend ours");
      }
      if (!salt) throw new Error("SCRAM: no salt");
      const iterations = Number(rounds);
      if (!Number.isInteger(iterations) || iterations < 1 || iterations > MAX_ITERATIONS) {
        throw new Error(`SCRAM: unusable iteration count ${rounds}`);
      }
      const keys = await saltedKeys({ hash, bits }, password, fromBase64(salt), iterations);
      const withoutProof = `c=${btoa(GS2_HEADER)},r=${serverNonce}`;
      const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
      const clientSignature = await hmac(hash, keys.storedKey, authMessage);
      const proof = keys.clientKey.map((byte, at) => byte ^ clientSignature[at]);
      expectedServerSignature = toBase64(await hmac(hash, keys.serverKey, authMessage));
      return `${withoutProof},p=${toBase64(proof)}`;
    },
    verify(serverFinal) {
      const { v: signature, e: error } = attributes(serverFinal);
      if (error !== undefined) throw new Error(`SCRAM: the server said ${error}`);
      if (expectedServerSignature === null || signature !== expectedServerSignature) {
        throw new Error("SCRAM: the server's signature is wrong");
      }
    },
  };
}

// The keys a password gives for one salt and count (RFC 5802 section 3),
// remembered for the last one asked: a reconnection, which logs in again
// with the same record, redoes no PBKDF2.
let lastKeys = null;

async function saltedKeys({ hash, bits }, password, salt, iterations) {
  const key = [hash, password, bytesToBinary(salt), iterations].join("\0");
  if (lastKeys && lastKeys.key === key) return lastKeys.keys;
  const material = await crypto.subtle.importKey("raw", encode(password), "PBKDF2", false, [
    "deriveBits",
  ]);
  const salted = new Uint8Array(
    await crypto.subtle.deriveBits({ name: "PBKDF2", hash, salt, iterations }, material, bits),
  );
  const clientKey = await hmac(hash, salted, "Client Key");
  const keys = {
    clientKey,
    storedKey: new Uint8Array(await crypto.subtle.digest(hash, clientKey)),
    serverKey: await hmac(hash, salted, "Server Key"),
  };
  lastKeys = { key, keys };
  return keys;
}

async function hmac(hash, key, message) {
  const imported = await crypto.subtle.importKey(
    "raw",
    key,
    { name: "HMAC", hash },
    false,
    ["sign"],
  );
  const data = typeof message === "string" ? encode(message) : message;
  return new Uint8Array(await crypto.subtle.sign("HMAC", imported, data));
}

// `a=...,b=...` to {a, b}; a value may hold `=`.
function attributes(message) {
  const found = {};
  for (const part of message.split(",")) {
    const at = part.indexOf("=");
    if (at === 1) found[part[0]] = part.slice(2);
  }
  return found;
}

// RFC 5802 5.1: `=` and `,` in a name are escaped.
function saslName(name) {
  return name.replace(/=/g, "=3D").replace(/,/g, "=2C");
}

function randomNonce() {
  return toBase64(crypto.getRandomValues(new Uint8Array(18)));
}

function encode(text) {
  return new TextEncoder().encode(text);
}

function bytesToBinary(bytes) {
  return String.fromCharCode(...bytes);
}

function toBase64(bytes) {
  return btoa(bytesToBinary(bytes));
}

function fromBase64(text) {
  return Uint8Array.from(atob(text), (char) => char.charCodeAt(0));
}
