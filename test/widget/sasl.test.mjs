// The widget's SASL exchange (priv/widget/src/sasl.js) against a server
// played here with node's crypto: the mechanism chosen from the features,
// the messages sent, <failure/>'s condition, the server's signature checked.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import sasl from "../../priv/widget/src/sasl.js";

const NS = "urn:ietf:params:xml:ns:xmpp-sasl";
const b64 = (text) => Buffer.from(text, "binary").toString("base64");
const unb64 = (text) => Buffer.from(text, "base64").toString("binary");

// An element as the handler reads one (ltx's getNS, name, text, children).
function element(name, text = "", children = []) {
  return { name, children, getNS: () => NS, text: () => text };
}

function features(...mechanisms) {
  return { getChildren: () => mechanisms.map((m) => element("mechanism", m)) };
}

// A SCRAM-SHA-1 server holding the record of `password` (RFC 5802 section 3);
// `answer(name, text)` gives the element the server sends back.
function scramServer(password, { forgeSignature = false } = {}) {
  const salt = randomBytes(16);
  const salted = pbkdf2Sync(password, salt, 4096, 20, "sha1");
  const clientKey = createHmac("sha1", salted).update("Client Key").digest();
  const storedKey = createHash("sha1").update(clientKey).digest();
  const serverKey = createHmac("sha1", salted).update("Server Key").digest();
  let clientFirstBare, serverFirst;
  return (name, text) => {
    if (name === "auth") {
      clientFirstBare = text.slice(3);
      const nonce = clientFirstBare.split(",r=")[1] + "server-nonce";
      serverFirst = `r=${nonce},s=${salt.toString("base64")},i=4096`;
      return element("challenge", b64(serverFirst));
    }
    const withoutProof = text.slice(0, text.indexOf(",p="));
    const proof = Buffer.from(text.slice(text.indexOf(",p=") + 3), "base64");
    const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
    const signature = createHmac("sha1", storedKey).update(authMessage).digest();
    const presented = Buffer.from(proof.map((byte, at) => byte ^ signature[at]));
    if (!createHash("sha1").update(presented).digest().equals(storedKey)) {
      return element("failure", "", [element("not-authorized")]);
    }
    const key = forgeSignature ? randomBytes(20) : serverKey;
    const signature64 = createHmac("sha1", key).update(authMessage).digest("base64");
    return element("success", b64(`v=${signature64}`));
  };
}

// Runs the widget's SASL handler against `answer`: what it sent
// ([mechanism or null, decoded text]), and whether it restarted the stream.
async function login(offered, answer, credentials = { username: "v0a", password: "f00d" }) {
  let handler;
  sasl({ streamFeatures: { use: (_name, _ns, fn) => (handler = fn) } }, credentials);
  const entity = new EventEmitter();
  const sent = [];
  entity.restarted = false;
  entity.restart = async () => (entity.restarted = true);
  entity.send = async (el) => {
    const text = unb64(el.children.join(""));
    sent.push([el.attrs.mechanism ?? null, text]);
    const reply = answer(el.name, text);
    if (reply) setImmediate(() => entity.emit("nonza", reply));
  };
  const outcome = handler({ entity }, null, features(...offered)).then(
    () => null,
    (error) => error,
  );
  const error = await outcome;
  return { error, sent, restarted: entity.restarted, listeners: entity.listenerCount("nonza") };
}

test("SCRAM records: SCRAM-SHA-1, the proof accepted, the signature checked", async () => {
  const result = await login(["PLAIN", "SCRAM-SHA-1"], scramServer("f00d"));
  assert.equal(result.error, null);
  assert.equal(result.sent[0][0], "SCRAM-SHA-1");
  assert.match(result.sent[0][1], /^n,,n=v0a,r=.{24}$/);
  assert.match(result.sent[1][1], /^c=biws,r=.+server-nonce,p=/);
  assert.equal(result.restarted, true);
  assert.equal(result.listeners, 0);
});

test("a wrong password: not-authorized, as xmpp.js's errors say it", async () => {
  const result = await login(["SCRAM-SHA-1"], scramServer("other"));
  assert.equal(result.error.condition, "not-authorized");
  assert.equal(result.restarted, false);
  assert.equal(result.listeners, 0);
});

test("a server that does not prove the record is not trusted", async () => {
  const result = await login(["SCRAM-SHA-1"], scramServer("f00d", { forgeSignature: true }));
  assert.match(result.error.message, /signature/);
  assert.equal(result.restarted, false);
});

test("an account gone: not-authorized at once", async () => {
  const gone = () =>
    element("failure", "", ["\n", element("not-authorized"), element("text", "gone")]);
  const result = await login(["SCRAM-SHA-1"], gone);
  assert.equal(result.error.condition, "not-authorized");
  assert.equal(result.sent.length, 1);
});

test("plain-text passwords: PLAIN, one message", async () => {
  const offered = ["SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"];
  const result = await login(offered, (name) => (name === "auth" ? element("success") : null));
  assert.equal(result.error, null);
  assert.deepEqual(result.sent, [["PLAIN", "\0v0a\0f00d"]]);
  assert.equal(result.restarted, true);
});

test("no usable mechanism: an error, nothing sent", async () => {
  const result = await login(["EXTERNAL"], () => null);
  assert.match(result.error.message, /no usable mechanism/);
  assert.deepEqual(result.sent, []);
});
