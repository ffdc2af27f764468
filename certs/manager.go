package certs

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
)

// Defaults for the zero Options.
const (
	// DefaultCA is Let's Encrypt's production directory.
	DefaultCA = certmagic.LetsEncryptProductionCA
	// DefaultRetryMin is the wait after a first failure to obtain a certificate; it
	// doubles with each failure up to DefaultRetryMax. Let's Encrypt allows 5 failed
	// validations per hostname an hour: this schedule stays under it.
	DefaultRetryMin = time.Minute
	DefaultRetryMax = time.Hour
	// closeWait bounds how long Close waits for ACME work to stop: an ACME server that
	// hangs must not hold up the daemon's shutdown.
	closeWait = 5 * time.Second
	// maxError bounds an error as shown in List and in events (ACME problems can be long).
	maxError = 400
)

// States of a domain's certificate (Status.State, `clank certs`).
const (
	StateObtaining = "obtaining" // no certificate yet, the first attempt is under way
	StateValid     = "valid"     // a certificate is served
	StateFailed    = "failed"    // no certificate: the last attempt failed, it is retried
	StateExpired   = "expired"   // the certificate served has expired: renewals fail
)

// Options configure a Manager. Dir is required.
type Options struct {
	Dir   string // where certificates, keys and the ACME account are kept
	CA    string // ACME directory URL (DefaultCA if "")
	Email string // the ACME account's contact, "" for none
	// TrustedRoots are the roots trusted for the CA's own HTTPS; nil trusts the system's.
	TrustedRoots *x509.CertPool
	// HTTPAddr and HTTPSAddr are the edge's listeners: HTTP-01 challenges are answered
	// on the first (HTTPHandler), TLS-ALPN-01 on the second (TLSConfig). "" for none.
	HTTPAddr, HTTPSAddr string
	// RetryMin and RetryMax bound the backoff between attempts to obtain a certificate
	// (DefaultRetryMin and DefaultRetryMax if 0).
	RetryMin, RetryMax time.Duration
	// RenewCheckInterval is how often certmagic looks for certificates to renew (its
	// default, 10 minutes, if 0).
	RenewCheckInterval time.Duration
	// Notify receives each change worth telling an operator: obtained, renewed, failed.
	Notify func(Event)
	Logger *slog.Logger
}

// Event is a change in a domain's certificate.
type Event struct {
	Service string
	Domain  string
	Message string // one line: what happened, and for a failure why and when it is retried
	Failed  bool
}

// Status is one domain's certificate, as `clank certs` lists it.
type Status struct {
	Domain    string
	Service   string
	State     string    // StateObtaining, StateValid, StateFailed or StateExpired
	Issuer    string    // the issuing CA's name, "" before the first certificate
	NotAfter  time.Time // zero before the first certificate
	LastError string    // the last failure to obtain or renew, "" since a success
}

// Manager obtains and renews the certificates of the domains services serve. It
// implements engine.Certificates.
type Manager struct {
	opts   Options
	log    *slog.Logger
	cache  *certmagic.Cache
	cfg    *certmagic.Config
	issuer *certmagic.ACMEIssuer
	// httpsPort is what a redirect names after the host ("" for 443).
	httpsPort string

	ctx       context.Context // ends at Close: every worker stops
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once

	mu       sync.Mutex
	domains  map[string]*domain  // every domain some service wants a certificate for
	services map[string][]string // service -> the domains it wants (qualifying ones)
	noRedir  map[string]bool     // services whose https_redirect is off
	stopping map[string]chan struct{}
	attempts map[string]context.CancelCauseFunc // domain -> its obtain in flight (see attempt)
	// redirects is the set of hosts whose plain-HTTP requests go to HTTPS: a
	// certificate is served for them and their service's redirect is on. Read by every
	// HTTP request, lock-free; rebuilt under mu.
	redirects atomic.Pointer[map[string]bool]
}

// domain is one domain's certificate work.
type domain struct {
	name, service string
	cancel        context.CancelFunc
	done          chan struct{} // closed when its worker has returned
	ready         bool          // a certificate for it is in the cache
	lastErr       string
}

