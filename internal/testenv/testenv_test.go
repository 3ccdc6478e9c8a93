package testenv

import (
	"archive/tar"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTarGzFlatAndSorted(t *testing.T) {
	dir := t.TempDir()
	for name, mode := range map[string]os.FileMode{"bridge": 0o755, "README": 0o644} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(name), mode); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "x.tgz")
	if err := TarGz(out, map[string]string{"./bridge": filepath.Join(dir, "bridge"), "./README": filepath.Join(dir, "README")}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var got []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, h.Name)
		if h.Name == "./bridge" && h.Mode != 0o755 {
			t.Errorf("bridge mode %o, want 755", h.Mode)
		}
	}
	if len(got) != 2 || got[0] != "./README" || got[1] != "./bridge" {
		t.Errorf("entries %v, want [./README ./bridge]", got)
	}
}

func TestRootSpecKey(t *testing.T) {
	a := Bookworm
	b := Bookworm.With("cloud-init")
	if len(Bookworm.Include) != len(a.Include) {
		t.Fatal("With changed its receiver")
	}
	if a.key() == b.key() {
		t.Error("different package sets share a cache key")
	}
	c := Bookworm
	c.Include = append([]string(nil), Bookworm.Include...)
	c.Include[0], c.Include[1] = c.Include[1], c.Include[0]
	if a.key() != c.key() {
		t.Error("the order of packages changed the cache key")
	}
	if Trixie.Suite != "trixie" || Bookworm.Suite != "bookworm" || Trixie.key() == Bookworm.key() {
		t.Errorf("Trixie (%s, key %s) must be its own root next to Bookworm (%s, key %s)", Trixie.Suite, Trixie.key(), Bookworm.Suite, Bookworm.key())
	}
	if strings.Join(Trixie.Include, ",") != strings.Join(Bookworm.Include, ",") || Trixie.Mirror != Bookworm.Mirror {
		t.Errorf("Trixie differs from Bookworm beyond the suite: %+v", Trixie)
	}
}

func TestDeb822(t *testing.T) {
	got := string(deb822([][2]string{{"Types", "deb"}, {"URIs", "http://x/apt"}}))
	if got != "Types: deb\nURIs: http://x/apt\n" {
		t.Errorf("deb822 = %q", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("a multi-line value was accepted")
		}
	}()
	deb822([][2]string{{"URIs", "a\nb"}})
}

func TestUploadURL(t *testing.T) {
	const d = "sha256:0123"
	for _, tc := range []struct {
		name, location, want, err string
	}{
		{"absolute", "https://10.213.0.2:5000/v2/e2e/app/blobs/uploads/u1?_state=s", "https://10.213.0.2:5000/v2/e2e/app/blobs/uploads/u1?_state=s&digest=sha256%3A0123", ""},
		{"relative", "/v2/e2e/app/blobs/uploads/u1?_state=s", "https://10.213.0.2:5000/v2/e2e/app/blobs/uploads/u1?_state=s&digest=sha256%3A0123", ""},
		{"no query", "/v2/e2e/app/blobs/uploads/u1", "https://10.213.0.2:5000/v2/e2e/app/blobs/uploads/u1?digest=sha256%3A0123", ""},
		{"missing", "", "", "no Location"},
		{"bad", "http://[::1", "", "upload Location"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := uploadURL("https://10.213.0.2:5000", tc.location, d)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("uploadURL(%q) = %q, %v; want an error with %q", tc.location, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("uploadURL(%q) = %q, %v; want %q", tc.location, got, err, tc.want)
			}
		})
	}
}

func TestClusterLogLines(t *testing.T) {
	c := &Cluster{dir: t.TempDir()}
	log := "I1 scheduled pod=\"default/a\"\nI2 node had untolerated taints pod=\"default/b\" untoleratedTaint=\"&Taint{Key:dedicated,}\"\nI3 untolerated taints pod=\"default/c\"\n"
	if err := os.WriteFile(filepath.Join(c.dir, "kube-scheduler.log"), []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		subs []string
		want int
	}{
		{[]string{"untolerated taints"}, 2},
		{[]string{"untolerated taints", `pod="default/b"`}, 1},
		{[]string{"nothing like this"}, 0},
		{nil, 4}, // every line, the empty one after the last newline included
	}
	for _, tc := range tests {
		got, err := c.LogLines("kube-scheduler", tc.subs...)
		if err != nil || len(got) != tc.want {
			t.Errorf("LogLines(%q) = %q, %v; want %d lines", tc.subs, got, err, tc.want)
		}
	}
	if _, err := c.LogLines("kube-proxy"); err == nil {
		t.Error("LogLines of a component without a log: no error")
	}
}

func TestPausePod(t *testing.T) {
	for _, node := range []string{"", "n1"} {
		p := PausePod("p", node, PauseImageName)
		if p.Spec.NodeName != node || p.Namespace != "default" || p.Spec.Containers[0].ImagePullPolicy != "Never" ||
			p.Spec.AutomountServiceAccountToken == nil || *p.Spec.AutomountServiceAccountToken {
			t.Errorf("PausePod(node %q) = %+v", node, p.Spec)
		}
	}
}
