package store

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestTailLog(t *testing.T) {
	for _, tc := range []struct {
		name, text   string
		lines, bytes int
		want         string
		cut          bool
	}{
		{"all fits", "a\nb\nc\n", 10, 100, "a\nb\nc\n", false},
		{"lines bound", "a\nb\nc\n", 2, 100, "b\nc\n", true},
		{"bytes bound, whole lines", "aaa\nbbb\nccc\n", 10, 9, "bbb\nccc\n", true},
		{"no last newline", "a\nb\nc", 2, 100, "b\nc", true},
		{"last line too long: its end", "a\nxxxxxxxxxx\n", 10, 4, "xxx\n", true},
		{"cut on a rune boundary", "a\nééé\n", 10, 4, "é\n", true},
		{"empty lines count", "a\n\n\n", 2, 100, "\n\n", true},
		{"exact", "ab\ncd\n", 2, 6, "ab\ncd\n", false},
		{"nothing", "", 10, 100, "", false},
		{"none kept", "a\n", 0, 100, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, cut := TailLog([]byte(tc.text), tc.lines, tc.bytes)
			if string(got) != tc.want || cut != tc.cut {
				t.Fatalf("TailLog(%q, %d, %d) = %q, %v; want %q, %v", tc.text, tc.lines, tc.bytes, got, cut, tc.want, tc.cut)
			}
		})
	}
}

func numbered(from, to int) []byte {
	var b bytes.Buffer
	for i := from; i <= to; i++ {
		fmt.Fprintf(&b, "line %04d\n", i) // 10 bytes a line
	}
	return b.Bytes()
}

func keptText(t *testing.T, s *Store, deploymentID, containerID string) (string, []KeptLog) {
	t.Helper()
	ls, err := s.KeptLogs(context.Background(), deploymentID, containerID)
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for _, l := range ls {
		all.Write(l.Text)
	}
	return all.String(), ls
}

