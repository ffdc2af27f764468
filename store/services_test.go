package store

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestServiceCRUD(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)

	created := time.Date(2026, 11, 25, 19, 0, 0, 123456789, time.FixedZone("CET", 3600))
	in := Service{Name: "web", Config: testConfig("ghcr.io/acme/web:1", "web.localhost"), CreatedAt: created}
	if err := s.CreateService(ctx, in); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetService(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Config, in.Config) {
		t.Errorf("config = %+v, want %+v", got.Config, in.Config)
	}
	if !got.CreatedAt.Equal(created) || !got.UpdatedAt.Equal(created) || got.CreatedAt.Location() != time.UTC {
		t.Errorf("times = %v / %v, want %v in UTC", got.CreatedAt, got.UpdatedAt, created)
	}
	if got.ActiveDeploymentID != "" {
		t.Errorf("new service has active deployment %q", got.ActiveDeploymentID)
	}

	if err := s.CreateService(ctx, in); !errors.Is(err, ErrExists) {
		t.Errorf("second CreateService: %v, want ErrExists", err)
	}
	if err := s.CreateService(ctx, Service{}); err == nil {
		t.Error("CreateService with no name succeeded")
	}

	mustCreateService(t, s, "api")
	mustCreateService(t, s, "db")
	list, err := s.ListServices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, svc := range list {
		names = append(names, svc.Name)
	}
	if strings.Join(names, ",") != "api,db,web" {
		t.Errorf("ListServices = %v, want api,db,web", names)
	}

	up := got
	up.Config.Image = "ghcr.io/acme/web:2"
	up.Config.Env = map[string]string{"NEW": "1"}
	up.Config.Domains = []string{"www.example.com"}
	up.UpdatedAt = time.Time{}
	if err := s.UpdateService(ctx, up); err != nil {
		t.Fatal(err)
	}
	after, _ := s.GetService(ctx, "web")
	if !reflect.DeepEqual(after.Config, up.Config) {
		t.Errorf("updated config = %+v, want %+v", after.Config, up.Config)
	}
	if !after.CreatedAt.Equal(created) || !after.UpdatedAt.After(created) {
		t.Errorf("after update created=%v updated=%v", after.CreatedAt, after.UpdatedAt)
	}
	if _, err := s.domainOwner(ctx, "web.localhost"); !errors.Is(err, ErrNotFound) {
		t.Errorf("old domain still owned: %v", err)
	}
	if owner, err := s.domainOwner(ctx, "WWW.Example.com."); err != nil || owner != "web" {
		t.Errorf("domainOwner(new domain) = %q, %v", owner, err)
	}

	if err := s.DeleteService(ctx, "web", false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetService(ctx, "web"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetService after delete: %v", err)
	}
	if _, err := s.domainOwner(ctx, "www.example.com"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted service still owns its domain: %v", err)
	}
	// Its name and domain are free again.
	mustCreateService(t, s, "web", "www.example.com")
}

