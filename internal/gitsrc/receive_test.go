package gitsrc

import (
	"strings"
	"testing"
)

// A push may only name object directories inside its repository's objects:
// git's quarantine, and the objects themselves.
func TestCheckObjectDirs(t *testing.T) {
	dir := "/data/git/web.git"
	for _, c := range []struct {
		objects, alternates string
		ok                  bool
	}{
		{"/data/git/web.git/objects/tmp_objdir-incoming-x1", "/data/git/web.git/objects", true},
		{"/data/git/web.git/./objects/tmp_objdir-incoming-x1", "/data/git/web.git/./objects", true},
		{"/data/git/api.git/objects/tmp_objdir-incoming-x1", "/data/git/web.git/objects", false},
		{"/data/git/web.git/objects/../../api.git/objects", "/data/git/web.git/objects", false},
		{"/data/git/web.git/objects/incoming", "/data/git/web.git/objects:/etc", false},
		{"objects/incoming", "/data/git/web.git/objects", false},
		{"", "/data/git/web.git/objects", false},
	} {
		err := Push{ObjectDir: c.objects, AlternateObjectDirs: c.alternates}.CheckObjectDirs(dir)
		if (err == nil) != c.ok {
			t.Errorf("objects %q alternates %q: %v, want ok=%v", c.objects, c.alternates, err, c.ok)
		}
	}
}

// What Clank says reaches the hook a line at a time, each "say LINE", so
// that no line of output reads as the hook's exit; partial lines wait.
func TestHookWriterSaysLines(t *testing.T) {
	var b strings.Builder
	w := &hookWriter{f: &b}
	w.Write([]byte("Step 1/2 : FROM x\r\nexit 0\nhal"))
	w.Write([]byte("f a line"))
	w.flush()
	if got, want := b.String(), "say Step 1/2 : FROM x\nsay exit 0\nsay half a line\n"; got != want {
		t.Fatalf("hook got %q, want %q", got, want)
	}
}

// The hook's hand-over parses into the push it describes.
func TestReadPush(t *testing.T) {
	in := "objects /r/objects/incoming\nalternates /r/objects\n" +
		ZeroID + " 1111111111111111111111111111111111111111 refs/heads/main\nend\n"
	p, err := readPush(strings.NewReader(in))
	if err != nil || p.ObjectDir != "/r/objects/incoming" || p.AlternateObjectDirs != "/r/objects" ||
		len(p.Updates) != 1 || p.Updates[0].Ref != "refs/heads/main" || p.Updates[0].Old != ZeroID {
		t.Fatalf("readPush: %+v %v", p, err)
	}
	for _, bad := range []string{"objects /x\n", "junk line\nend\n"} {
		if _, err := readPush(strings.NewReader(bad)); err == nil {
			t.Errorf("readPush(%q) took it", bad)
		}
	}
}