// New makes a Manager; it obtains nothing until told what services serve (Want).
func New(opts Options) (*Manager, error) {
	if opts.Dir == "" {
		return nil, errors.New("certs: no directory")
	}
	if opts.CA == "" {
		opts.CA = DefaultCA
	}
	if opts.RetryMin == 0 {
		opts.RetryMin = DefaultRetryMin
	}
	if opts.RetryMax == 0 {
		opts.RetryMax = DefaultRetryMax
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Notify == nil {
		opts.Notify = func(Event) {}
	}
	m := &Manager{
		opts:     opts,
		log:      opts.Logger,
		domains:  map[string]*domain{},
		services: map[string][]string{},
		noRedir:  map[string]bool{},
		stopping: map[string]chan struct{}{},
		attempts: map[string]context.CancelCauseFunc{},
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.redirects.Store(&map[string]bool{})
	zl := zapLogger(opts.Logger.With("part", "certmagic"))

	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return m.cfg, nil },
		RenewCheckInterval: opts.RenewCheckInterval,
		Logger:             zl,
	})
	m.cfg = certmagic.New(m.cache, certmagic.Config{
		Storage: &certmagic.FileStorage{Path: opts.Dir},
		Logger:  zl,
		OnEvent: m.onEvent,
		// Only what onEvent uses: certmagic also emits an event per TLS handshake.
		ShouldEmitFunc: func(event string) bool { return event == "cert_obtained" || event == "cert_failed" },
	})
	tmpl := certmagic.ACMEIssuer{
		CA:           opts.CA,
		Email:        opts.Email,
		Agreed:       true, // turning HTTPS on is the operator's agreement to the CA's terms (README)
		TrustedRoots: opts.TrustedRoots,
		Logger:       zl,
	}
	// certmagic answers a challenge with a listener of its own on the challenge's port
	// unless that port is taken, in which case it leaves the answer to whoever serves
	// there: the edge's listeners, through HTTPHandler and TLSConfig.
	if host, port, ok := splitPort(opts.HTTPAddr); ok {
		tmpl.ListenHost, tmpl.AltHTTPPort = host, port
	} else {
		tmpl.DisableHTTPChallenge = true
	}
	if host, port, ok := splitPort(opts.HTTPSAddr); ok {
		tmpl.ListenHost, tmpl.AltTLSALPNPort = host, port
		if port != 443 {
			m.httpsPort = fmt.Sprint(port)
		}
	} else {
		tmpl.DisableTLSALPNChallenge = true
	}
	m.issuer = certmagic.NewACMEIssuer(m.cfg, tmpl)
	m.cfg.Issuers = []certmagic.Issuer{m.issuer}
	return m, nil
}

func splitPort(addr string) (host string, port int, ok bool) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, false
	}
	n, err := net.LookupPort("tcp", p)
	return h, n, err == nil && n != 0
}

// Qualifies reports whether a public CA can issue a certificate for domain: never
// localhost, a *.localhost name or an IP address, nor a single label or a name
// certmagic knows to be internal (.local, .internal, .home.arpa). Everything that asks
// for a certificate goes through it, so that no CA is ever asked for one of these (a
// refusal would only count against the rate limits).
func Qualifies(domain string) bool {
	d := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(domain)), ".")
	switch {
	case d == "localhost", strings.HasSuffix(d, ".localhost"), net.ParseIP(d) != nil, !strings.Contains(d, "."):
		return false
	}
	return certmagic.SubjectQualifiesForPublicCert(d)
}

