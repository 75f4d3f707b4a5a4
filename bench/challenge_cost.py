"""What the login's proof-of-work challenge costs a pupil's browser and a flooder.

    python bench/challenge_cost.py [--max-number 100000] [--samples 5]

Solves real challenges (portail.security.throttle's parameters, ALTCHA v1, SHA-256) three ways:
in Chromium with WebCrypto, batched exactly as portail/static/portail/js/challenge.js does; in a
Python loop (altcha.solve_challenge_v1, what a scripted flooder writes first); and prints the
expected time per challenge (the search stops on average halfway) and what 1,000 junk logins
cost each way. A phone is several times slower than this machine's Chromium: read the browser
figure as the lower bound of a pupil's wait. Asserts nothing; the machine is shared.
"""

import argparse
import http.server
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CHROMIUM = os.environ.get("PORTAIL_CHROMIUM", "/usr/bin/chromium")

# challenge.js's search, timed over `count` numbers (it never finds the target: the full cost).
SEARCH = """async ([salt, count]) => {
  const encoder = new TextEncoder();
  const t0 = performance.now();
  for (let start = 0; start < count; start += 200) {
    const digests = [];
    for (let n = start; n < start + 200; n++) {
      digests.push(crypto.subtle.digest("SHA-256", encoder.encode(salt + n)));
    }
    await Promise.all(digests);
  }
  return (performance.now() - t0) / 1000;
}"""


def browser_rate(count, samples):
    from playwright.sync_api import sync_playwright

    # A page on http://127.0.0.1 is a secure context: WebCrypto is there, as on the portal.
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
            seconds = [
                page.evaluate(SEARCH, ["0123456789abcdef?expires=1&", count])
                for _ in range(samples)
            ]
            browser.close()
    finally:
        server.shutdown()
    return count / statistics.median(seconds)


def python_rate(count, samples):
    import altcha

    challenge = altcha.hash_hex("SHA-256", b"never found")
    seconds = []
    for _ in range(samples):
        t0 = time.perf_counter()
        altcha.solve_challenge_v1(challenge, "0123456789abcdef?expires=1&", "SHA-256", count)
        seconds.append(time.perf_counter() - t0)
    return count / statistics.median(seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-number", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=5)
    args = parser.parse_args()
    count = 50_000
    os.chdir(Path(__file__).resolve().parent)  # the static server serves this folder
    load = os.getloadavg()[0]
    rates = {
        "Chromium WebCrypto (challenge.js)": browser_rate(count, args.samples),
        "Python loop (altcha.solve_challenge_v1)": python_rate(count, args.samples),
    }
    expected = args.max_number / 2
    print(
        f"max number {args.max_number:,}: {expected:,.0f} SHA-256 per challenge on average; "
        f"load average {load:.1f} (shared machine)"
    )
    for name, rate in rates.items():
        per = expected / rate
        print(
            f"  {name:42s} {rate:12,.0f} digests/s  {per:6.2f} s per challenge  "
            f"{1000 * per / 60:6.1f} CPU-min per 1,000 junk logins"
        )


if __name__ == "__main__":
    main()
