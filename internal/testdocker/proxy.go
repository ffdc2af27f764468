package testdocker

import (
	"context"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/clank-dev/clank/engine/docker"
)

// DockerProxy stands between a Docker client and the real Docker engine, on a
// unix socket of its own, so that a test can take the engine away and bring
// it back as a Docker restart would: Cut closes every connection (event
// streams included) and refuses new ones; Restore accepts again. It forwards
// bytes and nothing else.
type DockerProxy struct {
	tb       testing.TB
	path     string // the proxy's socket
	network  string // the real engine's
	upstream string

	mu    sync.Mutex
	ln    net.Listener // nil while cut
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewDockerProxy starts a proxy to the Docker engine named by DOCKER_HOST
// (the default socket without it) and stops it when the test ends.
func NewDockerProxy(tb testing.TB) *DockerProxy {
	tb.Helper()
	network, address := "unix", "/var/run/docker.sock"
	if host := os.Getenv("DOCKER_HOST"); host != "" {
		u, err := url.Parse(host)
		if err != nil {
			tb.Fatalf("DockerProxy: DOCKER_HOST %q: %v", host, err)
		}
		switch u.Scheme {
		case "unix":
			address = u.Path
		case "tcp":
			network, address = "tcp", u.Host
		default:
			tb.Fatalf("DockerProxy: DOCKER_HOST %q: only unix:// and tcp:// are proxied", host)
		}
	}
	// A short directory: a unix socket's path is limited to about 100 bytes.
	dir, err := os.MkdirTemp("", "dockerproxy-")
	if err != nil {
		tb.Fatal(err)
	}
	p := &DockerProxy{tb: tb, path: filepath.Join(dir, "docker.sock"), network: network, upstream: address, conns: map[net.Conn]struct{}{}}
	p.Restore()
	tb.Cleanup(func() {
		p.Cut()
		p.wg.Wait()
		os.RemoveAll(dir)
	})
	return p
}

// Host is the proxy's address as DOCKER_HOST takes it.
func (p *DockerProxy) Host() string { return "unix://" + p.path }

// Runtime connects a Docker runtime through the proxy (DOCKER_HOST points at
// it for the rest of the test) and closes it when the test ends.
func (p *DockerProxy) Runtime(tb testing.TB) *docker.Runtime {
	tb.Helper()
	tb.Setenv("DOCKER_HOST", p.Host())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rt, err := docker.Connect(ctx)
	if err != nil {
		tb.Fatalf("DockerProxy: %v", err)
	}
	tb.Cleanup(func() { rt.Close() })
	return rt
}

// Cut closes every connection through the proxy and stops listening: the
// engine is gone, as far as its clients can tell.
func (p *DockerProxy) Cut() {
	p.mu.Lock()
	ln := p.ln
	p.ln = nil
	conns := make([]net.Conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	if ln != nil {
		ln.Close() // removes the socket file: a dial is refused
	}
	for _, c := range conns {
		c.Close()
	}
}

// Restore listens again on the same socket. Call it from the test's goroutine.
func (p *DockerProxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		return
	}
	os.Remove(p.path)
	ln, err := net.Listen("unix", p.path)
	if err != nil {
		p.tb.Fatalf("DockerProxy: %v", err)
	}
	p.ln = ln
	p.wg.Add(1)
	go p.accept(ln)
}

func (p *DockerProxy) accept(ln net.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial(p.network, p.upstream)
		if err != nil {
			c.Close()
			continue
		}
		if !p.track(c, up) {
			c.Close()
			up.Close()
			continue
		}
		p.wg.Add(2)
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

// track records a connection pair, unless the proxy was cut meanwhile.
func (p *DockerProxy) track(c, up net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		return false
	}
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	return true
}

// pipe copies one way until either side ends, then closes both.
func (p *DockerProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	io.Copy(dst, src) // ends with a cut or a peer that went: either way, both sides close
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}
