<?php
// A school application signing its users in with phpCAS (Debian's php-cas, the CAS client Moodle
// bundles), configured as Moodle's auth_cas does: CAS 3.0, the portal's host, port and "/cas",
// single logout requests accepted. Served by `php -S` for tests/sso/test_interop_phpcas.py.
//
//   /            forceAuthentication, then JSON {user, attributes}
//   /?status=1   JSON {user} of this application's own session, null when there is none
//   /?logout=1   phpCAS::logoutWithRedirectService (the application's « Déconnexion »)
//   /?gateway=1  checkAuthentication (CAS gateway: silent, never the login form), JSON {user}
require_once 'CAS.php';

$portal = getenv('PORTAL');          // http://127.0.0.1:PORT (loopback: the tests speak http)
$service = getenv('SERVICE');        // this application's URL, registered on the portal
$server = parse_url($portal);

phpCAS::client(CAS_VERSION_3_0, $server['host'], (int) $server['port'], '/cas', $service);
// phpCAS builds https:// URLs from host/port/uri; on loopback http the same URLs are given whole.
phpCAS::setServerLoginURL($portal . '/cas/login?service=' . urlencode(phpCAS::getServiceURL()));
phpCAS::setServerServiceValidateURL($portal . '/cas/p3/serviceValidate');
phpCAS::setServerLogoutURL($portal . '/cas/logout');
phpCAS::setNoCasServerValidation();  // no TLS on loopback; Moodle sets the CA certificate
phpCAS::handleLogoutRequests(false); // the portal's single logout (its address is loopback)

header('Content-Type: application/json');
if (isset($_GET['status'])) {
    echo json_encode(['user' => phpCAS::isAuthenticated() ? phpCAS::getUser() : null]);
    exit;
}
if (isset($_GET['gateway'])) {
    echo json_encode(['user' => phpCAS::checkAuthentication() ? phpCAS::getUser() : null]);
    exit;
}
if (isset($_GET['logout'])) {
    phpCAS::logoutWithRedirectService($service);
}
phpCAS::forceAuthentication();
echo json_encode(['user' => phpCAS::getUser(), 'attributes' => phpCAS::getAttributes()]);
