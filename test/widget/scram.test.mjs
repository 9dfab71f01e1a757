// The widget's SCRAM client and mechanism choice (priv/widget/src/scram.js),
// run by node's test runner on node's WebCrypto: `make test-widget`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, createHmac, pbkdf2Sync } from "node:crypto";
import { chooseMechanism, plain, scram } from "../../priv/widget/src/scram.js";

// RFC 5802 section 5 (SHA-1) and RFC 7677 section 3 (SHA-256): user "user",
// password "pencil".
const RFC_EXCHANGES = [
  {
    mechanism: "SCRAM-SHA-1",
    nonce: "fyko+d2lbbFgONRv9qkxdawL",
    serverFirst: "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
    clientFinal:
      "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
    serverFinal: "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
  },
  {
    mechanism: "SCRAM-SHA-256",
    nonce: "rOprNGfwEbeRWgbNEkqO",
    serverFirst:
      "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
    clientFinal:
      "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," +
      "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
  },
];

for (const exchange of RFC_EXCHANGES) {
  test(`${exchange.mechanism}: the RFC's exchange`, async () => {
    const session = scram(exchange.mechanism, {
      username: "user",
      password: "pencil",
      nonce: exchange.nonce,
    });
    assert.equal(session.initial(), `n,,n=user,r=${exchange.nonce}`);
    assert.equal(await session.respond(exchange.serverFirst), exchange.clientFinal);
    session.verify(exchange.serverFinal);
    assert.throws(() => session.verify(`v=${"A".repeat(28)}`), /signature/);
  });
}

// SHA-512 has no RFC vector: node's own crypto (not WebCrypto) computes the
// proof and the server's signature as RFC 5802 section 3 says.
function reference(hash, password, salt, iterations, authMessage) {
  const length = createHash(hash).digest().length;
  const salted = pbkdf2Sync(password, salt, iterations, length, hash);
  const clientKey = createHmac(hash, salted).update("Client Key").digest();
  const storedKey = createHash(hash).update(clientKey).digest();
  const signature = createHmac(hash, storedKey).update(authMessage).digest();
  const proof = Buffer.from(clientKey.map((byte, at) => byte ^ signature[at]));
  const serverKey = createHmac(hash, salted).update("Server Key").digest();
  const serverSignature = createHmac(hash, serverKey).update(authMessage).digest();
  return { proof: proof.toString("base64"), server: serverSignature.toString("base64") };
}

test("SCRAM-SHA-512 against node's crypto, a name to escape", async () => {
  const salt = Buffer.from("a salt of sixteen");
  const serverFirst = `r=abcdefXYZ,s=${salt.toString("base64")},i=4096`;
  const credentials = { username: "a=b,c", password: "0f1e2d3c", nonce: "abcdef" };
  const session = scram("SCRAM-SHA-512", credentials);
  assert.equal(session.initial(), "n,,n=a=3Db=2Cc,r=abcdef");
  const clientFinal = await session.respond(serverFirst);
  const authMessage = `n=a=3Db=2Cc,r=abcdef,${serverFirst},c=biws,r=abcdefXYZ`;
  const expected = reference("sha512", "0f1e2d3c", salt, 4096, authMessage);
  assert.equal(clientFinal, `c=biws,r=abcdefXYZ,p=${expected.proof}`);
  session.verify(`v=${expected.server}`);
});

test("a random nonce when none is given, another each time", () => {
  const first = scram("SCRAM-SHA-1", { username: "u", password: "p" }).initial();
  const second = scram("SCRAM-SHA-1", { username: "u", password: "p" }).initial();
  assert.match(first, /^n,,n=u,r=[A-Za-z0-9+/]{24}$/);
  assert.notEqual(first, second);
});

test("a server's first message that must not be answered", async () => {
  const session = () => scram("SCRAM-SHA-1", { username: "u", password: "p", nonce: "abc" });
  const refused = [
    "r=xyzabc,s=c2FsdA==,i=4096", // a nonce that does not extend ours
    "r=abc,s=c2FsdA==,i=4096", // the nonce not extended at all
    "r=abcd,s=c2FsdA==,i=0",
    "r=abcd,s=c2FsdA==,i=99999999", // rounds that would hold the page
    "r=abcd,s=c2FsdA==,i=many",
    "r=abcd,s=c2FsdA==", // no count
    "r=abcd,i=4096", // no salt
    "m=ext,r=abcd,s=c2FsdA==,i=4096", // a mandatory extension
    "r=abcd,s=***,i=4096", // a salt that is not base64
  ];
  for (const serverFirst of refused) {
    await assert.rejects(session().respond(serverFirst), Error, serverFirst);
  }
});

test("a server final message that does not prove the record", async () => {
  const session = scram("SCRAM-SHA-1", { username: "u", password: "p", nonce: "abc" });
  assert.throws(() => session.verify("v=AAAA"), /signature/); // before any proof
  await session.respond("r=abcd,s=c2FsdA==,i=16");
  assert.throws(() => session.verify("v=AAAA"), /signature/);
  assert.throws(() => session.verify("e=invalid-proof"), /invalid-proof/);
  assert.throws(() => session.verify(""), /signature/);
});

test("PLAIN", () => {
  const session = plain({ username: "v0a1", password: "secret" });
  assert.equal(session.initial(), "\0v0a1\0secret");
  assert.throws(() => session.respond("anything"));
});

test("the mechanism that costs the server least", () => {
  // ejabberd with SCRAM records offers the one mechanism of their hash.
  assert.equal(chooseMechanism(["SCRAM-SHA-1", "PLAIN", "X-OAUTH2"]), "SCRAM-SHA-1");
  assert.equal(chooseMechanism(["PLAIN", "SCRAM-SHA-256"]), "SCRAM-SHA-256");
  assert.equal(chooseMechanism(["SCRAM-SHA-512", "SCRAM-SHA-512-PLUS", "PLAIN"]), "SCRAM-SHA-512");
  // With plain-text passwords it offers them all: PLAIN is a comparison.
  const plainStore = ["DIGEST-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"];
  assert.equal(chooseMechanism(plainStore), "PLAIN");
  assert.equal(chooseMechanism(plainStore.filter((m) => m !== "PLAIN")), "SCRAM-SHA-512");
  assert.equal(chooseMechanism(["PLAIN"]), "PLAIN");
  assert.equal(chooseMechanism(["DIGEST-MD5", "EXTERNAL"]), null);
  // A page without WebCrypto (not a secure context): PLAIN or nothing.
  assert.equal(chooseMechanism(["SCRAM-SHA-1", "PLAIN"], false), "PLAIN");
  assert.equal(chooseMechanism(["SCRAM-SHA-1"], false), null);
});
