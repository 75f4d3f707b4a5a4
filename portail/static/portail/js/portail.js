// Progressive enhancement only: every form works without this file.
(function () {
  "use strict";

  // The eye button: shows the password in clear for checking, and hides it again.
  function setupToggle(button) {
    var input = document.getElementById(button.getAttribute("aria-controls"));
    if (!input) return;
    button.addEventListener("click", function () {
      var show = input.type === "password";
      input.type = show ? "text" : "password";
      button.setAttribute("aria-pressed", show ? "true" : "false");
      button.setAttribute("aria-label", show ? "Masquer le mot de passe" : "Afficher le mot de passe");
    });
  }

  // The strength meter: asks the server, which judges with the very function it enforces.
  function setupMeter(meter) {
    var input = document.getElementById(meter.getAttribute("data-strength-for"));
    if (!input) return;
    var form = input.form;
    var label = meter.querySelector(".strength__label");
    var bar = meter.querySelector(".strength__bar");
    var timer = null;
    var seq = 0;
    function update() {
      var value = input.value;
      if (!value) { bar.hidden = true; label.textContent = ""; return; }
      var body = new FormData();
      body.append("password", value);
      var ident = form && form.querySelector("[name=identifier]");
      if (ident) body.append("identifier", ident.value);
      var token = form && form.querySelector("[name=csrfmiddlewaretoken]");
      var mine = ++seq;
      fetch(meter.getAttribute("data-strength-url"), {
        method: "POST", body: body, credentials: "same-origin",
        headers: token ? { "X-CSRFToken": token.value } : {}
      }).then(function (r) { return r.ok ? r.json() : null; }).then(function (data) {
        if (!data || mine !== seq) return;
        bar.hidden = false;
        meter.setAttribute("data-level", data.level);
        meter.querySelector(".strength__fill").style.width = data.percent + "%";
        var text = "Sécurité : " + data.level;
        if (data.errors && data.errors.length) text += ". " + data.errors[0];
        label.textContent = text;
      }).catch(function () {});
    }
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(update, 250);
    });
  }

  // The error summary: focused on load (read at once by a screen reader), its links focus the field,
  // and a field's stale server error is hidden as soon as the user changes that field.
  function setupErrors(summary) {
    summary.focus();
    summary.querySelectorAll("[data-error-link]").forEach(function (link) {
      link.addEventListener("click", function (event) {
        var target = document.getElementById(link.getAttribute("href").slice(1));
        if (!target) return;
        event.preventDefault();
        var label = document.querySelector("label[for='" + target.id + "']");
        (label || target).scrollIntoView({ block: "center" });
        target.focus();
      });
    });
  }

  function clearStale(event) {
    var input = event.target;
    if (!input || input.getAttribute("aria-invalid") !== "true") return;
    input.removeAttribute("aria-invalid");
    var error = document.getElementById(input.id + "_error");
    if (error) error.hidden = true;
    var field = input.closest(".field");
    if (field) field.classList.remove("field--error");
    var described = (input.getAttribute("aria-describedby") || "").split(" ").filter(function (id) {
      return id && id !== input.id + "_error";
    });
    if (described.length) input.setAttribute("aria-describedby", described.join(" "));
    else input.removeAttribute("aria-describedby");
    var summary = document.querySelector("[data-error-summary]");
    if (!summary || !error) return;
    summary.querySelectorAll("[data-error-link]").forEach(function (link) {
      if (link.getAttribute("href") === "#" + input.id) link.parentNode.hidden = true;
    });
    if (!summary.querySelector("li:not([hidden])")) summary.hidden = true;
  }

  function init() {
    var summary = document.querySelector("[data-error-summary]");
    if (summary) setupErrors(summary);
    document.addEventListener("input", clearStale);
    document.addEventListener("change", clearStale);
    document.querySelectorAll("[data-password-toggle]").forEach(setupToggle);
    document.querySelectorAll("[data-strength-for]").forEach(setupMeter);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
