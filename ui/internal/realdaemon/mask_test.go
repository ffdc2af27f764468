package realdaemon

import "testing"

func TestMaskHidesSparklines(t *testing.T) {
	a := "web \x1b[38;5;2m▁\x1b[m\x1b[38;5;2m▃\x1b[m▁▁▁▁▁▁▁\x1b[31m█\x1b[m\x1b[2m 1.2/s \x1b[m 8080"
	b := "web ▁▁▁▁▁▁▁▁▁▁\x1b[2m 0/s   \x1b[m 8080"
	if Mask(a) != Mask(b) {
		t.Fatalf("two sparklines masked differ:\n%q\n%q", Mask(a), Mask(b))
	}
}

func TestMaskHidesUsage(t *testing.T) {
	a := "web \x1b[2m  0.3%  12.5M\x1b[m 8080 · cpu  12.0% · memory   512K of  64.0M"
	b := "web \x1b[2m     -      -\x1b[m 8080 · cpu      - · memory   1.2G of  64.0M"
	if Mask(a) != Mask(b) {
		t.Fatalf("two usages masked differ:\n%q\n%q", Mask(a), Mask(b))
	}
}
