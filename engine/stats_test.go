package engine

import (
	"math"
	"testing"
	"time"
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
