package store

import (
	"context"
	"testing"
)

// A deployment's schema label is recorded once, like its digest; a rollback
// created with its target's schema keeps it.
func TestSchemaIsRecordedOnce(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	mustCreateService(t, s, "web")
	d := mustDeploy(t, s, "web", "d1")
	if d.Schema != "" {
		t.Fatalf("a new deployment has schema %q", d.Schema)
	}
	for _, schema := range []string{"0042", "0043"} {
		if err := s.SetSchema(ctx, d.ID, schema); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := s.GetDeployment(ctx, d.ID); got.Schema != "0042" {
		t.Fatalf("schema after two sets: %q, want the first, 0042", got.Schema)
	}
	rb := Deployment{ID: "d2", Service: "web", Kind: KindRollback, SourceDeploymentID: d.ID, Config: d.Config, Schema: "0042"}
	if err := s.CreateDeployment(ctx, &rb); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetDeployment(ctx, rb.ID); got.Schema != "0042" {
		t.Fatalf("a deployment created with schema 0042 reads back %q", got.Schema)
	}
}
