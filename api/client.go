package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
)

// ErrNoDaemon: nothing answers on the socket.
var ErrNoDaemon = errors.New("the Clank daemon is not running")

// RemoteError is an error the daemon answered with.
type RemoteError struct {
	Status int
	Code   string
	Msg    string
}

func (e *RemoteError) Error() string { return e.Msg }

// Client talks to the daemon over its unix socket.
type Client struct {
	Socket string
	http   *http.Client
}

// NewClient makes a client for the daemon listening on socket.
func NewClient(socket string) *Client {
	return &Client{Socket: socket, http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		DisableCompression: true,
	}}}
}

func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	resp, err := c.send(ctx, method, path, query, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("daemon answer to %s %s: %w", method, path, err)
	}
	return nil
}

// send makes a request with a JSON body (in, nil for none) and returns the
// response of a 2xx answer; the caller closes its body.
func (c *Client) send(ctx context.Context, method, path string, query url.Values, in any) (*http.Response, error) {
	if in == nil {
		return c.sendBody(ctx, method, path, query, "", nil)
	}
	b, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	return c.sendBody(ctx, method, path, query, "application/json", bytes.NewReader(b))
}

// Status reports the daemon's parts.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.do(ctx, http.MethodGet, "/v1/status", nil, nil, &s)
}

// Services lists every service.
func (c *Client) Services(ctx context.Context) ([]Service, error) {
	var s []Service
	return s, c.do(ctx, http.MethodGet, "/v1/services", nil, nil, &s)
}

// Service returns one service; showEnv includes env values.
func (c *Client) Service(ctx context.Context, name string, showEnv bool) (Service, error) {
	var s Service
	return s, c.do(ctx, http.MethodGet, "/v1/services/"+url.PathEscape(name), envQuery(showEnv), nil, &s)
}

// CreateService adds a service.
func (c *Client) CreateService(ctx context.Context, spec ServiceSpec) (Service, error) {
	var s Service
	return s, c.do(ctx, http.MethodPost, "/v1/services", nil, spec, &s)
}

// UpdateService changes some of a service's settings.
func (c *Client) UpdateService(ctx context.Context, name string, spec ServiceSpec) (Service, error) {
	var s Service
	return s, c.do(ctx, http.MethodPatch, "/v1/services/"+url.PathEscape(name), nil, spec, &s)
}

// DeleteService stops a service's containers, takes its routes down, frees
// its domains and deletes it; its history and images stay unless purge.
func (c *Client) DeleteService(ctx context.Context, name string, purge bool) (ServiceDeletion, error) {
	var q url.Values
	if purge {
		q = url.Values{"purge": {"1"}}
	}
	var out ServiceDeletion
	return out, c.do(ctx, http.MethodDelete, "/v1/services/"+url.PathEscape(name), q, nil, &out)
}

// Unfreeze lets pushes deploy the service again.
func (c *Client) Unfreeze(ctx context.Context, service, by string) (Unfrozen, error) {
	var u Unfrozen
	return u, c.do(ctx, http.MethodPost, "/v1/services/"+url.PathEscape(service)+"/unfreeze", nil, UnfreezeRequest{TriggeredBy: by}, &u)
}

// RecheckImages has the daemon check again the images of service's
// deployments whose last check is older than 30 s; it says how many it checked.
func (c *Client) RecheckImages(ctx context.Context, service string) (int, error) {
	var out ImagesChecked
	err := c.do(ctx, http.MethodPost, "/v1/services/"+url.PathEscape(service)+"/images/check", nil, nil, &out)
	return out.Checked, err
}

// Scale sets a service's replica count and runs its ACTIVE deployment with
// it in place; it returns once the new replicas are routed (or the old ones
// removed).
func (c *Client) Scale(ctx context.Context, service string, replicas int) (Scaled, error) {
	var out Scaled
	return out, c.do(ctx, http.MethodPost, "/v1/services/"+url.PathEscape(service)+"/scale", nil, ScaleRequest{Replicas: replicas}, &out)
}

// Deployments lists a service's deployments newest first; beforeNumber 0 starts at the newest.
func (c *Client) Deployments(ctx context.Context, service string, limit, beforeNumber int) ([]Deployment, error) {
	return c.DeploymentsEnv(ctx, service, limit, beforeNumber, false)
}

// DeploymentsEnv is Deployments with env values when showEnv.
func (c *Client) DeploymentsEnv(ctx context.Context, service string, limit, beforeNumber int, showEnv bool) ([]Deployment, error) {
	q := envQuery(showEnv)
	q.Set("limit", strconv.Itoa(limit))
	q.Set("before", strconv.Itoa(beforeNumber))
	var ds []Deployment
	return ds, c.do(ctx, http.MethodGet, "/v1/services/"+url.PathEscape(service)+"/deployments", q, nil, &ds)
}

// Deployment returns a deployment (by id, or by number with service) and its events.
func (c *Client) Deployment(ctx context.Context, id string) (Deployment, []Event, error) {
	d, err := c.DeploymentOf(ctx, "", id, false)
	return d.Deployment, d.Events, err
}

