// SAML HTTP-POST binding and front-channel logout: moves on by itself; the buttons work without it.
(function () {
  "use strict";
  var form = document.querySelector("form[data-saml-autosubmit]");
  var next = document.querySelector("a[data-saml-next]");
  var frames = Array.prototype.slice.call(document.querySelectorAll("iframe[data-saml-logout]"));
  function proceed() {
    if (form) form.submit();
    else if (next) window.location.assign(next.getAttribute("href"));
  }
  if (!frames.length) { proceed(); return; }
  var pending = frames.length;
  var done = false;
  function one() {
    pending -= 1;
    if (pending <= 0 && !done) { done = true; proceed(); }
  }
  frames.forEach(function (frame) { frame.addEventListener("load", one); frame.addEventListener("error", one); });
  // A provider that never answers does not keep the user here.
  window.setTimeout(function () { if (!done) { done = true; proceed(); } }, 5000);
})();
