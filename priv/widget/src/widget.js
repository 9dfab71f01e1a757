// clicktochat's embeddable widget: one <script src=".../widget.js" data-...>
// tag adds a chat button to any page (README "Widget"). A click registers a
// throw-away visitor account (POST /register, JSON), logs in over ejabberd's
// WebSocket listener with xmpp.js, and chats with the agent it was given.
//
// Reloads and moves within the site keep the chat: the account, the agent,
// the stream management session and the transcript are kept in
// sessionStorage, and the next page *resumes* the XMPP session (XEP-0198)
// that the browser dropped when the page went away. The close button closes
// the stream cleanly, which ends the visitor's last session: the server
// removes its account.

import { client, xml, jid as parseJid } from "./xmpp.js";
import { texts } from "./texts.js";
import { css } from "./style.js";

const NS_NOTICE = "urn:xmpp:clicktochat:0";
const NS_CHATSTATES = "http://jabber.org/protocol/chatstates";
const TRANSCRIPT_MAX = 200; // entries kept for a reload
const PAUSED_AFTER_MS = 5000; // composing -> paused when the visitor stops typing

// --- configuration, from the script tag's data- attributes ----------------
const script =
  document.currentScript || document.querySelector('script[src*="widget.js"]');
const data = (script && script.dataset) || {};
// The API: data-service, else the directory the script was served from
// (/clicktochat/widget.js -> /clicktochat).
const service = new URL(data.service || ".", script ? script.src : location.href)
  .href.replace(/\/$/, "");
// ejabberd's WebSocket listener: data-websocket, else /ws on the API's host.
const websocket =
  data.websocket ||
  new URL("/ws", service).href.replace(/^http/, "ws");
const lang = data.lang || document.documentElement.lang || "en";
const t = texts(lang);
// How long (seconds) ejabberd keeps a dropped session for the next page to
// resume; past it, a visitor who left without closing is removed.
const resumeSeconds = Number(data.resumeSeconds) || 120;
const storageKey = `clicktochat:${service}`;

// --- what survives a reload (sessionStorage: this tab only) ---------------
function load() {
  try {
    return JSON.parse(sessionStorage.getItem(storageKey)) || null;
  } catch {
    return null; // storage disabled or corrupt: no chat to restore
  }
}
function save() {
  try {
    sessionStorage.setItem(storageKey, JSON.stringify(chat));
  } catch {
    // Storage full or disabled: the chat goes on, a reload will not keep it.
  }
}
function forget() {
  try {
    sessionStorage.removeItem(storageKey);
  } catch {}
}

// chat: {jid, password, agent, waiting: {position, estimate}, open,
//        sm: {id, h, full}, transcript: [{who, text}]} or null.
let chat = load();
let xmpp = null;

// --- the DOM, in a shadow root --------------------------------------------
const host = document.createElement("div");
host.setAttribute("data-clicktochat", "");
// Open so that tests (and assistive tooling) can reach it; closing it would
// protect nothing the page's own scripts could not already read.
const root = host.attachShadow({ mode: "open" });
root.innerHTML = `
<style>${css}</style>
<div class="ctc ${data.position === "left" ? "left" : ""}" lang="${lang}">
  <button class="launcher" type="button" aria-expanded="false" aria-controls="ctc-panel"></button>
  <section class="panel" id="ctc-panel" role="dialog" aria-labelledby="ctc-title" hidden>
    <header>
      <h2 id="ctc-title"></h2>
      <button class="close" type="button">×</button>
    </header>
    <p class="status" role="status" aria-live="polite"></p>
    <ol class="log" aria-live="polite" aria-relevant="additions" tabindex="0"></ol>
    <p class="typing" aria-live="polite"></p>
    <form>
      <label class="who" for="ctc-message"></label>
      <textarea id="ctc-message" rows="2"></textarea>
      <button type="submit"></button>
    </form>
  </section>
</div>`;
const $ = (selector) => root.querySelector(selector);
const ui = {
  box: $(".ctc"),
  launcher: $(".launcher"),
  panel: $(".panel"),
  title: $("h2"),
  close: $(".close"),
  status: $(".status"),
  log: $(".log"),
  typing: $(".typing"),
  form: $("form"),
  input: $("textarea"),
  send: $("form button"),
};
ui.box.style.setProperty("--ctc-color", data.color || "#1f5fbf");
ui.box.style.setProperty("--ctc-text", data.textColor || "#ffffff");
// textContent everywhere: texts from attributes and messages are never HTML.
ui.launcher.textContent = data.buttonText || t.button;
ui.title.textContent = data.title || t.title;
ui.close.setAttribute("aria-label", t.close);
ui.close.title = t.close;
ui.log.setAttribute("aria-label", t.messages);
$("label").textContent = t.message;
ui.send.textContent = t.send;

function status(text, error = false) {
  ui.status.textContent = text || "";
  ui.status.classList.toggle("error", error);
}

function show(open) {
  ui.panel.hidden = !open;
  ui.launcher.setAttribute("aria-expanded", String(open));
  if (chat) {
    chat.open = open;
    save();
  }
}

