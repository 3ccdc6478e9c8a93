package generate

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/generate/ignition"
	"github.com/provision-dev/provision/internal/testutil"
	"github.com/provision-dev/provision/osprofiles"
)

// ignitionMatrixGolden holds the sha256 of the Ignition output of every
// profile × spec version × gzip, one "profile version gzip=bool sha256" line each.
var ignitionMatrixGolden = filepath.Join("testdata", "golden", "ignition-matrix.sha256")

// versionGoldenName is the full golden of one spec version (the README spec on
// flatcar); the default version's is the profile golden TestGolden checks.
func versionGoldenName(v string) string {
	if v == ignition.DefaultVersion {
		return goldenName("flatcar", osprofiles.Ignition)
	}
	return filepath.Join("testdata", "golden", "versions", "flatcar.ignition-"+v+".ign")
}

// TestIgnitionEveryVersion: the Ignition output of every profile (README spec
// and the adversarial specs), spec version and compression is byte for byte the
// recorded one (recorded from the renderer
// that built each spec version with its own types), each output is valid for its
// spec version, and each version keeps a full readable golden (-update rewrites).
func TestIgnitionEveryVersion(t *testing.T) {
	type named struct {
		name string
		spec v1alpha1.GenerateConfig
	}
	var specs []named
	for _, p := range osprofiles.All() {
		specs = append(specs, named{p.Name, readmeSpec(t, p.Name)})
	}
	adv := adversarial(t)
	var names []string
	for n := range adv {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		specs = append(specs, named{strings.ReplaceAll(n, " ", "_"), adv[n]})
	}
	var lines []string
	for _, c := range specs {
		for _, v := range ignition.Versions() {
			for _, gz := range []bool{false, true} {
				s := c.spec
				s.IgnitionVersion, s.Gzip = v, gz
				out, err := Render(s, osprofiles.Ignition)
				if err != nil {
					t.Fatalf("%s %s gzip=%v: %v", c.name, v, gz, err)
				}
				if rpt, err := ignition.Parse(v, out); err != nil || len(rpt.Entries) > 0 {
					t.Fatalf("%s %s gzip=%v: %v %s", c.name, v, gz, err, rpt)
				}
				full, _ := ignition.SpecVersion(v)
				if !strings.Contains(string(out), `"version":"`+full+`"`) {
					t.Fatalf("%s %s gzip=%v: no version %s in the output", c.name, v, gz, full)
				}
				sum := sha256.Sum256(out)
				lines = append(lines, fmt.Sprintf("%s %s gzip=%v %s", c.name, v, gz, hex.EncodeToString(sum[:])))
				if c.name == "flatcar" && !gz {
					testutil.Golden(t, versionGoldenName(v), out)
				}
			}
		}
	}
	testutil.Golden(t, ignitionMatrixGolden, []byte(strings.Join(lines, "\n")+"\n"))
}
