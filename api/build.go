package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"syscall"
)

// BuildMessage is one line of a build's answer stream (JSON lines): the
// engine's output as it comes, then the built image or the error.
type BuildMessage struct {
	Stream string `json:"stream,omitempty"`
	Image  string `json:"image,omitempty"` // the last line of a build that worked
	Error  string `json:"error,omitempty"` // the last line of a build that failed
	Code   string `json:"code,omitempty"`  // with Error: as in Error.Code
}

// Build sends buildContext (a tar stream with a Dockerfile at its root) to the
// daemon, which builds it for service, tags it with commit and, with push,
// pushes it to the Clank registry. The context is streamed, never held whole
// in memory. The build's output is copied to out as it arrives; the answer is
// the image reference to deploy.
func (c *Client) Build(ctx context.Context, service, commit string, push bool, buildContext io.Reader, out io.Writer) (string, error) {
	q := url.Values{"commit": {commit}}
	if push {
		q.Set("push", "1")
	}
	resp, err := c.sendBody(ctx, http.MethodPost, "/v1/services/"+url.PathEscape(service)+"/build", q, "application/x-tar", buildContext)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var m BuildMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return "", fmt.Errorf("build of %s: the daemon's answer ended early: %w", service, err)
		}
		switch {
		case m.Error != "":
			return "", &RemoteError{Status: resp.StatusCode, Code: m.Code, Msg: m.Error}
		case m.Image != "":
			return m.Image, nil
		case m.Stream != "" && out != nil:
			if _, err := io.WriteString(out, m.Stream); err != nil {
				return "", fmt.Errorf("build of %s: write output: %w", service, err)
			}
		}
	}
}

// sendBody makes a request with a raw body of contentType (nil for none) and
// returns the response of a 2xx answer; the caller closes its body. A body of
// unknown length goes out chunked as it is read.
func (c *Client) sendBody(ctx context.Context, method, path string, query url.Values, contentType string, body io.Reader) (*http.Response, error) {
	u := "http://clank" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	setCaller(req)
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("%w (no answer on %s): start it with `clank serve`", ErrNoDaemon, c.Socket)
		}
		return nil, fmt.Errorf("talk to the daemon on %s: %w", c.Socket, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		var e Error
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e = Error{Error: fmt.Sprintf("daemon answered %s", resp.Status), Code: "internal"}
		}
		return nil, &RemoteError{Status: resp.StatusCode, Code: e.Code, Msg: e.Error}
	}
	return resp, nil
}
