// The widget's CSS, inside its shadow root: nothing here reaches the host
// page, and `all: initial` on the host element stops the page's inherited
// styles (font, colour, line height...) from reaching in. Colours come from
// data-color / data-text-color through custom properties.
export const css = `
:host { all: initial; }
.ctc {
  position: fixed; bottom: 20px; right: 20px; z-index: 2147483000;
  font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: #1b1f24;
}
.ctc.left { right: auto; left: 20px; }
button { font: inherit; cursor: pointer; }
.launcher {
  background: var(--ctc-color); color: var(--ctc-text); border: 0;
  border-radius: 24px; padding: 12px 20px; box-shadow: 0 2px 10px rgba(0,0,0,.25);
}
.launcher[aria-expanded="true"] { display: none; }
.panel {
  width: 340px; max-width: calc(100vw - 40px); height: 460px; max-height: calc(100vh - 40px);
  display: flex; flex-direction: column; background: #fff;
  border-radius: 12px; box-shadow: 0 4px 24px rgba(0,0,0,.3); overflow: hidden;
}
.panel[hidden] { display: none; }
header {
  display: flex; align-items: center; gap: 8px; padding: 10px 12px;
  background: var(--ctc-color); color: var(--ctc-text);
}
h2 { font-size: 16px; margin: 0; flex: 1; }
.close {
  background: transparent; color: inherit; border: 0; font-size: 22px; line-height: 1;
  padding: 2px 8px; border-radius: 6px;
}
.status { margin: 0; padding: 8px 12px; background: #f3f4f6; font-size: 13px; }
.status:empty { display: none; }
.status.error { background: #fdecea; color: #8a1c12; }
.log { list-style: none; margin: 0; padding: 10px 12px; flex: 1; overflow-y: auto; }
.log li { margin: 6px 0; max-width: 85%; padding: 6px 10px; border-radius: 10px;
  white-space: pre-wrap; overflow-wrap: anywhere; }
.log li.me { margin-left: auto; background: var(--ctc-color); color: var(--ctc-text); }
.log li.agent { background: #eceff3; }
.log li.note { max-width: none; text-align: center; color: #57606a; font-size: 13px; }
.who { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
.typing { margin: 0; padding: 0 12px; min-height: 18px; font-size: 13px; color: #57606a; }
form { display: flex; gap: 8px; padding: 10px 12px; border-top: 1px solid #d0d7de; }
textarea {
  flex: 1; resize: none; font: inherit; padding: 6px 8px;
  border: 1px solid #8c959f; border-radius: 8px; color: inherit; background: #fff;
}
form button { background: var(--ctc-color); color: var(--ctc-text); border: 0;
  border-radius: 8px; padding: 0 14px; }
button:disabled, textarea:disabled { opacity: .55; cursor: not-allowed; }
:focus-visible { outline: 3px solid #0969da; outline-offset: 2px; }
`;
