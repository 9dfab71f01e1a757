// SASL for the widget's XMPP client (RFC 6120 section 6): the mechanism that
// costs the server least (scram.js), and for SCRAM the server's signature
// checked on <success/> (xmpp.js's own SASL package drops that data).
import { xml } from "@xmpp/client-core";
import { procedure } from "@xmpp/events";
import { chooseMechanism, plain, scram } from "./scram.js";

const NS = "urn:ietf:params:xml:ns:xmpp-sasl";

// Not authorized, and the like: `condition` is the failure's condition, as
// xmpp.js's own errors have it (the widget tells a gone account by it).
function failure(element) {
  const condition = element.children.find(
    (child) => typeof child !== "string" && child.name !== "text",
  );
  const error = new Error(`SASL: ${condition ? condition.name : "failure"}`);
  return Object.assign(error, { name: "SASLError", condition: condition && condition.name });
}

// The exchange with the server (xmpp.js's `procedure`: the <auth/> sent, then
// each reply handled until `done`; what the handler throws rejects it):
// resolves on <success/>, its data verified, rejects on <failure/> or on
// anything wrong in a challenge.
function exchange(entity, mechanism, session) {
  const auth = xml("auth", { xmlns: NS, mechanism }, btoa(session.initial()));
  return procedure(entity, auth, async (element, done) => {
    if (element.getNS() !== NS) return;
    if (element.name === "challenge") {
      const response = await session.respond(atob(element.text()));
      await entity.send(xml("response", { xmlns: NS }, btoa(response)));
    } else if (element.name === "success") {
      session.verify(atob(element.text()));
      done();
    } else if (element.name === "failure") {
      throw failure(element);
    }
  });
}

export default function sasl({ streamFeatures }, credentials) {
  streamFeatures.use("mechanisms", NS, async ({ entity }, _next, element) => {
    const offered = element.getChildren("mechanism", NS).map((m) => m.text());
    const mechanism = chooseMechanism(offered);
    if (!mechanism) throw new Error(`SASL: no usable mechanism in ${offered.join(" ")}`);
    const session = mechanism === "PLAIN" ? plain(credentials) : scram(mechanism, credentials);
    await exchange(entity, mechanism, session);
    await entity.restart();
  });
}