// DeploymentOf finds a deployment of service by id or number.
func (c *Client) DeploymentOf(ctx context.Context, service, ref string, showEnv bool) (DeploymentDetail, error) {
	q := envQuery(showEnv)
	if service != "" {
		q.Set("service", service)
	}
	var d DeploymentDetail
	return d, c.do(ctx, http.MethodGet, "/v1/deployments/"+url.PathEscape(ref), q, nil, &d)
}

// Plan says what an action would do, or why it would be refused. It only
// reads: a viewer may ask.
func (c *Client) Plan(ctx context.Context, req ActionRequest) (Plan, error) {
	req.DryRun = true
	var p Plan
	return p, c.do(ctx, http.MethodPost, "/v1/plan", nil, req, &p)
}

// Act starts a deploy, redeploy or rollback and returns the new deployment.
func (c *Client) Act(ctx context.Context, req ActionRequest) (Deployment, error) {
	req.DryRun = false
	var d Deployment
	return d, c.do(ctx, http.MethodPost, "/v1/actions", nil, req, &d)
}

// Subscribe streams the daemon's events until ctx ends or the daemon goes
// away (then the channel closes).
func (c *Client) Subscribe(ctx context.Context) (<-chan Event, error) {
	resp, err := c.send(ctx, http.MethodGet, "/v1/events", nil, nil)
	if err != nil {
		return nil, err
	}
	ch := make(chan Event, 256)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			if len(sc.Bytes()) == 0 {
				continue // keep-alive
			}
			var ev Event
			if json.Unmarshal(sc.Bytes(), &ev) != nil {
				continue
			}
			select {
			case ch <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

// Logs copies a deployment's container logs (the active one when
// deploymentID is "") to w, or the log kept from its removed container;
// with opts.Follow it waits for more until ctx ends.
func (c *Client) Logs(ctx context.Context, service, deploymentID string, opts LogOptions, w io.Writer) error {
	q := url.Values{}
	if deploymentID != "" {
		q.Set("deployment", deploymentID)
	}
	if opts.Follow {
		q.Set("follow", "1")
	}
	if opts.Timestamps {
		q.Set("timestamps", "1")
	}
	resp, err := c.send(ctx, http.MethodGet, "/v1/services/"+url.PathEscape(service)+"/logs", q, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	if ctx.Err() != nil {
		return nil
	}
	if err == nil {
		if msg := resp.Trailer.Get(ErrorTrailer); msg != "" {
			err = &RemoteError{Status: resp.StatusCode, Code: "internal", Msg: msg}
		}
	}
	return err
}

// ErrorTrailer carries an error that happened after a stream's answer began.
const ErrorTrailer = "Clank-Error"

func envQuery(show bool) url.Values {
	q := url.Values{}
	if show {
		q.Set("show_env", "1")
	}
	return q
}

// Traffic is the recent answers through the edge router of every service, or
// of service alone when it is not "".
func (c *Client) Traffic(ctx context.Context, service string) ([]Traffic, error) {
	q := url.Values{}
	if service != "" {
		q.Set("service", service)
	}
	var out []Traffic
	return out, c.do(ctx, http.MethodGet, "/v1/traffic", q, nil, &out)
}

// Stats is the live CPU and memory of every service's ACTIVE containers.
func (c *Client) Stats(ctx context.Context) ([]ServiceStats, error) {
	var out []ServiceStats
	return out, c.do(ctx, http.MethodGet, "/v1/stats", nil, nil, &out)
}

// Prune removes the local images of deployments beyond the last keep that
// were ACTIVE per service (service "" for all).
func (c *Client) Prune(ctx context.Context, service string, keep int) ([]PrunedImage, error) {
	q := url.Values{"keep": {strconv.Itoa(keep)}}
	if service != "" {
		q.Set("service", service)
	}
	var out []PrunedImage
	return out, c.do(ctx, http.MethodPost, "/v1/prune", q, nil, &out)
}

// RegistryGC runs the Clank registry's garbage collection.
func (c *Client) RegistryGC(ctx context.Context) (GCResult, error) {
	var out GCResult
	return out, c.do(ctx, http.MethodPost, "/v1/registry/gc", nil, nil, &out)
}

// RegistryCredential returns the Clank registry's credential.
func (c *Client) RegistryCredential(ctx context.Context) (RegistryCredential, error) {
	var out RegistryCredential
	return out, c.do(ctx, http.MethodGet, "/v1/registry/credential", nil, nil, &out)
}

// Certificates lists every domain's TLS certificate (empty when HTTPS is off).
func (c *Client) Certificates(ctx context.Context) ([]Certificate, error) {
	var out []Certificate
	return out, c.do(ctx, http.MethodGet, "/v1/certs", nil, nil, &out)
}

// Nodes lists the Docker Swarm's nodes (the daemon must run on Swarm).
func (c *Client) Nodes(ctx context.Context) ([]Node, error) {
	var out []Node
	return out, c.do(ctx, http.MethodGet, "/v1/nodes", nil, nil, &out)
}