// Want says which domains service needs certificates for from now on (nil: none). It
// returns at once: certificates are obtained in the background. A domain that does not
// qualify is skipped; one no longer wanted stops being served and renewed (its
// certificate stays on disk, so that a rollback that brings it back serves it again at
// once).
func (m *Manager) Want(service string, domains []string) {
	var want []string
	for _, d := range domains {
		d = strings.TrimSuffix(strings.ToLower(d), ".")
		if Qualifies(d) && !slices.Contains(want, d) {
			want = append(want, d)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx.Err() != nil {
		return
	}
	for _, d := range m.services[service] {
		if dom := m.domains[d]; dom != nil && dom.service == service && !slices.Contains(want, d) {
			m.forgetLocked(dom)
		}
	}
	for _, d := range want {
		if dom := m.domains[d]; dom != nil {
			dom.service = service // a domain moves with the service that claims it last
			continue
		}
		m.startLocked(service, d)
	}
	if len(want) == 0 {
		delete(m.services, service)
	} else {
		m.services[service] = want
	}
	m.publishRedirectsLocked()
}

// Redirect says whether plain-HTTP requests for service's domains that have a
// certificate are redirected to HTTPS (on unless said otherwise).
func (m *Manager) Redirect(service string, on bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if on {
		delete(m.noRedir, service)
	} else {
		m.noRedir[service] = true
	}
	m.publishRedirectsLocked()
}

func (m *Manager) startLocked(service, name string) {
	ctx, cancel := context.WithCancel(m.ctx)
	dom := &domain{name: name, service: service, cancel: cancel, done: make(chan struct{})}
	m.domains[name] = dom
	after := m.stopping[name] // a worker for the same name that is still stopping
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.obtain(ctx, dom, after)
	}()
}

// forgetLocked stops a domain's worker and its certificate's service and renewals.
func (m *Manager) forgetLocked(dom *domain) {
	dom.cancel()
	delete(m.domains, dom.name)
	m.stopping[dom.name] = dom.done
	go func() {
		<-dom.done
		m.mu.Lock()
		if m.stopping[dom.name] == dom.done {
			delete(m.stopping, dom.name)
		}
		m.mu.Unlock()
	}()
	m.cache.RemoveManaged([]certmagic.SubjectIssuer{{Subject: dom.name}})
}

// obtain gets dom's certificate: from storage if it is there and good, else from the
// CA, retrying with backoff until it has one or dom is forgotten. Once it has one,
// certmagic's maintenance renews it.
func (m *Manager) obtain(ctx context.Context, dom *domain, after <-chan struct{}) {
	defer close(dom.done)
	if after != nil { // its predecessor removes its certificate from the cache when it stops
		select {
		case <-after:
		case <-ctx.Done():
			return
		}
	}
	wait := m.opts.RetryMin
	for {
		err := m.attempt(ctx, dom.name)
		if ctx.Err() != nil {
			m.cache.RemoveManaged([]certmagic.SubjectIssuer{{Subject: dom.name}}) // it may have just been cached
			return
		}
		if err == nil {
			m.obtained(dom)
			return
		}
		m.failed(dom, err, wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, m.opts.RetryMax)
	}
}

// attempt makes one attempt at name's certificate: from storage if it is there (an
// expiring one is renewed by certmagic's maintenance), else from the CA.
//
// certmagic's interactive obtain (ManageSync) would prompt on stdin for an email
// address when none is configured, and its background obtain retries on its own
// schedule (1 minute, then longer). attempt uses the background obtain and ends it at
// its first failure, which onEvent hears: one attempt, no prompt, and the backoff stays
// obtain's.
func (m *Manager) attempt(ctx context.Context, name string) error {
	if m.current(name) != nil {
		return nil
	}
	if _, err := m.cfg.CacheManagedCertificate(ctx, name); !errors.Is(err, fs.ErrNotExist) {
		return err // nil: loaded from storage
	}
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	m.mu.Lock()
	m.attempts[name] = cancel
	m.mu.Unlock()
	err := m.cfg.ObtainCertAsync(actx, name)
	m.mu.Lock()
	delete(m.attempts, name)
	m.mu.Unlock()
	if cause := context.Cause(actx); cause != nil && ctx.Err() == nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	if err != nil {
		return err
	}
	_, err = m.cfg.CacheManagedCertificate(ctx, name)
	return err
}

func (m *Manager) obtained(dom *domain) {
	m.mu.Lock()
	dom.ready, dom.lastErr = true, ""
	service := dom.service
	m.publishRedirectsLocked()
	m.mu.Unlock()
	msg := "certificate for " + dom.name + " is served"
	if c := m.current(dom.name); c != nil {
		msg += fmt.Sprintf(" (%s, valid until %s)", issuerName(c), c.NotAfter.UTC().Format(time.RFC3339))
	}
	m.log.Info(msg, "service", service)
	m.opts.Notify(Event{Service: service, Domain: dom.name, Message: msg})
}

func (m *Manager) failed(dom *domain, err error, retryIn time.Duration) {
	// certmagic starts its errors with "[name] ": the name is said already.
	reason := oneLine(strings.TrimPrefix(err.Error(), "["+dom.name+"] "))
	m.mu.Lock()
	dom.lastErr = reason
	service := dom.service
	m.mu.Unlock()
	msg := fmt.Sprintf("certificate for %s could not be obtained (retrying in %s; the service answers on HTTP meanwhile): %s", dom.name, retryIn, reason)
	m.log.Warn(msg, "service", service)
	m.opts.Notify(Event{Service: service, Domain: dom.name, Message: msg, Failed: true})
}

// onEvent hears certmagic's renewals, which its maintenance runs in the background,
// and the failures of attempts.
func (m *Manager) onEvent(_ context.Context, event string, data map[string]any) error {
	name, _ := data["identifier"].(string)
	if renewal, _ := data["renewal"].(bool); !renewal {
		if event == "cert_failed" { // end the attempt with its reason (see attempt)
			err, _ := data["error"].(error)
			if err == nil {
				err = errors.New("certmagic reported a failure without an error")
			}
			m.mu.Lock()
			if cancel := m.attempts[name]; cancel != nil {
				cancel(err)
			}
			m.mu.Unlock()
		}
		return nil // the rest of a first obtain is reported by obtain
	}
	m.mu.Lock()
	dom := m.domains[name]
	if dom == nil {
		m.mu.Unlock()
		return nil
	}
	service := dom.service
	var ev Event
	switch event {
	case "cert_obtained":
		dom.lastErr = ""
		ev = Event{Service: service, Domain: name, Message: "certificate for " + name + " renewed"}
	case "cert_failed":
		err, _ := data["error"].(error)
		dom.lastErr = oneLine(fmt.Sprint(err))
		ev = Event{Service: service, Domain: name, Failed: true,
			Message: "certificate for " + name + " could not be renewed (certmagic retries with backoff): " + dom.lastErr}
	default:
		m.mu.Unlock()
		return nil
	}
	m.mu.Unlock()
	m.log.Info(ev.Message, "service", service)
	m.opts.Notify(ev)
	return nil
}

// publishRedirectsLocked rebuilds the set of hosts that redirect to HTTPS.
func (m *Manager) publishRedirectsLocked() {
	set := make(map[string]bool, len(m.domains))
	for name, dom := range m.domains {
		if dom.ready && !m.noRedir[dom.service] {
			set[name] = true
		}
	}
	m.redirects.Store(&set)
}

// List returns every wanted domain's certificate, by domain.
func (m *Manager) List() []Status {
	m.mu.Lock()
	doms := make([]domain, 0, len(m.domains))
	for _, d := range m.domains {
		doms = append(doms, *d)
	}
	m.mu.Unlock()
	out := make([]Status, 0, len(doms))
	for _, d := range doms {
		s := Status{Domain: d.name, Service: d.service, LastError: d.lastErr, State: StateObtaining}
		if d.lastErr != "" {
			s.State = StateFailed
		}
		if c := m.current(d.name); c != nil {
			s.Issuer, s.NotAfter, s.State = issuerName(c), c.NotAfter, StateValid
			if time.Now().After(c.NotAfter) {
				s.State = StateExpired
			}
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Domain, b.Domain) })
	return out
}

