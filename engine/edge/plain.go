package edge

import (
	"context"
	"io"
	"mime"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// Plain requests (GET or HEAD without a body, an upgrade, an Expect or trailers: nearly
// all the traffic) skip httputil.ReverseProxy. It clones every request and its header
// map, wraps the context for 1xx forwarding and builds a flush writer per response:
// about half the allocations and a good share of the router's CPU per small request.
// servePlain does the same proxying with a pooled outgoing request that shares the
// inbound header values, and mirrors ReverseProxy's behaviour (net/http/httputil,
// ReverseProxy.ServeHTTP) point by point; the tests run both paths alike.

// hopHeaders are the hop-by-hop headers ReverseProxy removes both ways, besides those
// the Connection header names.
var hopHeaders = []string{
	"Connection",
	"Proxy-Connection",
	"Keep-Alive",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
}

// Shared header values of outgoing requests; nothing writes to them.
var (
	noUserAgent = []string{""} // present but empty: req.Write sends no Go User-Agent
	protoHTTP   = []string{"http"}
	protoHTTPS  = []string{"https"}
)

// isPlainRequest reports whether servePlain may serve req. Everything it declines goes
// through ReverseProxy: request bodies, upgrades, 100-continue and trailers need
// http.Transport or ReverseProxy's handling.
func isPlainRequest(req *http.Request) bool {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return false
	}
	// A request without a body: net/http gives HTTP/1 such a request http.NoBody;
	// over HTTP/2 the body is the stream's, empty when the client ended the stream
	// with its headers, which ContentLength 0 says (the server enforces a declared
	// Content-Length against the DATA frames).
	if req.ContentLength != 0 || (req.ProtoMajor < 2 && req.Body != nil && req.Body != http.NoBody) {
		return false
	}
	h := req.Header
	if len(h["Upgrade"]) > 0 || len(h["Expect"]) > 0 || len(h["Te"]) > 0 || len(h["Trailer"]) > 0 {
		return false
	}
	for _, v := range h["Connection"] {
		for token := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(textproto.TrimString(token), "upgrade") {
				return false
			}
		}
	}
	return true
}

// outRequest is an outgoing plain request and the storage it needs, pooled: nothing
// holds on to the request once servePlain has closed the response body.
type outRequest struct {
	req    http.Request
	url    url.URL
	header http.Header
	xff    [1]string
	xfh    [1]string
}

var outRequests = sync.Pool{New: func() any { return &outRequest{header: make(http.Header, 16)} }}

// build fills o from the inbound request in as ReverseProxy with target.rewrite
// would: end-to-end headers (the values shared, not copied: neither side changes
// them), the path and raw query untouched, Host kept, X-Forwarded-* set afresh.
func (o *outRequest) build(in *http.Request, addr string) {
	o.url = *in.URL
	o.url.Scheme, o.url.Host = "http", addr
	listed := connectionListed(in.Header)
	for k, vv := range in.Header {
		if slices.Contains(hopHeaders, k) || slices.Contains(listed, k) {
			continue
		}
		switch k {
		case "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto":
			continue // a client must not choose what the service believes about it
		}
		o.header[k] = vv
	}
	if clientIP, _, err := net.SplitHostPort(in.RemoteAddr); err == nil {
		o.xff[0] = clientIP
		o.header["X-Forwarded-For"] = o.xff[:]
	}
	o.xfh[0] = in.Host
	o.header["X-Forwarded-Host"] = o.xfh[:]
	if in.TLS == nil {
		o.header["X-Forwarded-Proto"] = protoHTTP
	} else {
		o.header["X-Forwarded-Proto"] = protoHTTPS
	}
	if _, ok := o.header["User-Agent"]; !ok {
		o.header["User-Agent"] = noUserAgent
	}
	o.req = http.Request{
		Method:     in.Method,
		URL:        &o.url,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     o.header,
		Host:       in.Host,
	}
}

// release drops every reference to the inbound request and pools o.
func (o *outRequest) release() {
	clear(o.header)
	o.req, o.url, o.xff, o.xfh = http.Request{}, url.URL{}, [1]string{}, [1]string{}
	outRequests.Put(o)
}

// connectionListed returns the canonical names the Connection header lists: hop-by-hop
// headers of this connection only. nil, without allocating, when there is none.
func connectionListed(h http.Header) []string {
	var listed []string
	for _, v := range h["Connection"] {
		for name := range strings.SplitSeq(v, ",") {
			if name = textproto.TrimString(name); name != "" {
				listed = append(listed, textproto.CanonicalMIMEHeaderKey(name))
			}
		}
	}
	return listed
}