// A deployment's kept logs stay within the lines and bytes bounds all
// together, the newest kept; a service keeps them for its last
// KeepLogDeployments deployments; a purge deletes them.
func TestKeptLogsAreBounded(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	mustCreateService(t, s, "web")
	mustCreateService(t, s, "api")
	d := mustDeploy(t, s, "web", "w1")
	at := time.Date(2026, 11, 29, 20, 0, 0, 0, time.UTC)

	s.SetKeepLogs(100, 10_000)
	if err := s.KeepLog(ctx, KeptLog{DeploymentID: d.ID, Service: "web", ContainerID: "c1", RemovedAt: at, Text: numbered(1, 150)}); err != nil {
		t.Fatal(err)
	}
	text, ls := keptText(t, s, d.ID, "")
	if want := string(numbered(51, 150)); text != want || len(ls) != 1 || !ls[0].Cut || !ls[0].RemovedAt.Equal(at) || ls[0].ContainerID != "c1" {
		t.Fatalf("kept %d logs, %q (cut %v), want the last 100 lines, cut, of c1 at %v", len(ls), text, ls[0].Cut, at)
	}

	// A second container of the same deployment: 60 new lines, so 40 of the
	// first container's stay, and the two together are still 100 lines.
	if err := s.KeepLog(ctx, KeptLog{DeploymentID: d.ID, Service: "web", ContainerID: "c2", RemovedAt: at.Add(time.Minute), Text: numbered(200, 259)}); err != nil {
		t.Fatal(err)
	}
	text, ls = keptText(t, s, d.ID, "")
	if want := string(numbered(111, 150)) + string(numbered(200, 259)); text != want || len(ls) != 2 || ls[1].ContainerID != "c2" || ls[1].Cut {
		t.Fatalf("after a second container: %d logs, %q; want c1's last 40 lines then c2's 60", len(ls), text)
	}

	// The bytes bound: 25 lines of 10 bytes.
	s.SetKeepLogs(1000, 250)
	if err := s.KeepLog(ctx, KeptLog{DeploymentID: d.ID, Service: "web", ContainerID: "c3", Text: numbered(300, 319)}); err != nil {
		t.Fatal(err)
	}
	text, ls = keptText(t, s, d.ID, "")
	if want := string(numbered(255, 259)) + string(numbered(300, 319)); text != want || len(ls) != 2 {
		t.Fatalf("within 250 bytes: %d logs, %q; want c2's last 5 lines then c3's 20", len(ls), text)
	}
	if len(text) > 250 {
		t.Fatalf("kept %d bytes, over the 250 bound", len(text))
	}

	// An adopted container is found from the deployment that recorded it.
	d2 := mustDeploy(t, s, "web", "w2")
	if text, _ := keptText(t, s, d2.ID, "c3"); !strings.HasSuffix(text, "line 0319\n") {
		t.Fatalf("w2, which recorded container c3: %q, want c3's log", text)
	}
	x, err := s.KeptLogIndex(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	d2.ContainerID = "c3"
	if at := x.At(d2); at == nil {
		t.Fatal("KeptLogIndex: w2, which recorded c3, kept none")
	}
	if at := x.At(d); at == nil || !at.After(ls[0].RemovedAt.Add(-time.Second)) {
		t.Fatalf("KeptLogIndex: w1 kept at %v", at)
	}
	if at := x.At(Deployment{ID: "other"}); at != nil {
		t.Fatalf("KeptLogIndex: a deployment that kept nothing: %v", at)
	}

	// Per service, only the deployments that kept a log last keep it.
	s.SetKeepLogs(10, 1000)
	var ids []string
	for i := range KeepLogDeployments + 3 {
		dep := mustDeploy(t, s, "web", fmt.Sprintf("x%02d", i))
		ids = append(ids, dep.ID)
		if err := s.KeepLog(ctx, KeptLog{DeploymentID: dep.ID, Service: "web", ContainerID: dep.ID + "-c", Text: numbered(i, i)}); err != nil {
			t.Fatal(err)
		}
	}
	a := mustDeploy(t, s, "api", "a1")
	if err := s.KeepLog(ctx, KeptLog{DeploymentID: a.ID, Service: "api", ContainerID: "ca", Text: []byte("api\n")}); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.r.QueryRow(`SELECT COUNT(DISTINCT deployment_id) FROM kept_logs WHERE service = 'web'`).Scan(&n); err != nil || n != KeepLogDeployments {
		t.Fatalf("web keeps logs of %d deployments (%v), want %d", n, err, KeepLogDeployments)
	}
	for i, id := range ids {
		text, _ := keptText(t, s, id, "")
		if kept := text != ""; kept != (i >= 3) {
			t.Fatalf("deployment %s (%d of %d) kept %q", id, i, len(ids), text)
		}
	}
	if text, _ := keptText(t, s, d.ID, ""); text != "" {
		t.Fatalf("the oldest deployment still keeps %q", text)
	}

	// Keeping none.
	s.SetKeepLogs(-1, 0)
	if err := s.KeepLog(ctx, KeptLog{DeploymentID: d.ID, Service: "web", ContainerID: "c9", Text: []byte("x\n")}); err != nil {
		t.Fatal(err)
	}
	if text, _ := keptText(t, s, d.ID, ""); text != "" {
		t.Fatalf("kept %q with the bound at none", text)
	}

	// A delete keeps the history and its logs; a purge deletes them, and
	// leaves another service's alone.
	if err := s.DeleteService(ctx, "web", false); err != nil {
		t.Fatal(err)
	}
	if text, _ := keptText(t, s, ids[len(ids)-1], ""); text == "" {
		t.Fatal("a delete without purge dropped the kept logs")
	}
	if err := s.DeleteService(ctx, "web", true); err != nil {
		t.Fatal(err)
	}
	if err := s.r.QueryRow(`SELECT COUNT(*) FROM kept_logs WHERE service = 'web'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("after the purge web keeps %d logs (%v)", n, err)
	}
	if text, _ := keptText(t, s, a.ID, ""); text != "api\n" {
		t.Fatalf("api's kept log after web's purge: %q", text)
	}
}
