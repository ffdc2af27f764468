package store

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"log/slog"
	"reflect"
	"strings"
	"testing"
)

// secret is an env value that must never appear in an error or a log line.
const secret = "s3cr3t-Pa55w0rd-9f8e7d"

func TestEnvValuesRoundTripAndStayOutOfErrors(t *testing.T) {
	// Catch anything the store (or the driver) logs.
	var logs bytes.Buffer
	oldSlog, oldFlags, oldOut := slog.Default(), log.Flags(), log.Writer()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	log.SetOutput(&logs)
	t.Cleanup(func() {
		slog.SetDefault(oldSlog)
		log.SetOutput(oldOut)
		log.SetFlags(oldFlags)
	})

	ctx := context.Background()
	s, path := openTest(t)
	env := map[string]string{
		"DATABASE_URL": "postgres://app:" + secret + "@db:5432/app?sslmode=disable",
		"API_KEY":      secret,
		"MULTILINE":    "line1\nline2\t\"quoted\" 'single' = ; -- DROP TABLE services;",
		"UNICODE":      "pässwörd-🔑",
		"EMPTY":        "",
	}
	cfg := testConfig("ghcr.io/acme/web:1", "web.localhost")
	cfg.Env = env
	if err := s.CreateService(ctx, Service{Name: "web", Config: cfg}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetService(ctx, "web")
	if err != nil || !reflect.DeepEqual(got.Config.Env, env) {
		t.Fatalf("env round trip: %v, %v", got.Config.Env, err)
	}
	d := Deployment{ID: "d1", Service: "web", Kind: KindDeploy, Config: cfg}
	if err := s.CreateDeployment(ctx, &d); err != nil {
		t.Fatal(err)
	}
	if gd, err := s.GetDeployment(ctx, "d1"); err != nil || !reflect.DeepEqual(gd.Config.Env, env) {
		t.Fatalf("snapshot env round trip: %v, %v", gd.Config.Env, err)
	}

	// Provoke every kind of error while configs full of secrets are in play.
	var errs []error
	add := func(err error) {
		if err == nil {
			t.Errorf("error %d: expected a failure", len(errs))
		}
		errs = append(errs, err)
	}
	add(s.CreateService(ctx, Service{Name: "web", Config: cfg}))                                       // exists
	add(s.CreateService(ctx, Service{Name: "other", Config: cfg}))                                     // domain taken
	add(s.UpdateService(ctx, Service{Name: "missing", Config: cfg}))                                   // not found
	add(s.CreateDeployment(ctx, &Deployment{ID: "d1", Service: "web", Kind: KindDeploy, Config: cfg})) // dup id
	add(s.CreateDeployment(ctx, &Deployment{ID: "d9", Service: "web", Kind: "bogus", Config: cfg}))
	add(s.CreateDeployment(ctx, &Deployment{ID: "d9", Service: "ghost", Kind: KindDeploy, Config: cfg}))
	add(s.DeleteService(ctx, "missing", true)) // not found

	// A corrupt stored config: the decode error must not quote it.
	for _, bad := range []string{
		`{"env":{"API_KEY":"` + secret + `"`,                             // truncated
		`{"env":{"API_KEY":"` + secret + `"}, "port": "` + secret + `"}`, // wrong type
		`{"env":{"API_KEY":` + secret + `}}`,                             // bare word
	} {
		if _, err := s.w.ExecContext(ctx, `UPDATE services SET config = ? WHERE name = 'web'`, bad); err != nil {
			t.Fatal(err)
		}
		_, err := s.GetService(ctx, "web")
		add(err)
		_, err = s.ListServices(ctx)
		add(err)
	}
	s.Close()
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	_, err = s2.GetService(ctx, "web")
	add(err)

	for i, err := range errs {
		if err == nil {
			continue
		}
		for _, form := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
			if strings.Contains(form, secret) || strings.Contains(form, "pässwörd") {
				t.Errorf("error %d shows an env value: %s", i, form)
			}
		}
	}
	if strings.Contains(logs.String(), secret) {
		t.Errorf("log output shows an env value: %s", logs.String())
	}
}