function agentName(agent) {
  return agent ? parseJid(agent).local : "";
}

// One line of the conversation; `keep` adds it to the stored transcript.
function append(who, text, keep = true) {
  const item = document.createElement("li");
  item.className = who;
  if (who !== "note") {
    // Read out by screen readers ("agent1: hello"), hidden on screen.
    const label = document.createElement("span");
    label.className = "who";
    label.textContent = `${who === "me" ? t.you : agentName(chat && chat.agent)}: `;
    item.append(label);
  }
  item.append(text);
  ui.log.append(item);
  ui.log.scrollTop = ui.log.scrollHeight;
  if (keep && chat) {
    chat.transcript.push({ who, text });
    chat.transcript.splice(0, chat.transcript.length - TRANSCRIPT_MAX);
    save();
  }
}

// Writing is possible with an agent and a live session only.
function canWrite(yes) {
  ui.input.disabled = !yes;
  ui.send.disabled = !yes;
  ui.input.placeholder = !yes && chat && chat.waiting ? t.waitingInput : "";
}

function showWaiting() {
  const { position, estimate } = chat.waiting;
  status(t.waiting(position, estimate));
}

// --- registration ---------------------------------------------------------
function randomToken(bytes) {
  const values = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(values, (b) => b.toString(16).padStart(2, "0")).join("");
}

// {ok: chat} or {error: words}.
async function register() {
  // A random name and password: the account is this tab's alone. `exists`
  // (a name taken, most unlikely) is retried with another one.
  for (let attempt = 0; attempt < 3; attempt++) {
    const username = `v${randomToken(8)}`;
    const password = randomToken(16);
    let response, body;
    try {
      response = await fetch(`${service}/register`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ username, password }),
        credentials: "omit",
      });
      body = await response.json().catch(() => ({}));
    } catch {
      return { error: t.network };
    }
    const base = { password, transcript: [], open: true, sm: null };
    if (response.status === 201) {
      return { ok: { ...base, jid: body.from, agent: body.to, waiting: null } };
    }
    if (response.status === 202) {
      const waiting = { position: body.position, estimate: body.estimated_wait };
      return { ok: { ...base, jid: body.from, agent: null, waiting } };
    }
    if (response.status === 429) {
      const seconds = Number(response.headers.get("Retry-After")) || 60;
      return { error: t.rate_limited(seconds) };
    }
    if (body.reason === "exists") continue;
    const words = t[body.reason];
    return { error: typeof words === "string" ? words : t.failed };
  }
  return { error: t.failed };
}

// --- XMPP -----------------------------------------------------------------
function connect() {
  const address = parseJid(chat.jid);
  xmpp = client({
    service: websocket,
    domain: address.domain,
    username: address.local,
    password: chat.password,
    lang,
  });
  const sm = xmpp.streamManagement;
  sm.preferredMaximum = resumeSeconds;
  if (chat.sm) {
    // The session the previous page left: resume it, with the count of
    // stanzas it had handled, so that the server resends only what that
    // page never saw. If it is gone, xmpp.js binds a new session instead.
    sm.id = chat.sm.id;
    sm.inbound = chat.sm.h;
    xmpp.jid = parseJid(chat.sm.full);
  }

  // What the next page needs to resume this session: its id, the count of
  // stanzas handled (kept with the transcript, so that the server resends
  // only what this page never saw), and the full JID.
  const persist = () => {
    if (!chat || !xmpp || !sm.id || !xmpp.jid) return;
    chat.sm = { id: sm.id, h: sm.inbound, full: xmpp.jid.toString() };
    save();
  };
  // A fresh session ("online", before stream management is enabled) or a
  // resumed one (sm "resumed": the server still has the presence).
  xmpp.on("online", async () => {
    await xmpp.send(xml("presence")).catch(() => {});
    connected();
  });
  sm.on("resumed", () => {
    persist();
    connected();
  });
  xmpp.on("disconnect", () => {
    if (xmpp) status(t.reconnecting, true); // xmpp.js reconnects (and resumes)
  });
  xmpp.on("error", () => {}); // reported through "disconnect" and start()
  xmpp.on("nonza", (element) => {
    // <resumed h=.../> also counts the stanzas the *previous page* sent,
    // which this page never queued: xmpp.js would try to acknowledge more
    // than its queue holds, fail, and bind a new session instead. Count those
    // as acknowledged already (a reconnection of this same page, whose queue
    // holds everything it sent, is left alone). This listener runs before
    // xmpp.js's own (registered earlier).
    if (element.is("resumed", "urn:xmpp:sm:3")) {
      const h = Number(element.attrs.h) || 0;
      if (h > sm.outbound + sm.outbound_q.length) sm.outbound = h - sm.outbound_q.length;
    }
    // <enabled/>: xmpp.js reads its id after this listener.
    setTimeout(persist, 0);
  });
  xmpp.on("stanza", (stanza) => {
    receive(stanza);
    persist(); // the stream management middleware has counted it already
  });

  status(t.connecting);
  xmpp.start().catch((error) => {
    // Not authorized: the account is gone (the chat ended while this tab was
    // away longer than the resume time). Anything else: the socket.
    if (error && error.condition === "not-authorized") ended();
    else if (xmpp) status(t.network, true);
  });
}

