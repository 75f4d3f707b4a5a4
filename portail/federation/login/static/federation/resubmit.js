// The SAML response arrived by a cross-site POST, without the session cookie (SameSite=Lax):
// post it again from this page, same-site, so that the session that sent the request comes too.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("educonnect-continue");
  if (form) form.submit();
});