// Deleting a service with deployments keeps its history (the ACTIVE one
// ends INACTIVE) and frees its name and domains; creating it again brings the
// history back. Purge deletes the history too.
func TestDeleteServiceKeepsItsHistoryUnlessPurged(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	mustCreateService(t, s, "web", "web.localhost")
	mustCreateService(t, s, "api", "api.localhost")
	d1 := mustDeploy(t, s, "web", "d1")
	if _, _, err := s.Activate(ctx, d1.ID); err != nil {
		t.Fatal(err)
	}
	mustDeploy(t, s, "api", "a1")
	if _, err := s.SetFreeze(ctx, "web", &Freeze{By: "alice", Reason: "rollback #2 to #1"}); err != nil {
		t.Fatal(err)
	}

	if err := s.DeleteService(ctx, "web", false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetService(ctx, "web"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetService after delete: %v", err)
	}
	if svcs, _ := s.ListServices(ctx); len(svcs) != 1 || svcs[0].Name != "api" {
		t.Fatalf("ListServices after delete: %+v", svcs)
	}
	if _, err := s.domainOwner(ctx, "web.localhost"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the deleted service still owns its domain: %v", err)
	}
	d, err := s.GetDeployment(ctx, d1.ID)
	if err != nil || d.Status != StatusInactive || d.EndedAt == nil {
		t.Fatalf("the ACTIVE deployment after delete: %+v %v, want it kept INACTIVE", d, err)
	}
	if evs, _ := s.Events(ctx, d1.ID); evs[len(evs)-1].Message != "service deleted" {
		t.Fatalf("events: %+v", evs)
	}
	if err := s.CreateDeployment(ctx, &Deployment{ID: "d2", Service: "web", Kind: KindDeploy}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a deployment of a deleted service: %v", err)
	}
	if err := s.DeleteService(ctx, "web", false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting it again: %v", err)
	}

	// Created again: a new config, no freeze, the old history.
	again := mustCreateService(t, s, "web", "www.example.com")
	if again.Freeze != nil || again.ActiveDeploymentID != "" || again.Config.Domains[0] != "www.example.com" {
		t.Fatalf("the service created again: %+v", again)
	}
	d2 := mustDeploy(t, s, "web", "d2")
	if d2.Number != 2 {
		t.Fatalf("the next deployment is #%d, want #2 after the kept #1", d2.Number)
	}

	if err := s.DeleteService(ctx, "web", true); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{d1.ID, d2.ID} {
		if _, err := s.GetDeployment(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("deployment %s after purge: %v", id, err)
		}
	}
	if n := countEvents(t, s, "web"); n != 0 {
		t.Fatalf("%d events left after purge", n)
	}
	if fresh := mustCreateService(t, s, "web"); fresh.Name != "web" {
		t.Fatal(fresh)
	}
	if d := mustDeploy(t, s, "web", "d3"); d.Number != 1 {
		t.Fatalf("after purge the first deployment is #%d, want #1", d.Number)
	}
	if n, _ := s.CountDeployments(ctx, "api"); n != 1 {
		t.Fatalf("api lost deployments: %d", n)
	}
}

func TestDomainConflictChangesNothing(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	web := mustCreateService(t, s, "web", "web.localhost", "example.com")
	api := mustCreateService(t, s, "api", "api.localhost")

	checkTaken := func(t *testing.T, err error, domain string) {
		t.Helper()
		if !errors.Is(err, ErrDomainTaken) {
			t.Fatalf("err = %v, want ErrDomainTaken", err)
		}
		var dt *DomainTakenError
		if !errors.As(err, &dt) || dt.Domain != domain || dt.Service != "web" {
			t.Fatalf("err = %#v, want DomainTakenError{%s, web}", err, domain)
		}
		if msg := err.Error(); !strings.Contains(msg, domain) || !strings.Contains(msg, "web") {
			t.Errorf("message %q does not name the domain and its owner", msg)
		}
	}

	t.Run("create", func(t *testing.T) {
		err := s.CreateService(ctx, Service{Name: "blog", Config: testConfig("blog:1", "blog.localhost", "Example.COM")})
		checkTaken(t, err, "example.com")
		if _, err := s.GetService(ctx, "blog"); !errors.Is(err, ErrNotFound) {
			t.Errorf("refused service was stored: %v", err)
		}
		if _, err := s.domainOwner(ctx, "blog.localhost"); !errors.Is(err, ErrNotFound) {
			t.Errorf("refused service claimed a domain: %v", err)
		}
	})
	t.Run("update", func(t *testing.T) {
		up := api
		up.Config.Image = "api:2"
		up.Config.Domains = []string{"api2.localhost", "web.localhost"}
		checkTaken(t, s.UpdateService(ctx, up), "web.localhost")
		got, _ := s.GetService(ctx, "api")
		if !reflect.DeepEqual(got, api) {
			t.Errorf("api changed by a refused update: %+v, want %+v", got, api)
		}
		if owner, _ := s.domainOwner(ctx, "api.localhost"); owner != "api" {
			t.Errorf("api.localhost owner = %q after refused update", owner)
		}
		if _, err := s.domainOwner(ctx, "api2.localhost"); !errors.Is(err, ErrNotFound) {
			t.Errorf("refused update claimed api2.localhost: %v", err)
		}
	})
	if got, _ := s.GetService(ctx, "web"); !reflect.DeepEqual(got, web) {
		t.Errorf("owner changed: %+v", got)
	}

	// A service may keep and reorder its own domains.
	web.Config.Domains = []string{"example.com", "web.localhost", "WEB.localhost"}
	if err := s.UpdateService(ctx, web); err != nil {
		t.Errorf("re-claiming own domains: %v", err)
	}
	// Empty domains are refused.
	web.Config.Domains = []string{" "}
	if err := s.UpdateService(ctx, web); err == nil {
		t.Error("empty domain accepted")
	}
}
