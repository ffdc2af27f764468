package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"

	dockerregistry "github.com/moby/moby/api/types/registry"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/registry"
)

// MaxBuildContext bounds the build context a client may send (2 GiB): enough
// for any repository worth deploying, and a limit on what a runaway client can
// make the Docker engine unpack.
const MaxBuildContext = 2 << 30

// commitRe is a commit id, abbreviated or whole (SHA-1 or SHA-256).
var commitRe = regexp.MustCompile(`^[0-9a-f]{7,64}$`)

// shortCommit is how many hex digits of the commit tag a built image.
const shortCommit = 12

// refusal is something the daemon cannot do as configured (a push without
// the Clank registry); it matches engine.ErrRefused.
type refusal struct{ msg string }

func (e *refusal) Error() string        { return e.msg }
func (e *refusal) Is(target error) bool { return target == engine.ErrRefused }

// buildHandler serves POST /v1/services/{name}/build?commit=SHA[&push=1]: the
// body is a tar build context (at most MaxBuildContext bytes) with a Dockerfile
// at its root. The image is tagged clank/<service>:<commit[:12]>, or with push
// <registry>/<service>:<commit[:12]> and pushed to the Clank registry. The
// answer streams api.BuildMessage lines: the engine's output, then the image
// or the error. Bad input is refused with an api.Error before streaming.
func (d *Daemon) buildHandler(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	name := r.PathValue("name")
	commit := r.URL.Query().Get("commit")
	if !commitRe.MatchString(commit) {
		writeErr(w, badRequest("invalid commit %q: want 7 to 64 lowercase hex digits", commit))
		return
	}
	push := false
	switch p := r.URL.Query().Get("push"); p {
	case "", "0":
	case "1":
		push = true
	default:
		writeErr(w, badRequest("invalid push %q: want 1 or 0", p))
		return
	}
	if _, err := d.Engine.Service(ctx, name); err != nil {
		writeErr(w, err)
		return
	}
	tag, err := d.buildTag(name, commit, push)
	if err != nil {
		writeErr(w, err)
		return
	}
	if err := d.Engine.Ping(ctx); err != nil {
		writeErr(w, err)
		return
	}
	// The engine's output is written while the body may still be read: without
	// full duplex, an HTTP/1 server drops the rest of the body at the first write.
	if err := http.NewResponseController(w).EnableFullDuplex(); err != nil {
		writeErr(w, fmt.Errorf("build: %w", err))
		return
	}
	body := &limitedBody{r: http.MaxBytesReader(w, r.Body, MaxBuildContext)}
	out, err := startStream(w)
	if err != nil {
		writeErr(w, err)
		return
	}
	err = d.build(ctx, name, tag, push, body, out)
	var tooBig *http.MaxBytesError
	if errors.As(body.err, &tooBig) {
		err = badRequest("build context of %s is larger than %d bytes (2 GiB)", name, tooBig.Limit)
	}
	if err != nil {
		d.log.Warn("build failed", "service", name, "commit", commit, "err", err)
		_, e := apiError(err)
		out.send(api.BuildMessage{Error: e.Error, Code: e.Code})
		return
	}
	d.log.Info("built", "service", name, "commit", commit, "image", tag, "pushed", push)
	out.send(api.BuildMessage{Image: tag})
}

// buildTag is the image a build of service at commit makes:
// clank/<service>:<commit[:12]>, or with push <registry>/<service>:<commit[:12]>,
// which needs the Clank registry.
func (d *Daemon) buildTag(service, commit string, push bool) (string, error) {
	short := commit[:min(len(commit), shortCommit)]
	if !push {
		return "clank/" + service + ":" + short, nil
	}
	reg := d.registryHost()
	if reg == "" {
		return "", &refusal{"cannot push: this daemon runs without the Clank registry (--registry-addr \"\"); without --push (or a service's --push-builds) the image stays local"}
	}
	return reg + "/" + service + ":" + short, nil
}

// build builds buildContext (a tar stream with a Dockerfile at its root) as
// tag, labelled as Clank's image of service, and with push pushes it to the
// Clank registry; the engine's output goes to out. `deploy --git` and `git
// push` both build through here.
func (d *Daemon) build(ctx context.Context, service, tag string, push bool, buildContext io.Reader, out io.Writer) error {
	labels := map[string]string{engine.LabelManaged: "true", engine.LabelService: service}
	_, err := d.Runtime.BuildImage(ctx, buildContext, tag, labels, out)
	if err == nil && push {
		err = d.Runtime.PushImage(ctx, tag, d.pushAuth(), out)
	}
	return err
}

// startStream answers 200 with a stream of api.BuildMessage lines.
func startStream(w http.ResponseWriter) (*buildStream, error) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		return nil, errors.New("streaming unsupported")
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher.Flush()
	return &buildStream{enc: json.NewEncoder(w), f: flusher}, nil
}

// registryHost is where the local Docker engine pushes to the Clank
// registry ("" if it is off).
func (d *Daemon) registryHost() string {
	if d.registryAddr == "" {
		return ""
	}
	return registry.PushHost(d.registryAddr)
}

// pushAuth is what the daemon's own pushes to the Clank registry present.
func (d *Daemon) pushAuth() dockerregistry.AuthConfig {
	c := d.registry.Credential()
	return dockerregistry.AuthConfig{Username: c.Username, Password: c.Password, ServerAddress: d.registryHost()}
}

// limitedBody remembers the error that ended the request body, so that a
// context over the limit is reported as such rather than as the engine's
// confusion about a cut-off tar stream.
type limitedBody struct {
	r   io.Reader
	err error
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && b.err == nil {
		b.err = err
	}
	return n, err
}

// buildStream writes the engine's output as api.BuildMessage lines, flushing
// each so that the client sees the build as it happens.
type buildStream struct {
	enc *json.Encoder
	f   http.Flusher
}

func (s *buildStream) Write(p []byte) (int, error) {
	if err := s.send(api.BuildMessage{Stream: string(p)}); err != nil {
		return 0, err
	}
	return len(p), nil
}

// say sends one line of Clank's own (not the engine's) to the client.
func (s *buildStream) say(format string, args ...any) error {
	return s.send(api.BuildMessage{Stream: fmt.Sprintf(format, args...) + "\n"})
}

func (s *buildStream) send(m api.BuildMessage) error {
	if err := s.enc.Encode(m); err != nil {
		return fmt.Errorf("send build output: %w", err)
	}
	s.f.Flush()
	return nil
}
