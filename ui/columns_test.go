package ui

import "testing"

func TestAbbrevImageKeepsTheTag(t *testing.T) {
	for _, c := range []struct {
		ref  string
		w    int
		want string
	}{
		{"web:v3", 10, "web:v3"},
		{"clank-test/sampleapp:v3-3fa9c2d1", 20, "…mpleapp:v3-3fa9c2d1"},
		{"127.0.0.1:5000/web:v12", 8, "…web:v12"},
		{"127.0.0.1:5000/web", 12, "…0.0.1:5000/web"[len("…0.0.1:5000/web")-14:]},
		{"ghcr.io/acme/app:a-very-long-tag-indeed", 10, ":a-very-l…"},
		{"ghcr.io/acme/app@sha256:0123456789abcdef", 12, "@sha256:012…"},
	} {
		got := abbrevImage(c.ref, c.w)
		if cellWidth(got) > c.w {
			t.Errorf("abbrevImage(%q, %d) = %q: wider than %d", c.ref, c.w, got, c.w)
		}
		if c.ref == "127.0.0.1:5000/web" {
			continue // no tag: cut from the left all the same
		}
		if got != c.want {
			t.Errorf("abbrevImage(%q, %d) = %q, want %q", c.ref, c.w, got, c.want)
		}
	}
}

func TestFitColumnsGivesWayByPriority(t *testing.T) {
	cols := []column{
		{title: "#", want: 3, keep: true, prio: 10},
		{title: "STATUS", want: 17, keep: true, prio: 10},
		{title: "KIND", want: 14, prio: 4},
		{title: "IMAGE", want: 32, min: 16, prio: 8},
		{title: "AGE", want: 3, prio: 7},
		{title: "BY", want: 20, min: 8, prio: 3},
		{title: "", want: 16, compact: 1, prio: 5},
	}
	// All whole: 3+17+14+32+3+20+16 and 6 blanks = 111.
	if w, tight := fitColumns(cols, 111); tight || w[3] != 32 || w[6] != 16 {
		t.Fatalf("at 111: %v (tight %v), want every column whole", w, tight)
	}
	// At 78: the badge becomes a glyph first, then the author is cut to
	// its least before the image is cut; kind and age stay whole.
	w, tight := fitColumns(cols, 78)
	if tight || w[6] != 1 || w[5] != 8 || w[3] != 26 || w[2] != 14 || w[4] != 3 {
		t.Fatalf("at 78: %v (tight %v)", w, tight)
	}
	total := -1
	for _, x := range w {
		if x > 0 {
			total += x + 1
		}
	}
	if total > 78 {
		t.Fatalf("at 78 the columns take %d", total)
	}
	// At 62 the author goes.
	if w, _ := fitColumns(cols, 62); w[5] != 0 || w[3] < 16 {
		t.Fatalf("at 62: %v", w)
	}
	// Too narrow for even the kept columns: they are cut last, and it says so.
	if w, tight := fitColumns(cols, 15); !tight || w[0] != 3 || w[1] != 17 {
		t.Fatalf("at 15: %v (tight %v)", w, tight)
	}
}
