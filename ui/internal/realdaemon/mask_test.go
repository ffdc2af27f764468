package realdaemon

import "testing"

func TestMaskHidesSparklines(t *testing.T) {
	a := "web \x1b[38;5;2m▁\x1b[m\x1b[38;5;2m▃\x1b[m▁▁▁▁▁▁▁\x1b[31m█\x1b[m\x1b[2m 1.2/s \x1b[m 8080"
	b := "web ▁▁▁▁▁▁▁▁▁▁\x1b[2m 0/s   \x1b[m 8080"
	if Mask(a) != Mask(b) {
		t.Fatalf("two sparklines masked differ:\n%q\n%q", Mask(a), Mask(b))
	}
}
