// The proof-of-work challenge (ALTCHA-style, self-hosted): find the number whose SHA-256, after
// the salt, is the challenge. Nothing to click or solve by hand: it runs as soon as the page is
// loaded, says where it is in an aria-live region, and submits the form itself if the person
// pressed "Connexion" before it was done.
(function () {
  "use strict";
  var widget = document.querySelector("[data-challenge-widget]");
  if (!widget) return;
  var input = widget.querySelector("[data-challenge-input]");
  var status = widget.querySelector("[data-challenge-status]");
  var form = input.form;
  var data = JSON.parse(document.getElementById("portail-challenge").textContent);
  var solved = false;
  var submitWanted = false;
  // The recovery pages word it for their request (data-text-* of partials/challenge.html).
  var words = {
    sending: widget.dataset.textSending || "Vérification de sécurité terminée. Connexion en cours…",
    ready: widget.dataset.textReady || "Vérification de sécurité terminée. Vous pouvez vous connecter.",
    waiting: widget.dataset.textWaiting ||
      "Vérification de sécurité en cours. La connexion se fera toute seule dans quelques secondes."
  };
  var BATCH = 200; // digests in flight at once: WebCrypto is asynchronous (200: fastest measured)

  function say(text) { status.textContent = text; }

  function sameBytes(buffer, expected) {
    var bytes = new Uint8Array(buffer);
    for (var i = 0; i < expected.length; i++) {
      if (bytes[i] !== expected[i]) return false;
    }
    return true;
  }

  function solve() {
    var expected = new Uint8Array(data.challenge.length / 2);
    for (var i = 0; i < expected.length; i++) {
      expected[i] = parseInt(data.challenge.substr(2 * i, 2), 16);
    }
    var encoder = new TextEncoder();
    function batch(start) {
      if (start > data.maxNumber) return Promise.resolve(null);
      var end = Math.min(start + BATCH - 1, data.maxNumber);
      var digests = [];
      for (var n = start; n <= end; n++) {
        digests.push(crypto.subtle.digest("SHA-256", encoder.encode(data.salt + n)));
      }
      return Promise.all(digests).then(function (results) {
        for (var k = 0; k < results.length; k++) {
          if (sameBytes(results[k], expected)) return start + k;
        }
        return batch(end + 1);
      });
    }
    return batch(0);
  }

  function done(number) {
    input.value = btoa(JSON.stringify({
      algorithm: data.algorithm, challenge: data.challenge, number: number,
      salt: data.salt, signature: data.signature
    }));
    solved = true;
    if (submitWanted) {
      say(words.sending);
      form.submit();
    } else {
      say(words.ready);
    }
  }

  form.addEventListener("submit", function (event) {
    if (solved) return;
    event.preventDefault();
    submitWanted = true;
    say(words.waiting);
  });

  if (!(window.crypto && crypto.subtle && window.TextEncoder)) {
    say("Votre navigateur ne permet pas la vérification de sécurité automatique. " +
        "Connectez-vous depuis un autre navigateur ou demandez au référent ENT de votre établissement.");
    return;
  }
  say("Vérification de sécurité en cours, elle prend quelques secondes…");
  solve().then(function (number) {
    if (number === null) {
      say("La vérification de sécurité n'a pas abouti. Rechargez la page pour réessayer.");
    } else {
      done(number);
    }
  }, function () {
    say("La vérification de sécurité n'a pas abouti. Rechargez la page pour réessayer.");
  });
})();
