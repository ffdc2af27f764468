package engine

// Certificates obtains and renews the TLS certificates of the domains services
// serve (certs.Manager implements it over ACME; the daemon wires one when HTTPS
// is on). Its methods return at once: a certificate is obtained in the
// background and never holds up a deployment or its HTTP traffic.
//
// The engine says which domains a service needs certificates for when a
// deployment that carries them starts (the domains of the ACTIVE deployment
// and of the new one), when it becomes ACTIVE or fails (its own, or the ACTIVE
// one's), and at reconcile: so a rollback that brings a domain back brings its
// certificate back.
type Certificates interface {
	// Want says which domains service needs certificates for from now on (nil:
	// none). The manager skips names no public CA issues for (*.localhost, IPs).
	Want(service string, domains []string)
	// Redirect says whether plain-HTTP requests for service's domains that have a
	// certificate are redirected to HTTPS.
	Redirect(service string, on bool)
}

// noCertificates is the Certificates of an engine without HTTPS.
type noCertificates struct{}

func (noCertificates) Want(string, []string) {}
func (noCertificates) Redirect(string, bool) {}
