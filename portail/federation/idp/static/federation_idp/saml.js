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
  frames.forEach(function (frame) {
    // A portal page that posts the request to the provider loads twice: its own, the provider's.
    var loads = parseInt(frame.getAttribute("data-saml-logout"), 10) || 1;
    function loaded() { loads -= 1; if (loads === 0) one(); }
    frame.addEventListener("load", loaded);
    frame.addEventListener("error", function () { loads = 1; loaded(); });
  });
  // A provider that never answers does not keep the user here.
  window.setTimeout(function () { if (!done) { done = true; proceed(); } }, 5000);
})();
