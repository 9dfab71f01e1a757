// The widget's words, per language (data-lang). Functions for the ones that
// carry a value. A data- attribute overrides the title and the button.

const en = {
  button: "Chat with us",
  title: "Chat with us",
  connecting: "Connecting…",
  reconnecting: "Connection lost. Reconnecting…",
  connected: (agent) => `You are chatting with ${agent}.`,
  joined: (agent) => `${agent} joined the chat.`,
  waiting: (position, wait) =>
    `You are number ${position} in line.` +
    (wait === undefined ? "" : ` Estimated wait: ${duration(wait, "en")}.`),
  waitingInput: "You can write as soon as an agent joins.",
  typing: (agent) => `${agent} is typing…`,
  you: "You",
  message: "Your message",
  send: "Send",
  close: "End the chat",
  messages: "Messages",
  ended: "This chat has ended.",
  undelivered: "Your message could not be delivered.",
  // 503 reasons, 429, and the rest
  no_agent_available: "Nobody is available to chat right now. Please try again later.",
  line_full: "Everyone is busy and the waiting line is full. Please try again in a few minutes.",
  too_many_visitors: "The chat service is very busy. Please try again in a few minutes.",
  rate_limited: (seconds) => `Too many attempts. Please try again in ${duration(seconds, "en")}.`,
  network: "The chat service cannot be reached. Check your connection and try again.",
  failed: "The chat could not be started. Please try again later.",
};

const fr = {
  button: "Discuter avec nous",
  title: "Discuter avec nous",
  connecting: "Connexion…",
  reconnecting: "Connexion perdue. Reconnexion…",
  connected: (agent) => `Vous discutez avec ${agent}.`,
  joined: (agent) => `${agent} a rejoint la discussion.`,
  waiting: (position, wait) =>
    `Vous êtes numéro ${position} dans la file.` +
    (wait === undefined ? "" : ` Attente estimée : ${duration(wait, "fr")}.`),
  waitingInput: "Vous pourrez écrire dès qu'un conseiller vous rejoint.",
  typing: (agent) => `${agent} écrit…`,
  you: "Vous",
  message: "Votre message",
  send: "Envoyer",
  close: "Terminer la discussion",
  messages: "Messages",
  ended: "Cette discussion est terminée.",
  undelivered: "Votre message n'a pas pu être remis.",
  no_agent_available: "Personne n'est disponible pour le moment. Réessayez plus tard.",
  line_full: "Tout le monde est occupé et la file d'attente est pleine. Réessayez dans quelques minutes.",
  too_many_visitors: "Le service est très sollicité. Réessayez dans quelques minutes.",
  rate_limited: (seconds) => `Trop de tentatives. Réessayez dans ${duration(seconds, "fr")}.`,
  network: "Le service est injoignable. Vérifiez votre connexion et réessayez.",
  failed: "La discussion n'a pas pu commencer. Réessayez plus tard.",
};

const languages = { en, fr };

// "about 40 seconds", "about 3 minutes" (rounded up: an estimate that
// promises less than it means is worse than one that promises more).
function duration(seconds, lang) {
  const minutes = Math.ceil(seconds / 60);
  if (lang === "fr") {
    return seconds < 90 ? `environ ${seconds} secondes` : `environ ${minutes} minutes`;
  }
  return seconds < 90 ? `about ${seconds} seconds` : `about ${minutes} minutes`;
}

export function texts(lang) {
  return languages[(lang || "").slice(0, 2).toLowerCase()] || en;
}
