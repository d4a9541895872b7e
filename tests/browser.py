"""Drive a headless Chromium through the DevTools protocol over a pipe (``--remote-debugging-pipe``):
no WebDriver, no websocket library, no browser download — the standard library and Debian's
``chromium``. Commands go to the browser's file descriptor 3 and replies come back on 4, as JSON
messages separated by NUL bytes.

    with Browser() as b:
        b.open("file:///…/report.html")           # waits for the load event
        b.eval("document.title")                   # Runtime.evaluate, returns the value
        b.click(x, y)                              # a real mouse click at page coordinates
        png = b.screenshot()                       # PNG bytes of the whole page
        b.errors()                                 # console errors, exceptions, failed requests

Run as a script to screenshot a page: ``python tests/browser.py report.html out.png [width]``.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio", "--remote-debugging-pipe"]
TIMEOUT = 120.0  # seconds to wait for one reply (a safety net against a hung browser, not a measurement)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return None


class Browser:
    def __init__(self, width: int = 1400, height: int = 900) -> None:
        self.width, self.height = width, height
        self._id = 0
        self._replies: dict[int, queue.Queue] = {}
        self.events: list[dict] = []
        self._lock = threading.Lock()

    # ----------------------------------------------------------------------------------------
    # process and pipe

    def __enter__(self) -> Browser:
        exe = find_chromium()
        if exe is None:
            raise RuntimeError("no chromium on PATH (apt-get install chromium)")
        self._profile = tempfile.mkdtemp(prefix="uk-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # The browser expects its ends on fds 3 and 4. Copies above 10 (close-on-exec) are moved there in the
        # child; dup2 makes 3 and 4 inheritable, and every other fd Python opened is close-on-exec (PEP 446).
        high_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, 10)
        high_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, 10)

        def child_fds() -> None:
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.proc = subprocess.Popen(
            [exe, *FLAGS, f"--user-data-dir={self._profile}", f"--window-size={self.width},{self.height}",
             "about:blank"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=False, preexec_fn=child_fds)
        for fd in (to_browser_r, from_browser_w, high_r, high_w):
            os.close(fd)
        threading.Thread(target=self._read, daemon=True).start()
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=True)
        self.send("Emulation.setDeviceMetricsOverride", {"width": self.width, "height": self.height,
                                                         "deviceScaleFactor": 1, "mobile": False}, session=True)
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except Exception:  # noqa: BLE001 - the browser may already be gone
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_browser)
        shutil.rmtree(self._profile, ignore_errors=True)

    def _read(self) -> None:
        buf = b""
        with os.fdopen(self._from_browser, "rb", buffering=0) as f:
            while chunk := f.read(65536):
                buf += chunk
                while b"\0" in buf:
                    raw, buf = buf.split(b"\0", 1)
                    msg = json.loads(raw)
                    if "id" in msg and msg["id"] in self._replies:
                        self._replies[msg["id"]].put(msg)
                    elif "method" in msg:
                        with self._lock:
                            self.events.append(msg)

    def send(self, method: str, params: dict | None = None, session: bool = False, timeout: float = TIMEOUT) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self.session
        box: queue.Queue = queue.Queue()
        self._replies[self._id] = box
        os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        reply = box.get(timeout=timeout)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    # ----------------------------------------------------------------------------------------
    # what a test does

    def _wait_for(self, method: str, after: int) -> None:
        import time

        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            with self._lock:
                if any(e["method"] == method for e in self.events[after:]):
                    return
            time.sleep(0.05)
        raise TimeoutError(f"no {method} event")

    def open(self, url: str) -> None:
        with self._lock:
            start = len(self.events)
        self.send("Page.navigate", {"url": url}, session=True)
        self._wait_for("Page.loadEventFired", start)

    def eval(self, expression: str):
        res = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                             "awaitPromise": True}, session=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"{expression!r}: {res['exceptionDetails']}")
        return res["result"].get("value")

    def click(self, x: float, y: float) -> None:
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1},
                      session=True)

    def screenshot(self, full_page: bool = True) -> bytes:
        params: dict = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
        return base64.b64decode(self.send("Page.captureScreenshot", params, session=True)["data"])

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions, error log entries (CSP violations among them), failed requests."""
        out = []
        with self._lock:
            events = list(self.events)
        for e in events:
            p = e.get("params", {})
            if e["method"] == "Runtime.exceptionThrown":
                out.append(f"exception: {p['exceptionDetails'].get('text')}")
            elif e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(f"console.{p['type']}: {[a.get('value') for a in p.get('args', [])]}")
            elif e["method"] == "Log.entryAdded" and p["entry"].get("level") == "error":
                out.append(f"log: {p['entry'].get('text')}")
            elif e["method"] == "Network.loadingFailed":
                out.append(f"request failed: {p.get('errorText')}")
        return out

    def requests(self) -> list[str]:
        with self._lock:
            return [e["params"]["request"]["url"] for e in self.events if e["method"] == "Network.requestWillBeSent"]


def screenshot(page: Path, out: Path, width: int = 1400, height: int = 900, full_page: bool = False) -> None:
    with Browser(width, height) as b:
        b.open(page.absolute().as_uri())
        out.write_bytes(b.screenshot(full_page))


if __name__ == "__main__":  # pragma: no cover - a tool for docs
    screenshot(Path(sys.argv[1]), Path(sys.argv[2]), *(int(a) for a in sys.argv[3:5]))
