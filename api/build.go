package api

import (
	"bytes"
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
	// Result is the last line of a git push that Clank accepted: "deployed",
	// "held" (built, not deployed: the service is frozen) or "stored" (not
	// the service's deploy branch).
	Result string `json:"result,omitempty"`
}

// GitPush is a push to a service's repository as its pre-receive hook saw
// it: the ref updates, and where git keeps the pushed objects until the
// push is accepted.
type GitPush struct {
	Updates             []RefUpdate `json:"updates"`
	ObjectDir           string      `json:"object_dir"`
	AlternateObjectDirs string      `json:"alternate_object_dirs"`
}

// RefUpdate is one ref a push moves (40 zeros for "none").
type RefUpdate struct {
	Old string `json:"old"`
	New string `json:"new"`
	Ref string `json:"ref"`
}

// ReceivePush hands a git push to the daemon, which builds and deploys the
// service's branch; the build and lifecycle output is copied to out as it
// comes. The answer is the push's Result; an error rejects the push.
func (c *Client) ReceivePush(ctx context.Context, service string, p GitPush, out io.Writer) (string, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return "", err
	}
	resp, err := c.sendBody(ctx, http.MethodPost, "/v1/services/"+url.PathEscape(service)+"/git/receive", nil, "application/json", bytes.NewReader(b))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	m, err := readStream(resp, "push to "+service, out)
	return m.Result, err
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
	m, err := readStream(resp, "build of "+service, out)
	return m.Image, err
}

// readStream reads a stream of BuildMessage lines, copying the output to out
// (if not nil), up to the last line: an image or a result, or an error.
func readStream(resp *http.Response, what string, out io.Writer) (BuildMessage, error) {
	dec := json.NewDecoder(resp.Body)
	for {
		var m BuildMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return m, fmt.Errorf("%s: the daemon's answer ended early: %w", what, err)
		}
		switch {
		case m.Error != "":
			return m, &RemoteError{Status: resp.StatusCode, Code: m.Code, Msg: m.Error}
		case m.Image != "" || m.Result != "":
			return m, nil
		case m.Stream != "" && out != nil:
			if _, err := io.WriteString(out, m.Stream); err != nil {
				return m, fmt.Errorf("%s: write output: %w", what, err)
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