// current is the leaf of the newest certificate in the cache for name, or nil.
func (m *Manager) current(name string) *x509.Certificate {
	var leaf *x509.Certificate
	for _, c := range m.cache.AllMatchingCertificates(name) {
		if c.Leaf != nil && slices.Contains(c.Names, name) && (leaf == nil || c.Leaf.NotAfter.After(leaf.NotAfter)) {
			leaf = c.Leaf
		}
	}
	return leaf
}

func issuerName(c *x509.Certificate) string {
	if c.Issuer.CommonName != "" {
		return c.Issuer.CommonName
	}
	return strings.Join(c.Issuer.Organization, ", ")
}

// Close stops obtaining and renewing. It waits a bounded time for ACME work in flight
// to stop: an ACME server that hangs does not hold it up. Calls after the first do nothing.
func (m *Manager) Close() error {
	m.closeOnce.Do(m.close)
	return nil
}

func (m *Manager) close() {
	m.mu.Lock()
	m.cancel()
	m.mu.Unlock()
	done := make(chan struct{})
	go func() {
		m.wg.Wait()
		m.cache.Stop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(closeWait):
		m.log.Warn("certificate work still stopping after " + closeWait.String() + "; not waiting for it")
	}
}

// oneLine folds an error onto one bounded line.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > maxError {
		s = string(r[:maxError-1]) + "…"
	}
	return s
}
