package testdocker

import (
	"context"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/clank-dev/clank/engine/docker"
)

// SwarmLock is the lock file every test that makes the Docker engine a
// Swarm takes first, whatever its package or process: two inits (or an init
// and a leave) never race.
const SwarmLock = "/tmp/clank-swarm-test.lock"

// swarmMode is this process's hold on the single-node swarm: tests share it,
// and the last one to end leaves it.
var swarmMode struct {
	mu       sync.Mutex
	refs     int
	lock     *os.File
	created  bool // this process made the swarm: it leaves it
	gwbridge bool // and docker_gwbridge with it: it removes it
}

// Swarm makes the Docker engine a single-node Swarm manager advertised on
// 127.0.0.1 for the test, unless it is one already; the swarm is left
// (docker swarm leave --force) when the last test of the process that holds
// it ends, and the docker_gwbridge network that swarm init made is removed.
// Plain containers and local networks are untouched by both (a test checks
// it), so other packages' tests keep running. An engine in a swarm this
// process cannot use (a worker, an error state) skips the test, or fails it
// with CLANK_REQUIRE_DOCKER=1.
func Swarm(tb testing.TB, rt *docker.Runtime) {
	tb.Helper()
	swarmMode.mu.Lock()
	defer swarmMode.mu.Unlock()
	if swarmMode.refs == 0 {
		if err := takeSwarm(tb, rt); err != nil {
			if os.Getenv("CLANK_REQUIRE_DOCKER") == "1" {
				tb.Fatalf("CLANK_REQUIRE_DOCKER=1: %v", err)
			}
			tb.Skipf("no Swarm to test on: %v", err)
		}
	}
	swarmMode.refs++
	tb.Cleanup(func() { releaseSwarm(tb, rt) })
}

// NoSwarm holds the Swarm lock file for the test, so that no test makes the
// engine a Swarm meanwhile, and skips the test when the engine is in a swarm
// already (one nobody here made). It must not be called while this process
// holds a Swarm.
func NoSwarm(tb testing.TB, rt *docker.Runtime) {
	tb.Helper()
	f, err := lockSwarm()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := rt.Client().Info(ctx, client.InfoOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	if s := info.Info.Swarm.LocalNodeState; s != swarm.LocalNodeStateInactive {
		tb.Skipf("the Docker engine is in a swarm nobody here made (state %s): cannot test without one", s)
	}
}

// lockSwarm opens and locks SwarmLock (waiting for whoever holds it);
// closing the file releases it.
func lockSwarm() (*os.File, error) {
	f, err := os.OpenFile(SwarmLock, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// takeSwarm takes the lock file, then makes the swarm (or finds one to use).
func takeSwarm(tb testing.TB, rt *docker.Runtime) error {
	f, err := lockSwarm()
	if err != nil {
		return err
	}
	swarmMode.lock = f
	ok := false
	defer func() {
		if !ok {
			f.Close() // releases the lock
			swarmMode.lock = nil
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cli := rt.Client()
	info, err := cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		return err
	}
	switch s := info.Info.Swarm; {
	case s.LocalNodeState == swarm.LocalNodeStateActive && s.ControlAvailable:
		tb.Logf("the Docker engine is a Swarm manager already (not made by this test): using it, and leaving it as it is")
		ok = true
		return nil
	case s.LocalNodeState != swarm.LocalNodeStateInactive:
		return &swarmError{"the Docker engine is in a swarm this test did not make and cannot use (state " + string(s.LocalNodeState) + ", manager " + boolWord(s.ControlAvailable) + ")"}
	}
	nets, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: make(client.Filters).Add("name", "docker_gwbridge")})
	if err != nil {
		return err
	}
	hadBridge := false
	for _, n := range nets.Items {
		hadBridge = hadBridge || n.Name == "docker_gwbridge"
	}
	if _, err := cli.SwarmInit(ctx, client.SwarmInitOptions{ListenAddr: "127.0.0.1:2377", AdvertiseAddr: "127.0.0.1"}); err != nil {
		return err
	}
	swarmMode.created, swarmMode.gwbridge = true, !hadBridge
	ok = true
	return nil
}

// releaseSwarm drops a test's hold; the last one leaves the swarm it made
// and releases the lock file.
func releaseSwarm(tb testing.TB, rt *docker.Runtime) {
	swarmMode.mu.Lock()
	defer swarmMode.mu.Unlock()
	swarmMode.refs--
	if swarmMode.refs > 0 {
		return
	}
	defer func() {
		swarmMode.lock.Close()
		swarmMode.lock, swarmMode.created, swarmMode.gwbridge = nil, false, false
	}()
	if !swarmMode.created {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cli := rt.Client()
	if _, err := cli.SwarmLeave(ctx, client.SwarmLeaveOptions{Force: true}); err != nil {
		tb.Errorf("leave the test's swarm: %v", err)
		return
	}
	if swarmMode.gwbridge {
		if _, err := cli.NetworkRemove(ctx, "docker_gwbridge", client.NetworkRemoveOptions{}); err != nil {
			tb.Logf("remove docker_gwbridge after the test's swarm: %v", err)
		}
	}
}

type swarmError struct{ msg string }

func (e *swarmError) Error() string { return e.msg }

func boolWord(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
