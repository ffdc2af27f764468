package edge

import (
	"log/slog"
	"net/http"
	"time"
)

// Limits of a client connection to the edge, on the HTTP and the HTTPS listener alike.
// The edge faces the internet: without them a client that trickles its headers
// (slowloris), never finishes them, or opens keep-alive connections and leaves them
// idle holds a connection and a goroutine forever.
const (
	// ReadHeaderTimeout bounds reading a request's headers, from the first byte of the
	// request (and the TLS handshake, on HTTPS); a client still sending them then is
	// closed. Request bodies are not bounded: uploads and streams may be long.
	ReadHeaderTimeout = 10 * time.Second
	// IdleTimeout closes a keep-alive connection that has carried no request for this long.
	IdleTimeout = 2 * time.Minute
	// MaxHeaderBytes bounds a request's header block (request line included); net/http
	// answers a larger one with 431 Request Header Fields Too Large (it allows 4 KiB of
	// slack over this). Over HTTP/2 it is the advertised SETTINGS_MAX_HEADER_LIST_SIZE.
	MaxHeaderBytes = 64 << 10
)

// ServerOptions are the limits of a server made by NewServer; zero fields take the
// constants above (tests use shorter ones).
type ServerOptions struct {
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
	// Logger receives the server's own errors (TLS handshakes that fail, panics in a
	// handler) at Debug: on an internet-facing port they are strangers' noise. nil discards.
	Logger *slog.Logger
}

// NewServer returns the http.Server that serves h to the edge's clients with the limits
// above. The daemon serves the router through it on every edge listener.
func NewServer(h http.Handler, opts ServerOptions) *http.Server {
	if opts.ReadHeaderTimeout == 0 {
		opts.ReadHeaderTimeout = ReadHeaderTimeout
	}
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = IdleTimeout
	}
	if opts.MaxHeaderBytes == 0 {
		opts.MaxHeaderBytes = MaxHeaderBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		IdleTimeout:       opts.IdleTimeout,
		MaxHeaderBytes:    opts.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
	}
}
