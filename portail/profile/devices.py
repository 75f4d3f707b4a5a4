"""« Chrome sur Android »: a short description of a device that a parent recognises.

ua-parser (the maintained Python port of uap-core, the regexes browsers' and CDNs' analytics
share) reads the User-Agent; we only pick the browser's and the system's family names.
"""

from functools import lru_cache

from ua_parser import parse

# Families as ua-parser names them, as people say them.
_BROWSERS = {
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": "Chrome",
    "HeadlessChrome": "Chrome",
    "Chromium": "Chromium",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "Safari",
    "Edge": "Edge",
    "Edge Mobile": "Edge",
    "Samsung Internet": "Samsung Internet",
    "Opera Mobile": "Opera",
}
_SYSTEMS = {
    "Mac OS X": "macOS",
    "iOS": "iPhone ou iPad",
    "Chrome OS": "Chromebook",
    "Ubuntu": "Linux",
    "Debian": "Linux",
    "Fedora": "Linux",
}
_UNKNOWN = "Appareil inconnu"


@lru_cache(maxsize=1024)
def describe(user_agent: str) -> str:
    """« Firefox sur Windows », « Safari sur iPhone ou iPad », « Chrome », or « Appareil inconnu »."""
    if not user_agent:
        return _UNKNOWN
    result = parse(user_agent[:512])
    browser = result.user_agent.family if result.user_agent else ""
    system = result.os.family if result.os else ""
    if result.device and result.device.family == "iPad":
        system = "iPad"
    elif result.device and result.device.family == "iPhone":
        system = "iPhone"
    else:
        system = _SYSTEMS.get(system, system)
    browser = _BROWSERS.get(browser, browser)
    browser = "" if browser == "Other" else browser
    system = "" if system == "Other" else system
    if browser and system:
        return f"{browser} sur {system}"
    return browser or system or _UNKNOWN
