package store

import (
	"context"
	"reflect"
	"testing"
	"time"
)

func TestMeta(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	for _, v := range []string{"first", "second"} {
		if err := s.SetMeta(ctx, "instance_id", v); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetMeta(ctx, "instance_id"); err != nil || got != v {
			t.Errorf("GetMeta = %q, %v; want %q", got, err, v)
		}
	}
}

func TestAvailability(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	at := time.Date(2026, 11, 25, 10, 0, 0, 1, time.UTC)
	a := Availability{Key: "sha256:0123", State: AvailabilityAvailable, CheckedAt: at}
	if err := s.PutAvailability(ctx, a); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetAvailability(ctx, a.Key); err != nil || !reflect.DeepEqual(got, a) {
		t.Errorf("GetAvailability = %+v, %v; want %+v", got, err, a)
	}
	b := Availability{Key: a.Key, State: AvailabilityMissing, Reason: "manifest HEAD: 404"}
	if err := s.PutAvailability(ctx, b); err != nil {
		t.Fatal(err)
	}
	got, _ := s.GetAvailability(ctx, a.Key)
	if got.State != AvailabilityMissing || got.Reason != b.Reason || !got.CheckedAt.After(at) {
		t.Errorf("after replace: %+v", got)
	}
	if err := s.PutAvailability(ctx, Availability{Key: "x", State: "gone"}); err == nil {
		t.Error("unknown state accepted")
	}
}
