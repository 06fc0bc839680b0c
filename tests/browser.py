"""A real headless Chromium for the tests of the HTML report (and its benchmark): the DOM of a
page once loaded, a screenshot, and a page driven over the DevTools protocol (click, type,
read), with the standard library only.

Chromium comes from Debian's package ``chromium`` (``.ci/run`` installs it); each browser gets
its own throw-away profile, so that browsers started side by side never share one.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

OPTIONS = ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--mute-audio")


def find_chromium() -> str | None:
    """The Chromium binary, or None when it is not installed."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    return found or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)


def _run(chromium: str, *arguments: str, timeout: float = 180.0) -> str:
    with tempfile.TemporaryDirectory(prefix="test-chromium-") as profile:
        result = subprocess.run(
            [chromium, *OPTIONS, f"--user-data-dir={profile}", *arguments],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


#: Virtual milliseconds a page may run its timers for (the report draws its figures one after
#: the other, after its first paint) before its DOM or screenshot is taken.
BUDGET = "--virtual-time-budget=60000"


def dump_dom(chromium: str, page: str) -> str:
    """The DOM of ``page`` (a file) once loaded and its scripts and timers run, as HTML."""
    return _run(chromium, BUDGET, "--dump-dom", f"file://{os.path.abspath(page)}")


def screenshot(chromium: str, page: str, png: str, size: tuple[int, int] = (1280, 1000)) -> None:
    """A PNG of the top of ``page`` (a file), ``size`` pixels."""
    _run(
        chromium,
        BUDGET,
        f"--screenshot={os.path.abspath(png)}",
        f"--window-size={size[0]},{size[1]}",
        f"file://{os.path.abspath(page)}",
    )
    assert os.path.getsize(png) > 0


_TRAMPOLINE = (
    "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
    "os.execv(sys.argv[3], sys.argv[3:])"
)


def _above_4(fd: int) -> int:
    """``fd`` moved to a number above 4 (closed; the new one returned)."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, 5)
    os.close(fd)
    return moved


class DevTools:
    """A headless Chromium driven over its DevTools pipe (JSON messages ended by NUL), with one
    page: :meth:`open` a URL, :meth:`evaluate` JavaScript in it, :meth:`wait_for` a condition."""

    def __init__(self, chromium: str, size: tuple[int, int] = (1400, 1000)) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # above 4, so that putting one end on fd 3 never overwrites the other one
        to_browser_r, from_browser_w = _above_4(to_browser_r), _above_4(from_browser_w)
        self._profile = tempfile.mkdtemp(prefix="test-chromium-")
        # the browser reads commands on its fd 3 and writes answers on its fd 4: a small
        # Python puts the pipes' ends there, then becomes the browser
        self.process = subprocess.Popen(
            [
                sys.executable, "-c", _TRAMPOLINE, str(to_browser_r), str(from_browser_w),
                chromium, *OPTIONS, "--remote-debugging-pipe", f"--user-data-dir={self._profile}",
                f"--window-size={size[0]},{size[1]}", "about:blank",
            ],
            pass_fds=(to_browser_r, from_browser_w),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer, self._next = b"", 0
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        attached = self.call("Target.attachToTarget", targetId=target, flatten=True)
        self.session = attached["sessionId"]

    def call(self, method: str, session: str | None = None, **params: Any) -> Any:
        """Send one command, return its result (events meanwhile are dropped)."""
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._buffer:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed its DevTools pipe")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            answer = json.loads(raw)
            if answer.get("id") == self._next:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer["result"]

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (a promise is awaited)."""
        result = self.call(
            "Runtime.evaluate",
            self.session,
            expression=expression,
            returnByValue=True,
            awaitPromise=True,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 120.0) -> Any:
        """Poll ``expression`` in the page until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.evaluate(expression)
            except RuntimeError:  # the page is being replaced (a reload)
                value = None
            if value:
                return value
            assert time.monotonic() < deadline, f"timed out waiting for {expression}"
            time.sleep(0.05)  # polling a condition of the page, not synchronizing by sleeping

    def open(self, url: str, timeout: float = 300.0) -> float:
        """Navigate to ``url`` and wait for the report page to say it is drawn; the ms from
        the navigation's start until then (its ``data-ready-ms``)."""
        self.call("Page.navigate", self.session, url=url)
        ready = self.wait_for(
            "document.readyState === 'complete' && "
            "document.documentElement.getAttribute('data-ready-ms')",
            timeout,
        )
        return float(ready)

    def close(self) -> None:
        """Stop the browser and remove its profile."""
        self.process.kill()
        self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        shutil.rmtree(self._profile, ignore_errors=True)


class Element:
    """An element of a parsed page: its tag, attributes, children, and the text inside."""

    def __init__(self, tag: str, attrs: dict[str, str]) -> None:
        self.tag, self.attrs = tag, attrs
        self.children: list[Element | str] = []

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def text(self) -> str:
        """The text inside, as ``textContent`` has it."""
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self) -> Any:
        """This element and every element inside, in document order."""
        yield self
        for child in self.children:
            if isinstance(child, Element):
                yield from child.iter()

    def find_all(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list[Any]:
        """The elements inside (this one too) with ``tag``, class ``cls`` and ``attrs``
        (``data_factor=...``: the attribute ``data-factor``)."""
        return [
            e
            for e in self.iter()
            if (tag is None or e.tag == tag)
            and (cls is None or cls in e.classes)
            and all(e.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]

    def find(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> Any:
        """The first of :meth:`find_all` (an ``AssertionError`` when there is none)."""
        found = self.find_all(tag, cls, **attrs)
        assert found, f"no <{tag or '*'}> of class {cls} with {attrs}"
        return found[0]


_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}


def parse_html(page: str) -> Element:
    """``page`` (HTML text) as a tree of :class:`Element` (a tolerant, small parser)."""
    from html.parser import HTMLParser

    root = Element("#document", {})
    stack = [root]

    class Builder(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            element = Element(tag, {k: v or "" for k, v in attrs})
            stack[-1].children.append(element)
            if tag not in _VOID:
                stack.append(element)

        def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            stack[-1].children.append(Element(tag, {k: v or "" for k, v in attrs}))

        def handle_endtag(self, tag: str) -> None:
            for depth in range(len(stack) - 1, 0, -1):
                if stack[depth].tag == tag:
                    del stack[depth:]
                    return

        def handle_data(self, data: str) -> None:
            stack[-1].children.append(data)

    builder = Builder(convert_charrefs=True)
    builder.feed(page)
    builder.close()
    return root
