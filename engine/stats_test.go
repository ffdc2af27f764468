package engine

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clank-dev/clank/store"
)

// CPU use is the rate between two readings of a container's counters, as
// `docker stats` computes it: of one CPU, from the host's CPU time when the
// engine gives it, else from the wall time between the readings.
func TestCPUPercent(t *testing.T) {
	at := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		p, u   ContainerUsage
		want   float64
		wantOK bool
	}{
		{"half a CPU of two, by the host's CPU time",
			ContainerUsage{CPUTotal: 1e9, SystemCPU: 10e9, OnlineCPUs: 2, At: at},
			ContainerUsage{CPUTotal: 1.5e9, SystemCPU: 12e9, OnlineCPUs: 2, At: at.Add(time.Second)}, 50, true},
		{"two CPUs busy",
			ContainerUsage{CPUTotal: 0, SystemCPU: 10e9, OnlineCPUs: 2, At: at},
			ContainerUsage{CPUTotal: 2e9, SystemCPU: 12e9, OnlineCPUs: 2, At: at.Add(time.Second)}, 200, true},
		{"no host CPU time: by the wall time",
			ContainerUsage{CPUTotal: 1e9, At: at},
			ContainerUsage{CPUTotal: 1.25e9, At: at.Add(time.Second)}, 25, true},
		{"idle", ContainerUsage{CPUTotal: 7, SystemCPU: 1e9, OnlineCPUs: 1, At: at},
			ContainerUsage{CPUTotal: 7, SystemCPU: 2e9, OnlineCPUs: 1, At: at.Add(time.Second)}, 0, true},
		{"counters that went back (started again)",
			ContainerUsage{CPUTotal: 5e9, SystemCPU: 10e9, OnlineCPUs: 2, At: at},
			ContainerUsage{CPUTotal: 1e9, SystemCPU: 12e9, OnlineCPUs: 2, At: at.Add(time.Second)}, 0, false},
		{"no time between the readings",
			ContainerUsage{CPUTotal: 1e9, At: at}, ContainerUsage{CPUTotal: 2e9, At: at}, 0, false},
	} {
		got, ok := cpuPercent(tc.p, tc.u)
		if ok != tc.wantOK || math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: %.3f%% (%v), want %.3f%% (%v)", tc.name, got, ok, tc.want, tc.wantOK)
		}
	}
}

// flakyUsage answers a container's counters, one more CPU second each
// time, except on the rounds it is told to miss (a Docker call past its
// bound).
type flakyUsage struct {
	calls int
	miss  map[int]bool
	at    time.Time
}

func (f *flakyUsage) Usage(ctx context.Context, id string) (ContainerUsage, error) {
	f.calls++
	if f.miss[f.calls] {
		return ContainerUsage{}, context.DeadlineExceeded
	}
	return ContainerUsage{CPUTotal: uint64(f.calls) * 1e9, Memory: 1 << 20, At: f.at.Add(time.Duration(f.calls) * 2 * time.Second)}, nil
}

// A container that misses a round keeps its last reading: its next answer
// has a CPU figure, over the whole time since (here two CPU seconds in four
// of the wall clock), instead of starting over without one.
func TestStatsRoundKeepsASlowContainersReading(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(filepath.Join(t.TempDir(), "clank.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateService(ctx, store.Service{Name: "web"}); err != nil {
		t.Fatal(err)
	}
	d := store.Deployment{ID: "d1", Service: "web", Kind: store.KindDeploy}
	if err := st.CreateDeployment(ctx, &d); err != nil {
		t.Fatal(err)
	}
	if err := st.SetReplica(ctx, d.ID, store.Replica{Slot: 0, ContainerID: "c1"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Activate(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	e := &Engine{store: st, log: slog.New(slog.DiscardHandler)}
	r := &flakyUsage{miss: map[int]bool{3: true}, at: time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)}
	var got []string
	for range 4 {
		e.sampleRound(ctx, r)
		s := e.stats.services[0]
		switch {
		case len(s.Containers) == 0:
			got = append(got, "missed")
		case !s.HasCPU:
			got = append(got, "no CPU")
		default:
			got = append(got, fmt.Sprintf("%.0f%%", s.CPUPercent))
		}
	}
	if want := "no CPU,50%,missed,50%"; strings.Join(got, ",") != want {
		t.Fatalf("rounds: %s, want %s", strings.Join(got, ","), want)
	}
}
