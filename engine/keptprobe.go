package engine

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/clank-dev/clank/internal/connpeek"
)

// keptProbe is a supervised replica's health probe on a connection of its
// own, kept between probes and used by the replica's goroutine alone. The
// HTTP is net/http's (the request written by Request.Write, the answer read
// by ReadResponse); what it leaves out is the Transport's pair of goroutines
// per connection: a probe is a write and a read on the caller's goroutine,
// where through an http.Client each probe handed off between three
// goroutines several times, and each hand-off could wake a thread (the cost
// of fifty idle services was those wake-ups, not the HTTP).
// keptprobe_test.go holds its answers to those of probeWith, through an
// http.Client, on the same servers.
type keptProbe struct {
	port int
	path string
	addr string // 127.0.0.1:port
	req  *http.Request
	wire []byte // req as written

	conn net.Conn        // nil: none kept
	raw  syscall.RawConn // conn's socket, to look for bytes sent unasked
	br   *bufio.Reader
	got  int64 // bytes read on conn in this exchange
	// limit bounds got while the answer's head is read (0: none), as the
	// Transport bounds a response's headers.
	limit int64
}

// maxAnswerHead is the Transport's default bound on a response's headers.
const maxAnswerHead = 10 << 20

// newKeptProbe is a probe of GET path on 127.0.0.1:port.
func newKeptProbe(port int, path string) (*keptProbe, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", probeUserAgent)
	var wire bytes.Buffer
	if err := req.Write(&wire); err != nil {
		return nil, err
	}
	return &keptProbe{port: port, path: path, addr: addr, req: req, wire: wire.Bytes()}, nil
}

// Close closes the kept connection.
func (p *keptProbe) Close() {
	if p.conn != nil {
		p.conn.Close()
		p.conn, p.br = nil, nil
	}
}

// Read counts what the connection gave, so that a kept connection that the
// server closed meanwhile (nothing read) can be told from an answer cut off.
func (p *keptProbe) Read(b []byte) (int, error) {
	if p.limit > 0 && p.got >= p.limit {
		return 0, fmt.Errorf("net/http: server response headers exceeded %d bytes; aborted", maxAnswerHead)
	}
	n, err := p.conn.Read(b)
	p.got += int64(n)
	return n, err
}

// probe runs the health check once, as probeWith does: nil for an answer
// below 400, errUnhealthy with the status for the others, "no answer within
// timeout", or why nothing answered. ctx ending stops it.
func (p *keptProbe) probe(ctx context.Context, timeout time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	reused := p.conn != nil
	err := p.exchange(ctx, deadline)
	if err != nil && reused && p.got == 0 && !isTimeout(err) && ctx.Err() == nil {
		// The kept connection was closed by the server while idle (as
		// the Transport, try a GET once more on a new one).
		err = p.exchange(ctx, deadline)
	}
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case isTimeout(err):
		return fmt.Errorf("no answer within %s", timeout)
	}
	return err
}

// exchange sends the request on the kept connection (a new one when none
// is kept) and reads the answer; the connection is kept only when the
// answer leaves it reusable.
func (p *keptProbe) exchange(ctx context.Context, deadline time.Time) (err error) {
	if p.conn != nil && p.unasked() {
		p.Close() // its next "answer" would be the server's old bytes
	}
	if p.conn == nil {
		d := net.Dialer{Deadline: deadline}
		conn, err := d.DialContext(ctx, "tcp", p.addr)
		if err != nil {
			return err
		}
		p.conn = conn
		p.br = bufio.NewReader(p)
		p.raw = nil
		if sc, ok := conn.(syscall.Conn); ok {
			p.raw, _ = sc.SyscallConn()
		}
	}
	p.got, p.limit = 0, 0
	keep := false
	defer func() {
		if !keep {
			p.Close()
		}
	}()
	if err := p.conn.SetDeadline(deadline); err != nil {
		return err
	}
	// ctx ending cuts the exchange short. The function may run after
	// stop, once the probe is over: it has the connection of its own.
	conn := p.conn
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := p.conn.Write(p.wire); err != nil {
		return err
	}
	// As the Transport: nothing at all from the server is what reading
	// said ("EOF"), an answer that breaks off is a broken connection.
	if _, err := p.br.Peek(1); err != nil {
		return err
	}
	var resp *http.Response
	p.limit = maxAnswerHead
	for range maxInformational + 1 {
		if resp, err = http.ReadResponse(p.br, p.req); err != nil {
			return fmt.Errorf("net/http: HTTP/1.x transport connection broken: %w", err)
		}
		if resp.StatusCode < 100 || resp.StatusCode > 199 || resp.StatusCode == http.StatusSwitchingProtocols {
			break // 1xx but 101 are followed by the answer itself
		}
	}
	p.limit = 0 // the body is bounded below
	if resp.StatusCode >= 100 && resp.StatusCode <= 199 && resp.StatusCode != http.StatusSwitchingProtocols {
		return fmt.Errorf("net/http: too many 1xx informational responses")
	}
	_, rerr := io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	// Reusable: the whole body read, and neither side asked to close.
	// The body is not closed: its Close would read the rest, to the
	// deadline for a body without end; the connection goes instead.
	// Nor is a connection kept on which the server sent more than its
	// answer (unasked checks again for bytes that come later).
	keep = rerr == nil && !resp.Close && resp.StatusCode != http.StatusSwitchingProtocols && bodyDone(resp.Body) &&
		p.br.Buffered() == 0
	if resp.StatusCode >= 400 {
		return fmt.Errorf("%w: HTTP %d", errUnhealthy, resp.StatusCode)
	}
	return nil // a body cut off after the status counts as an answer, as with probeWith
}

// unasked reports whether the kept connection is no longer fit for a probe:
// the server sent bytes nobody asked for since the last answer (a probe
// would read them as its own answer: a stale "200" from a server that now
// fails), or closed it; or its socket cannot be looked at.
func (p *keptProbe) unasked() bool {
	return p.br.Buffered() > 0 || connpeek.Peek(p.raw) != connpeek.Quiet
}

// probeUserAgent is the User-Agent of health probes.
const probeUserAgent = "clank-health-check"

// maxInformational bounds the 1xx answers before the answer itself (the
// Transport bounds only their size, which maxAnswerHead does here too).
const maxInformational = 5

// bodyDone reports whether a body has nothing more to give.
func bodyDone(body io.Reader) bool {
	var b [1]byte
	n, err := body.Read(b[:])
	return n == 0 && err == io.EOF
}

// isTimeout reports whether err is a deadline that passed.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}
