"""Debian's chromium, headless, driven by playwright-core through
test/browser/driver.mjs (one JSON command per line): for the widget's test
(test/integration/test_widget.py) and its login bench
(test/bench/widget_login_bench.py). Needs test/browser's npm packages
(`make npm-deps`)."""

import json
import queue
import subprocess
import threading
from pathlib import Path

DRIVER = Path(__file__).resolve().parent / "browser" / "driver.mjs"


class Browser:
    """call(cmd, **arguments) -> the command's value; an error answer raises,
    and no answer within the step's deadline too. The driver's stderr (page
    errors, console messages) goes to `log`."""

    def __init__(self, log, step=20):
        self.step = step
        self.log = log
        self.process = subprocess.Popen(
            ["node", str(DRIVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=open(log, "w"), text=True, cwd=DRIVER.parent)
        self.answers = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.answers.put(json.loads(line))
        self.answers.put(None)

    def call(self, cmd, timeout=None, **arguments):
        timeout = timeout or self.step
        self.process.stdin.write(json.dumps({"cmd": cmd, "timeout": timeout * 1000,
                                             **arguments}) + "\n")
        self.process.stdin.flush()
        try:
            answer = self.answers.get(timeout=timeout + 30)  # chromium's start, first
        except queue.Empty:
            raise TimeoutError(f"the browser did not answer {cmd} {arguments}") from None
        if answer is None:
            raise RuntimeError(f"the browser driver exited (see {self.log})")
        if not answer["ok"]:
            raise AssertionError(f"{cmd} {arguments}: {answer['error']}")
        return answer["value"]

    def wait_text(self, selector, text, timeout=None):
        self.call("wait_for_text", selector=selector, text=text, timeout=timeout)

    def texts(self, selector):
        return self.call("texts", selector=selector)

    def stored_chat(self, key):
        """The widget's chat for the service `key` names, from sessionStorage."""
        return self.call("eval", expression=f"JSON.parse(sessionStorage.getItem({key!r}))")

    def close(self):
        try:
            self.process.stdin.write('{"cmd": "quit"}\n')
            self.process.stdin.close()
            self.process.wait(30)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
