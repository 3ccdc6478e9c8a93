package ignition

import (
	"bytes"
	"compress/gzip"
	"io"
	"math/rand"
	"testing"

	butaneutil "github.com/coreos/butane/base/util"
	"github.com/vincent-petithory/dataurl"

	"github.com/provision-dev/provision/generate/plan"
)

func TestEscapeMatchesDataurl(t *testing.T) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	inputs := [][]byte{nil, all, []byte("plain text: with spaces\n# and 'quotes' \"here\"\n")}
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 200; i++ {
		b := make([]byte, r.Intn(300))
		r.Read(b)
		inputs = append(inputs, b)
	}
	for _, in := range inputs {
		if got, want := escape(in), dataurl.Escape(in); got != want {
			t.Fatalf("escape(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDataURLRoundTripsAndPicksShortest: DataURL round-trips, gives exactly
// what Butane's own MakeDataURL gives with auto-compression (its default), and
// compresses repetitive data.
func TestDataURLRoundTripsAndPicksShortest(t *testing.T) {
	for _, in := range [][]byte{[]byte("abc"), []byte("a b c d e f\n\n\n"), bytes.Repeat([]byte("x"), 4096), {0, 1, 2, 0xff}} {
		u, comp := DataURL(in)
		d, err := dataurl.DecodeString(u)
		if err != nil {
			t.Fatal(err)
		}
		got := d.Data
		if comp == "gzip" {
			r, err := gzip.NewReader(bytes.NewReader(got))
			if err != nil {
				t.Fatal(err)
			}
			if got, err = io.ReadAll(r); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(got, in) {
			t.Fatalf("%q: round trip %q", in, got)
		}
		bu, bcomp, err := butaneutil.MakeDataURL(in, nil, true)
		if err != nil || bu != u || *bcomp != comp {
			t.Fatalf("%q: DataURL = %q %q, Butane's MakeDataURL = %q %q (%v)", in, u, comp, bu, *bcomp, err)
		}
	}
	if u, _ := DataURL(bytes.Repeat([]byte("x"), 4096)); len(u) > 200 {
		t.Fatalf("repetitive data not compressed: %d", len(u))
	}
}

func TestRenderVersions(t *testing.T) {
	p := plan.Plan{Files: []plan.File{{Path: "/etc/x", Mode: 0o600, Contents: []byte("x")}}, Units: []plan.Unit{{Name: "a.service", Contents: "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n", Enabled: true}}}
	for _, v := range Versions() {
		out, err := Render(p, Options{Version: v})
		if err != nil {
			t.Fatal(err)
		}
		if rpt, err := Parse(v, out); err != nil || len(rpt.Entries) > 0 {
			t.Fatalf("%s: %v %s", v, err, rpt)
		}
	}
	if _, err := Render(p, Options{Version: "3.0"}); err == nil {
		t.Fatal("3.0 accepted")
	}
}