// servePlain proxies a request isPlainRequest accepted. With retry, a request the
// backend left unanswered gets no answer: the error is returned instead.
func (b *target) servePlain(w http.ResponseWriter, req *http.Request, retry bool) error {
	out := outRequests.Get().(*outRequest)
	out.build(req, b.addr)
	// The handler goroutine runs the whole exchange, so 1xx answers reach w before the
	// final answer's headers are written, with no lock (ReverseProxy needs one).
	hints := func(code int, header textproto.MIMEHeader) error {
		h := w.Header()
		addHeader(h, http.Header(header))
		w.WriteHeader(code)
		clear(h) // WriteHeader keeps the header map for the final answer
		return nil
	}
	// The client going away cancels req's context, which closes the backend
	// connection mid-request (see backendConn.roundTrip): the backend sees it.
	res, err := b.transport.send(req.Context(), &out.req, hints)
	if err != nil {
		out.release()
		if retry && req.Context().Err() == nil && unanswered(err) {
			return err
		}
		b.proxyError(w, req, err)
		return nil
	}

	h := w.Header()
	listed := connectionListed(res.Header)
	for k, vv := range res.Header {
		if !slices.Contains(hopHeaders, k) && !slices.Contains(listed, k) {
			addValues(h, k, vv)
		}
	}
	// http.ReadResponse moves the announced trailer names from the Trailer header to
	// res.Trailer; announce them again to the client.
	announced := len(res.Trailer)
	if announced > 0 {
		names := make([]string, 0, announced)
		for k := range res.Trailer {
			names = append(names, k)
		}
		h.Add("Trailer", strings.Join(names, ", "))
	}
	w.WriteHeader(res.StatusCode)
	b.count(res.StatusCode)

	var flusher *http.ResponseController
	if streams(res) {
		// Streams go through unbuffered, headers first: an event stream's client
		// waits for them before the first event arrives.
		flusher = http.NewResponseController(w)
		flusher.Flush()
	}
	if err := b.copyBody(w, res.Body, flusher); err != nil {
		res.Body.Close()
		// The answer is under way: all that is left is to abort it, which the server
		// does on this panic (ReverseProxy does the same). out stays unpooled.
		if req.Context().Value(http.ServerContextKey) == nil {
			b.logger.Debug("body copy failed outside a server", "path", req.URL.Path, "err", err)
			return nil
		}
		panic(http.ErrAbortHandler)
	}
	res.Body.Close() // the body read to its end: res.Trailer holds the trailers now
	out.release()

	if len(res.Trailer) > 0 {
		// Force chunking, so that the server sends the trailers rather than computing
		// a Content-Length for a short body.
		http.NewResponseController(w).Flush()
	}
	if len(res.Trailer) == announced {
		addHeader(h, res.Trailer)
		return nil
	}
	for k, vv := range res.Trailer { // trailers the backend did not announce
		for _, v := range vv {
			h.Add(http.TrailerPrefix+k, v)
		}
	}
	return nil
}

// streams reports whether res must reach the client write by write: an event stream,
// or a body of unknown length (ReverseProxy.flushInterval).
func streams(res *http.Response) bool {
	if ct := res.Header.Get("Content-Type"); mayBeEventStream(ct) {
		if base, _, _ := mime.ParseMediaType(ct); base == "text/event-stream" {
			return true
		}
	}
	return res.ContentLength == -1
}

// mayBeEventStream reports whether ct holds "text/event-stream" in any case: only then
// is it worth mime.ParseMediaType, which allocates a map.
func mayBeEventStream(ct string) bool {
	const es = "text/event-stream"
	for i := 0; i+len(es) <= len(ct); i++ {
		if strings.EqualFold(ct[i:i+len(es)], es) {
			return true
		}
	}
	return false
}

// copyBody copies the response body to the client with a pooled buffer, flushing
// after every write when flusher is set. It returns the first write error or read
// error other than EOF (ReverseProxy.copyBuffer).
func (b *target) copyBody(w http.ResponseWriter, body io.Reader, flusher *http.ResponseController) error {
	buf := proxyBuffers.Get()
	defer proxyBuffers.Put(buf)
	for {
		nr, rerr := body.Read(buf)
		if rerr != nil && rerr != io.EOF && rerr != context.Canceled {
			b.logger.Debug("read error during body copy", "err", rerr)
		}
		if nr > 0 {
			nw, werr := w.Write(buf[:nr])
			if werr != nil {
				return werr
			}
			if nw != nr {
				return io.ErrShortWrite
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// addHeader adds every value of src to dst, as ReverseProxy's copyHeader.
func addHeader(dst, src http.Header) {
	for k, vv := range src {
		addValues(dst, k, vv)
	}
}

// addValues adds vv to dst[k]. A key dst lacks takes vv itself rather than a copy:
// the backend's response headers belong to this request alone.
func addValues(dst http.Header, k string, vv []string) {
	if prev, ok := dst[k]; ok {
		dst[k] = append(prev, vv...)
	} else {
		dst[k] = vv
	}
}
