package ssh

import "testing"

// A repository path names a service or nothing: no directories, no "..".
func TestRepoService(t *testing.T) {
	for path, want := range map[string]string{
		"/web": "web", "web": "web", "/web.git": "web", "web.git": "web", "/my-api": "my-api",
		"../x": "", "/../web": "", "/a/web": "", "": "", "/": "", "~/web": "", "/WEB": "", "/web/": "",
		"/web.git.git": "", "/.git": "", "/web\x00": "",
	} {
		got, ok := repoService(path)
		if ok != (want != "") || (ok && got != want) {
			t.Errorf("repoService(%q) = %q, %v; want %q", path, got, ok, want)
		}
	}
}