function connected() {
  if (!chat) return;
  if (chat.waiting) {
    showWaiting();
    canWrite(false);
  } else {
    status(t.connected(agentName(chat.agent)));
    canWrite(true);
    // Into the message box, if the visitor is in the widget (not on a reload
    // while reading the page).
    if (root.activeElement && !ui.panel.hidden) ui.input.focus();
  }
}

function receive(stanza) {
  if (!stanza.is("message")) return;
  const from = stanza.attrs.from ? parseJid(stanza.attrs.from) : null;
  const notice = stanza.getChildByAttr("xmlns", NS_NOTICE);
  if (notice && from && from.local === "") {
    // The module's notices (from the client host itself).
    if (notice.name === "waiting") {
      chat.waiting = {
        position: Number(notice.attrs.position),
        estimate:
          notice.attrs.estimated_wait === undefined ? undefined : Number(notice.attrs.estimated_wait),
      };
      save();
      showWaiting();
    } else if (notice.name === "assigned") {
      // The server says it again on every login of a visitor from the line
      // (a reload): news only when the visitor was waiting, or passed on.
      if (!chat.waiting && chat.agent === notice.attrs.agent) return;
      chat.agent = notice.attrs.agent;
      chat.waiting = null;
      append("note", t.joined(agentName(chat.agent)));
      connected();
    }
    return;
  }
  if (!chat.agent || !from || from.bare().toString() !== chat.agent) return;
  if (stanza.attrs.type === "error") {
    append("note", t.undelivered);
    return;
  }
  const body = stanza.getChildText("body");
  const state = stanza.getChildByAttr("xmlns", NS_CHATSTATES);
  if (body) {
    ui.typing.textContent = "";
    append("agent", body);
  } else if (state) {
    ui.typing.textContent = state.name === "composing" ? t.typing(agentName(chat.agent)) : "";
  }
}

// --- chat states (XEP-0085) -----------------------------------------------
let composing = false;
let pausedTimer = null;
function chatState(name, body) {
  if (!xmpp || !chat.agent) return;
  const children = [xml(name, { xmlns: NS_CHATSTATES })];
  if (body !== undefined) children.unshift(xml("body", {}, body));
  xmpp.send(xml("message", { to: chat.agent, type: "chat" }, ...children)).catch(() => {});
}

ui.input.addEventListener("input", () => {
  clearTimeout(pausedTimer);
  if (!ui.input.value) return;
  if (!composing) chatState("composing");
  composing = true;
  pausedTimer = setTimeout(() => {
    composing = false;
    chatState("paused");
  }, PAUSED_AFTER_MS);
});

// Enter sends; Shift+Enter is a new line.
ui.input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    ui.form.requestSubmit();
  }
});

ui.form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = ui.input.value.trim();
  if (!text || ui.send.disabled) return;
  clearTimeout(pausedTimer);
  composing = false;
  chatState("active", text);
  append("me", text);
  ui.input.value = "";
  ui.input.focus();
});

// --- opening, ending -------------------------------------------------------
async function start() {
  show(true);
  ui.close.focus();
  if (chat) return; // already chatting: the panel was only hidden
  ui.log.textContent = "";
  canWrite(false);
  status(t.connecting);
  const result = await register();
  if (result.error) {
    status(result.error, true);
    return;
  }
  chat = result.ok;
  save();
  if (chat.waiting) showWaiting();
  connect();
}

// The close button: close the stream cleanly, so that the server ends the
// visitor's session (its last) and removes the account at once.
async function end() {
  const closing = xmpp;
  xmpp = null;
  forget();
  chat = null;
  reset();
  if (closing) {
    closing.reconnect.stop();
    await Promise.race([closing.stop(), new Promise((r) => setTimeout(r, 5000))]).catch(() => {});
  }
}

function ended() {
  const closing = xmpp;
  xmpp = null;
  if (closing) closing.reconnect.stop();
  forget();
  chat = null;
  canWrite(false);
  ui.typing.textContent = "";
  status(t.ended, true);
}

function reset() {
  ui.log.textContent = "";
  ui.typing.textContent = "";
  status("");
  canWrite(false);
  show(false);
  ui.launcher.focus();
}

ui.launcher.addEventListener("click", start);
ui.close.addEventListener("click", end);
// Escape hides the panel; the chat goes on (the button brings it back).
ui.panel.addEventListener("keydown", (event) => {
  if (event.key === "Escape") {
    show(false);
    ui.launcher.focus();
  }
});

// --- a page (re)loaded in the middle of a chat ------------------------------
function restore() {
  for (const { who, text } of chat.transcript) append(who, text, false);
  show(chat.open !== false);
  canWrite(false);
  if (chat.waiting) showWaiting();
  connect();
}

function mount() {
  document.body.append(host);
  canWrite(false);
  if (chat && chat.jid && chat.password) restore();
  else chat = null;
}
if (document.body) mount();
else document.addEventListener("DOMContentLoaded", mount);
