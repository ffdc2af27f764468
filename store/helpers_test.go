package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// openTest opens a store in a fresh file and closes it when the test ends.
func openTest(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data", "clank.db")
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func testConfig(image string, domains ...string) Config {
	return Config{
		Image:         image,
		Port:          8080,
		Env:           map[string]string{"LOG_LEVEL": "debug"},
		Domains:       domains,
		Health:        HealthCheck{Path: "/healthz", Interval: time.Second, Timeout: 5 * time.Second},
		DeployTimeout: time.Minute,
		CPUs:          0.5,
		MemoryBytes:   256 << 20,
	}
}

func mustCreateService(t testing.TB, s *Store, name string, domains ...string) Service {
	t.Helper()
	svc := Service{Name: name, Config: testConfig("ghcr.io/acme/"+name+":1", domains...)}
	if err := s.CreateService(context.Background(), svc); err != nil {
		t.Fatalf("CreateService(%s): %v", name, err)
	}
	got, err := s.GetService(context.Background(), name)
	if err != nil {
		t.Fatalf("GetService(%s): %v", name, err)
	}
	return got
}

// mustDeploy creates a DEPLOYING deployment of service with id.
func mustDeploy(t testing.TB, s *Store, service, id string) Deployment {
	t.Helper()
	d := Deployment{
		ID:          id,
		Service:     service,
		Kind:        KindDeploy,
		Config:      testConfig("ghcr.io/acme/" + service + ":" + id),
		ImageDigest: "sha256:" + fmt.Sprintf("%064x", len(id)),
		ImageSource: SourceExternal,
		TriggeredBy: "alice",
	}
	if err := s.CreateDeployment(context.Background(), &d); err != nil {
		t.Fatalf("CreateDeployment(%s): %v", id, err)
	}
	return d
}

func eventStatuses(evs []Event) []Status {
	var out []Status
	for _, e := range evs {
		out = append(out, e.Status)
	}
	return out
}
