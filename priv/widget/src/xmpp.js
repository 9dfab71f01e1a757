// An XMPP client for the browser, composed from xmpp.js's own packages the
// way @xmpp/client composes its own, with only what the widget uses:
// WebSocket, SASL (our own, sasl.js), resource binding, stream management
// (resume), reconnect, and answers to pings. Not @xmpp/client itself: it also
// pulls DNS resolution (whose `node:dns` import does not bundle for
// browsers), SASL2/FAST/Bind2, which ejabberd 23.01 does not need here, and a
// SCRAM that needs Node's crypto (ours is on WebCrypto).
import { Client, xml, jid } from "@xmpp/client-core";
import websocket from "@xmpp/websocket";
import middlewareOf from "@xmpp/middleware";
import streamFeaturesOf from "@xmpp/stream-features";
import iqCallerOf from "@xmpp/iq/caller.js";
import iqCalleeOf from "@xmpp/iq/callee.js";
import saslOf from "./sasl.js";
import resourceBindingOf from "@xmpp/resource-binding";
import streamManagementOf from "@xmpp/stream-management";
import reconnectOf from "@xmpp/reconnect";

export { xml, jid };

export function client({ service, domain, lang, username, password }) {
  const entity = new Client({ service, domain, lang });
  entity.jid = jid(username, domain);
  const reconnect = reconnectOf({ entity });
  websocket({ entity });
  const middleware = middlewareOf({ entity });
  const streamFeatures = streamFeaturesOf({ middleware });
  const iqCaller = iqCallerOf({ middleware, entity });
  const iqCallee = iqCalleeOf({ middleware, entity });
  saslOf({ streamFeatures }, { username, password });
  const streamManagement = streamManagementOf({ streamFeatures, entity, middleware });
  resourceBindingOf({ iqCaller, streamFeatures });
  iqCallee.get("urn:xmpp:ping", "ping", () => ({}));
  return Object.assign(entity, { reconnect, streamManagement });
}
